/**
 * The traces the emailer's guards leave, so a member without a Welcome can always be
 * explained (make reconcile) and a held Welcome released (make release-held):
 * - welcome.skipped: one record per member a rule skipped (org-disabled, too-old,
 *   pre-existing); key = member key, no value (no PII needed), the reason in headers.
 * - welcome.held: the original augmented record, byte for byte, of each Welcome the
 *   send-rate breaker or the import guard held (header welcome.held.guard says which);
 *   released by re-producing it to the augmented topic with `welcome.released` set, which both
 *   let through (everything else still applies: audit table, pre-existing, age guard, SFMC's
 *   messageKey dedup).
 */
import type { AugmentedMember } from './augmented-member';
import type { OrgWelcome } from './org-config';
import type { OutgoingRecord } from '../shared/kafka';
import type { InputRecord } from '../shared/stage';

export const GUARD_HEADERS = {
  skipReason: 'welcome.skip.reason',
  heldReason: 'welcome.held.reason',
  heldGuard: 'welcome.held.guard',
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

export type HoldingGuard = 'ceiling' | 'import';

export function heldRecord(
  topic: string,
  input: InputRecord,
  orgId: string,
  reason: string,
  at: number,
  guard: HoldingGuard = 'ceiling',
): OutgoingRecord {
  return {
    topic,
    key: input.key,
    value: input.value,
    headers: {
      ...input.headers,
      [GUARD_HEADERS.heldReason]: reason,
      [GUARD_HEADERS.heldGuard]: guard,
      [GUARD_HEADERS.org]: orgId,
      [GUARD_HEADERS.at]: new Date(at).toISOString(),
    },
  };
}

/**
 * What the send guards say about one member about to be sent, pure: a released record passes
 * both; a row past the organization's maxPerTransaction in its transaction is an import and is
 * held (no count: an import never uses up the signups' allowance); the rest are counted by the
 * breaker when the organization has a ceiling. A row whose transaction position is unknown
 * (a re-drive, a record from before the field existed) is judged by the ceiling alone.
 */
export type SendGuard = { kind: 'send' } | { kind: 'hold'; guard: 'import'; reason: string } | { kind: 'count'; maxPerMinute: number };

export function sendGuard(
  member: Pick<AugmentedMember, 'org_id' | 'source_transaction_id' | 'source_transaction_order'>,
  org: Pick<OrgWelcome, 'maxPerMinute' | 'maxPerTransaction'> | undefined,
  released: boolean,
): SendGuard {
  if (released || !org) return { kind: 'send' };
  const order = member.source_transaction_order ?? null;
  if (org.maxPerTransaction !== undefined && order !== null && order > org.maxPerTransaction) {
    return {
      kind: 'hold',
      guard: 'import',
      reason: `row ${order} of transaction ${member.source_transaction_id ?? '?'}: more than ${org.maxPerTransaction} new ${member.org_id} members in one transaction is an import`,
    };
  }
  return org.maxPerMinute === undefined ? { kind: 'send' } : { kind: 'count', maxPerMinute: org.maxPerMinute };
}

export function isReleased(input: InputRecord): boolean {
  const v = input.headers[GUARD_HEADERS.released];
  const first = Array.isArray(v) ? v[0] : v;
  return first !== undefined && first.toString() === 'true';
}

/** Held Welcomes wait for an operator however long that takes; skip traces serve reconciliation (90 days). */
export const HELD_TOPIC_CONFIGS: Record<string, string> = { 'retention.ms': '-1' };
export const SKIPPED_TOPIC_CONFIGS: Record<string, string> = { 'retention.ms': String(90 * 86_400_000) };
