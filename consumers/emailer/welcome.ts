/**
 * The emailer's batch handler: decode → skip what was already sent (our audit record) →
 * plan each Welcome → one SFMC batch request per organization → WelcomeSent records.
 * Exactly-once comes from three layers: only creates reach this topic; a member's
 * messageKey is fixed, so SFMC turns any resend inside its window into 109110 (counted as
 * sent); and the audit table stops resends after that window.
 */
import { DecodeError, RecordError } from '../shared/errors';
import type { Holds } from '../shared/holds';
import { forgottenTrace } from '../shared/forgotten';
import { memberKey, memberTrace } from '../shared/member';
import type { Metrics } from '../shared/metrics';
import type { Registry } from '../shared/registry';
import { budgetLeft, type Budget } from '../shared/retry';
import type { SfmcClient, SfmcRecipient } from '../shared/sfmc-client';
import { welcomeMessageKey } from '../shared/sfmc-client';
import type { BatchHandler, InputRecord, Outcome } from '../shared/stage';
import type avro from 'avsc';
import type { AugmentedMember } from './augmented-member';
import type { Breaker } from './breaker';
import { heldRecord, isReleased, sendGuard, skippedRecord, TRACED_SKIPS, type HoldingGuard } from './guards';
import type { OrgConfig } from './org-config';
import type { SentRecord } from './sent-record';
import { sentKey } from './sent-record';
import { planWelcome } from './transform';
import { sendWelcomes } from './send-outcomes';

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
  guards: { breaker: Breaker; skippedTopic: string; heldTopic: string; onHeld: (orgId: string, guard: HoldingGuard) => void };
  /** SFMC requests of one chunk in flight at once (one per organization); 1 = one after another. */
  concurrentRequests?: number;
  /** Setup holds: a good answer for an organization releases its hold. */
  holds: Holds;
  now?: () => number;
}

/** The audit-table read's own ceiling (it was 3 s connect + 5 s query, and an unbounded pool wait). */
const AUDIT_READ_MAX_MS = 2_000;

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

  async function decode(record: InputRecord, budget: Budget): Promise<Slot> {
    if (record.value === null) return { input: record, outcome: { kind: 'skip', reason: 'tombstone' } };
    try {
      return { input: record, member: await deps.registry.decode<AugmentedMember>(record.value, view, budget) };
    } catch (err) {
      if (err instanceof DecodeError) return { input: record, outcome: { kind: 'dead-letter', error: err } };
      return { input: record, outcome: { kind: 'failed', error: err } }; // the registry's answer decides (registry-answers.ts)
    }
  }

  return async (records, budget, opts) => {
    const slots = await Promise.all(records.map((r) => decode(r, budget)));
    const decoded = slots.flatMap((s) => (s.member ? [s.member] : []));
    if (decoded.length > 0) deps.holds.release('registry');
    const refs = decoded.map((m) => ({ orgId: m.org_id, orgMemberId: m.org_member_id }));
    const readStart = now();
    // Pool wait, connect and query together: at most half of what is left, so SFMC keeps the rest.
    const { sent: done, preExisting, forgotten } = await deps.sent.lookup(refs, Math.max(1, Math.min(AUDIT_READ_MAX_MS, budgetLeft(budget) / 2)));
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
      deps.guards.onHeld(m.org_id, guard);
      slot.outcome = { kind: 'skip', reason: 'held', trace, records: [heldRecord(heldTopic, slot.input, m.org_id, reason, now(), guard)] };
    };
    for (const slot of slots) {
      const m = slot.member;
      if (!m || slot.outcome) continue;
      // Forgotten (make forget): no Welcome and no trace of it, before any other guard — a held,
      // released or replayed record of the member ends here. Logged by its hash only.
      const forgottenHash = forgotten.get(sentKey(m.org_id, m.org_member_id));
      if (forgottenHash) {
        slot.outcome = { kind: 'skip', reason: 'forgotten', trace: forgottenTrace(forgottenHash) };
        continue;
      }
      const trace = memberTrace(m.org_id, m.org_member_id, m.member_id);
      // A bisection's control resends an accepted Welcome (SFMC answers 109110, nobody is emailed)
      // to learn whether SFMC answers now; skipped here, it would prove nothing.
      if (done.has(sentKey(m.org_id, m.org_member_id)) && !opts?.control) {
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

    // Verdicts per recipient (send-outcomes.ts): accepted sends keep their WelcomeSent even when
    // another record is retried; setup and unknown answers hold or bisect, never dead-letter.
    const sent = await sendWelcomes(
      {
        registry: deps.registry,
        sfmc: deps.sfmc,
        metrics: deps.metrics,
        holds: deps.holds,
        sentTopic: deps.sentTopic,
        sentSchemaId: deps.sentSchemaId,
        concurrentRequests: deps.concurrentRequests ?? 1,
        now,
      },
      toSend.map((s) => ({
        input: s.input,
        member: s.member as AugmentedMember,
        definitionKey: s.definitionKey ?? '',
        accountId: s.accountId,
        recipient: s.recipient as SfmcRecipient,
      })),
      budget,
    );
    toSend.forEach((slot, i) => (slot.outcome = sent[i]));
    return slots.map((s) => s.outcome as Outcome);
  };
}
