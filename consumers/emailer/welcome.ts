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
import type { SfmcClient, SfmcRecipient } from '../shared/sfmc-client';
import { welcomeMessageKey } from '../shared/sfmc-client';
import type { BatchHandler, InputRecord, Outcome } from '../shared/stage';
import type avro from 'avsc';
import type { AugmentedMember } from './augmented-member';
import type { OrgConfig } from './org-config';
import type { SentRecord } from './sent-record';
import { sentKey } from './sent-record';
import { planWelcome, toWelcomeSent } from './transform';

export interface WelcomeDeps {
  registry: Registry;
  reader: avro.Type;
  sfmc: SfmcClient;
  sent: SentRecord;
  orgs: OrgConfig;
  metrics: Metrics;
  sentTopic: string;
  sentSchemaId: number;
  now?: () => number;
}

type Slot = { outcome?: Outcome; member?: AugmentedMember; definitionKey?: string; recipient?: SfmcRecipient };

export function createWelcomeHandler(deps: WelcomeDeps): BatchHandler {
  const now = deps.now ?? Date.now;
  const view = (): avro.Type => deps.reader;

  async function decode(record: InputRecord): Promise<Slot> {
    if (record.value === null) return { outcome: { kind: 'skip', reason: 'tombstone' } };
    try {
      return { member: await deps.registry.decode<AugmentedMember>(record.value, view) };
    } catch (err) {
      if (err instanceof DecodeError) return { outcome: { kind: 'dead-letter', error: err } };
      throw err;
    }
  }

  return async (records) => {
    const slots = await Promise.all(records.map(decode));
    const decoded = slots.flatMap((s) => (s.member ? [s.member] : []));
    const done = await deps.sent.alreadySent(decoded.map((m) => ({ orgId: m.org_id, orgMemberId: m.org_member_id })));

    const byTemplate = new Map<string, Slot[]>();
    for (const slot of slots) {
      const m = slot.member;
      if (!m || slot.outcome) continue;
      const trace = memberTrace(m.org_id, m.org_member_id, m.member_id);
      if (done.has(sentKey(m.org_id, m.org_member_id))) {
        slot.outcome = { kind: 'skip', reason: 'already-sent', trace };
        continue;
      }
      const plan = planWelcome(m, deps.orgs, welcomeMessageKey);
      if (plan.kind === 'skip') slot.outcome = { kind: 'skip', reason: plan.reason, trace };
      else if (plan.kind === 'invalid') slot.outcome = { kind: 'dead-letter', error: new RecordError(plan.code, plan.message), trace };
      else {
        slot.definitionKey = plan.definitionKey;
        slot.recipient = plan.recipient;
        byTemplate.set(plan.definitionKey, [...(byTemplate.get(plan.definitionKey) ?? []), slot]);
      }
    }

    // A thrown error here (SFMC down after retries, or our credentials refused) pauses the
    // partition; messageKeys make the eventual resend of this chunk harmless.
    for (const [definitionKey, group] of byTemplate) {
      const outcomes = await deps.sfmc.sendBatch(definitionKey, group.map((s) => s.recipient as SfmcRecipient));
      const sentAt = now();
      for (const [i, slot] of group.entries()) {
        const m = slot.member as AugmentedMember;
        const result = outcomes[i];
        const trace = memberTrace(m.org_id, m.org_member_id, m.member_id);
        if (!result) throw new PipelineError('SFMC_MISSING_OUTCOME', `no SFMC outcome for ${trace}`, { transient: true });
        if (result.status === 'rejected') {
          slot.outcome = { kind: 'dead-letter', error: new RecordError(`SFMC_${result.errorcode ?? 'REJECTED'}`, result.message ?? 'rejected by SFMC'), trace };
          continue;
        }
        deps.metrics.sent.inc({ outcome: result.status });
        deps.metrics.endToEndSeconds.observe(Math.max(0, sentAt - m.source_committed_at) / 1000);
        deps.metrics.stageSeconds.observe(Math.max(0, sentAt - m.source_committed_at) / 1000);
        const value = await deps.registry.encode(deps.sentSchemaId, toWelcomeSent(m, definitionKey, result, sentAt));
        slot.outcome = {
          kind: 'produce',
          trace,
          records: [{ topic: deps.sentTopic, key: memberKey(m.org_id, m.org_member_id), value, headers: { 'welcome.trace': trace, 'welcome.outcome': result.status } }],
        };
      }
    }
    return slots.map((s) => s.outcome as Outcome);
  };
}
