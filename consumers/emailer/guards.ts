/**
 * The traces the emailer's guards leave, so a member without a Welcome can always be
 * explained (make reconcile) and a held Welcome released (make release-held):
 * - welcome.skipped: one record per member a rule skipped (org-disabled, too-old,
 *   pre-existing); key = member key, no value (no PII needed), the reason in headers.
 * - welcome.held: the original augmented record, byte for byte, of each Welcome the
 *   send-rate breaker held; released by re-producing it to the augmented topic with
 *   `welcome.released` set, which the breaker lets through (everything else still applies:
 *   audit table, pre-existing, age guard, SFMC's messageKey dedup).
 */
import type { OutgoingRecord } from '../shared/kafka';
import type { InputRecord } from '../shared/stage';

export const GUARD_HEADERS = {
  skipReason: 'welcome.skip.reason',
  heldReason: 'welcome.held.reason',
  at: 'welcome.guard.at',
  org: 'welcome.org',
  trace: 'welcome.trace',
  released: 'welcome.released',
} as const;

/** Skip reasons that leave a trace: the member has no Welcome and someone may ask why. */
export const TRACED_SKIPS = new Set(['org-disabled', 'too-old', 'pre-existing']);

export function skippedRecord(
  topic: string,
  input: InputRecord,
  orgId: string,
  memberKey: string,
  trace: string,
  reason: string,
  at: number,
): OutgoingRecord {
  return {
    topic,
    key: memberKey,
    value: null,
    headers: {
      [GUARD_HEADERS.skipReason]: reason,
      [GUARD_HEADERS.org]: orgId,
      [GUARD_HEADERS.trace]: trace,
      [GUARD_HEADERS.at]: new Date(at).toISOString(),
      'welcome.source.offset': `${input.topic}/${input.partition}/${input.offset}`,
    },
  };
}

export function heldRecord(topic: string, input: InputRecord, orgId: string, reason: string, at: number): OutgoingRecord {
  return {
    topic,
    key: input.key,
    value: input.value,
    headers: { ...input.headers, [GUARD_HEADERS.heldReason]: reason, [GUARD_HEADERS.org]: orgId, [GUARD_HEADERS.at]: new Date(at).toISOString() },
  };
}

export function isReleased(input: InputRecord): boolean {
  const v = input.headers[GUARD_HEADERS.released];
  const first = Array.isArray(v) ? v[0] : v;
  return first !== undefined && first.toString() === 'true';
}

/** Held Welcomes wait for an operator however long that takes; skip traces serve reconciliation (90 days). */
export const HELD_TOPIC_CONFIGS: Record<string, string> = { 'retention.ms': '-1' };
export const SKIPPED_TOPIC_CONFIGS: Record<string, string> = { 'retention.ms': String(90 * 86_400_000) };
