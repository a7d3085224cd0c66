/**
 * The emailer's batch handler: decode → skip what was already sent (our audit record) →
 * plan each Welcome → one SFMC batch request per template → WelcomeSent records.
 * Exactly-once comes from three layers: only creates reach this topic; a member's
 * messageKey is fixed, so SFMC turns any resend inside its window into 109110 (counted as
 * sent); and the audit table stops resends after that window.
 */
import { DecodeError, PipelineError, RecordError } from '../shared/errors';
import { memberKey, memberTrace } from '../shared/member';
import type { Metrics } from '../shared/metrics';
import type { Registry } from '../shared/registry';
import type { SendOutcome, SfmcClient, SfmcRecipient } from '../shared/sfmc-client';
import { SFMC_INVALID_DEFINITION_KEY, SFMC_MISSING_DEFINITION_KEY, welcomeMessageKey } from '../shared/sfmc-client';
import type { BatchHandler, InputRecord, Outcome } from '../shared/stage';
import type avro from 'avsc';
import type { AugmentedMember } from './augmented-member';
import type { Breaker } from './breaker';
import { heldRecord, isReleased, sendGuard, skippedRecord, TRACED_SKIPS, type HoldingGuard } from './guards';
import type { OrgConfig } from './org-config';
import type { SentRecord } from './sent-record';
import { sentKey } from './sent-record';
import { planWelcome, toWelcomeSent } from './transform';
import { forEachLimited, groupInOrder } from './concurrent-sends';

export interface WelcomeDeps {
  registry: Registry;
  reader: avro.Type;
  sfmc: SfmcClient;
  sent: SentRecord;
  orgs: OrgConfig;
  metrics: Metrics;
  sentTopic: string;
  sentSchemaId: number;
  /** Guards (make seed-preexisting, age, import, send rate): where their traces go, and the breaker (shared by the replicas). */
  guards: { breaker: Breaker; skippedTopic: string; heldTopic: string; onHeld: (orgId: string) => void };
  /** SFMC requests of one chunk in flight at once (one per business unit and definition); 1 = one after another. */
  concurrentRequests?: number;
  now?: () => number;
}

type Slot = {
  input: InputRecord;
  outcome?: Outcome;
  member?: AugmentedMember;
  definitionKey?: string;
  accountId?: number;
  recipient?: SfmcRecipient;
};

export function createWelcomeHandler(deps: WelcomeDeps): BatchHandler {
  const now = deps.now ?? Date.now;
  const view = (): avro.Type => deps.reader;

  async function decode(record: InputRecord): Promise<Slot> {
    if (record.value === null) return { input: record, outcome: { kind: 'skip', reason: 'tombstone' } };
    try {
      return { input: record, member: await deps.registry.decode<AugmentedMember>(record.value, view) };
    } catch (err) {
      if (err instanceof DecodeError) return { input: record, outcome: { kind: 'dead-letter', error: err } };
      throw err;
    }
  }

  /**
   * SFMC refusing the send definition itself (unknown or missing definitionKey) is our setup,
   * not the members: like refused credentials, hold (the thrown error pauses the partition,
   * nothing is dead-lettered or lost, the batch is retried with backoff and goes through once
   * the definition exists) and raise welcome_sfmc_definition_refused for the alert.
   */
  function holdIfDefinitionRefused(definitionKey: string, group: Slot[], outcomes: { status: string; errorcode?: number; message?: string }[]): void {
    const orgIds = [...new Set(group.map((s) => (s.member as AugmentedMember).org_id))];
    const refused = outcomes.find(
      (o) => o.status === 'rejected' && (o.errorcode === SFMC_INVALID_DEFINITION_KEY || o.errorcode === SFMC_MISSING_DEFINITION_KEY),
    );
    for (const org of orgIds) deps.metrics.definitionRefused.set({ org, definition_key: definitionKey }, refused ? 1 : 0);
    if (refused) {
      throw new PipelineError(
        'SFMC_DEFINITION_REFUSED',
        `SFMC refused send definition "${definitionKey}" of ${orgIds.join(', ')} (errorcode ${refused.errorcode}): holding these Welcomes until it is fixed. ${refused.message ?? ''}`.trim(),
        { transient: true },
      );
    }
  }

  return async (records, budget) => {
    const slots = await Promise.all(records.map(decode));
    const decoded = slots.flatMap((s) => (s.member ? [s.member] : []));
    const refs = decoded.map((m) => ({ orgId: m.org_id, orgMemberId: m.org_member_id }));
    const readStart = now();
    const { sent: done, preExisting } = await deps.sent.lookup(refs);
    if (refs.length > 0) deps.metrics.chunkStepSeconds.observe({ step: 'audit-read' }, (now() - readStart) / 1000);
    const { breaker, skippedTopic, heldTopic } = deps.guards;
    const skip = (slot: Slot, m: AugmentedMember, reason: string, trace: string): Outcome => ({
      kind: 'skip',
      reason,
      trace,
      ...(TRACED_SKIPS.has(reason)
        ? { records: [skippedRecord(skippedTopic, slot.input, m.org_id, memberKey(m.org_id, m.org_member_id), trace, reason, now())] }
        : {}),
    });

    const toSend: Slot[] = [];
    const counted = new Map<string, Slot[]>();
    // Held, byte for byte, until an operator releases it (make release-held).
    const hold = (slot: Slot, m: AugmentedMember, guard: HoldingGuard, reason: string, trace: string): void => {
      deps.guards.onHeld(m.org_id);
      slot.outcome = { kind: 'skip', reason: 'held', trace, records: [heldRecord(heldTopic, slot.input, m.org_id, reason, now(), guard)] };
    };
    for (const slot of slots) {
      const m = slot.member;
      if (!m || slot.outcome) continue;
      const trace = memberTrace(m.org_id, m.org_member_id, m.member_id);
      if (done.has(sentKey(m.org_id, m.org_member_id))) {
        slot.outcome = { kind: 'skip', reason: 'already-sent', trace };
        continue;
      }
      if (preExisting.has(sentKey(m.org_id, m.org_member_id))) {
        slot.outcome = skip(slot, m, 'pre-existing', trace);
        continue;
      }
      const plan = planWelcome(m, deps.orgs, welcomeMessageKey);
      if (plan.kind === 'skip') slot.outcome = skip(slot, m, plan.reason, trace);
      else if (plan.kind === 'invalid') slot.outcome = { kind: 'dead-letter', error: new RecordError(plan.code, plan.message), trace };
      else {
        slot.definitionKey = plan.definitionKey;
        slot.accountId = plan.accountId;
        slot.recipient = plan.recipient;
        const guard = sendGuard(m, deps.orgs.get(m.org_id), isReleased(slot.input));
        if (guard.kind === 'hold') hold(slot, m, guard.guard, guard.reason, trace);
        else if (guard.kind === 'count') counted.set(m.org_id, [...(counted.get(m.org_id) ?? []), slot]);
      }
    }
    // The send-rate breaker, one decision per organization for the chunk, shared by every replica.
    const breakerStart = now();
    await Promise.all(
      [...counted].map(async ([orgId, group]) => {
        const max = deps.orgs.get(orgId)?.maxPerMinute ?? Infinity;
        const held = await breaker.admit(
          orgId,
          group.map((s) => memberKey(orgId, (s.member as AugmentedMember).org_member_id)),
          max,
          budget.deadline,
        );
        for (const slot of group) {
          const m = slot.member as AugmentedMember;
          if (held.has(memberKey(orgId, m.org_member_id)))
            hold(slot, m, 'ceiling', `more than ${max} Welcomes/min for ${orgId}`, memberTrace(m.org_id, m.org_member_id, m.member_id));
        }
      }),
    );
    if (counted.size > 0) deps.metrics.chunkStepSeconds.observe({ step: 'breaker' }, (now() - breakerStart) / 1000);
    for (const slot of slots) if (slot.recipient && !slot.outcome) toSend.push(slot);

    // One request per (business unit, template). A group that fails (SFMC down after retries,
    // throttled past the budget, our credentials or the send definition refused) marks only its
    // own members failed: members SFMC already accepted in an earlier group keep their
    // WelcomeSent (keepOnRetry), and the stage retries the rest; messageKeys make any resend
    // harmless. A refused definition is a setup error: the stage holds, never dead-letters.
    // A definition lives in one BU; the key depends only on the member's organization, so one
    // member's records share a request and groups may go concurrently (concurrent-sends.ts).
    const groups = groupInOrder(toSend, (s) => `${s.accountId ?? ''}\0${s.definitionKey ?? ''}`);
    await forEachLimited(groups, deps.concurrentRequests ?? 1, async (group) => {
      const { definitionKey = '', accountId } = group[0] as Slot;
      let outcomes: SendOutcome[];
      try {
        outcomes = await deps.sfmc.sendBatch(
          definitionKey,
          group.map((s) => s.recipient as SfmcRecipient),
          accountId,
          budget,
        );
        holdIfDefinitionRefused(definitionKey, group, outcomes);
      } catch (error) {
        for (const slot of group) {
          const m = slot.member as AugmentedMember;
          slot.outcome = { kind: 'failed', error, trace: memberTrace(m.org_id, m.org_member_id, m.member_id) };
        }
        return;
      }
      const sentAt = now();
      for (const [i, slot] of group.entries()) {
        const m = slot.member as AugmentedMember;
        const result = outcomes[i];
        const trace = memberTrace(m.org_id, m.org_member_id, m.member_id);
        if (!result) {
          slot.outcome = {
            kind: 'failed',
            error: new PipelineError('SFMC_MISSING_OUTCOME', `no SFMC outcome for ${trace}`, { transient: true }),
            trace,
          };
          continue;
        }
        if (result.status === 'rejected') {
          slot.outcome = {
            kind: 'dead-letter',
            error: new RecordError(`SFMC_${result.errorcode ?? 'REJECTED'}`, result.message ?? 'rejected by SFMC'),
            trace,
          };
          continue;
        }
        deps.metrics.sent.inc({ outcome: result.status });
        deps.metrics.endToEndSeconds.observe(Math.max(0, sentAt - m.source_committed_at) / 1000);
        deps.metrics.stageSeconds.observe(Math.max(0, sentAt - m.source_committed_at) / 1000);
        const value = await deps.registry.encode(deps.sentSchemaId, toWelcomeSent(m, definitionKey, result, sentAt));
        slot.outcome = {
          kind: 'produce',
          keepOnRetry: true,
          trace,
          records: [
            {
              topic: deps.sentTopic,
              key: memberKey(m.org_id, m.org_member_id),
              value,
              headers: { 'welcome.trace': trace, 'welcome.outcome': result.status },
            },
          ],
        };
      }
    });
    return slots.map((s) => s.outcome as Outcome);
  };
}
