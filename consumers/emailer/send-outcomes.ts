/**
 * The sending part of the emailer's handler: Welcomes planned for a chunk → SFMC → one
 * outcome per record, by the verdict of SFMC's answer for that recipient (sfmc-answers.ts):
 * - sent (queued, or 109110: queued before) → WelcomeSent, written even if an earlier record
 *   of the chunk is retried (keepOnRetry);
 * - this member is wrong (an error SFMC attaches to the recipient) → dead letter with its code;
 * - slow down, our setup, unknown → failed: the chunk pauses, holds or bisects (chunk.ts),
 *   never a dead letter without proof.
 * One request per organization (its business unit and send definition): a hold is one
 * organization's, and its members' records never race each other (concurrent-sends.ts).
 *
 * Past SFMC's 109110 window a blind resend is a second email. Any earlier attempt for a member
 * happened after its INSERT committed, so a member committed less than a day ago cannot have an
 * unknown answer older than a day; for an older one the status call (3-day window) is asked
 * first, and a message SFMC knows counts as sent. This needs no state of our own and holds
 * across restarts (docs/failure-model.md).
 */
import { PipelineError, RecordError } from '../shared/errors';
import type { Holds } from '../shared/holds';
import { memberKey, memberTrace } from '../shared/member';
import type { Metrics } from '../shared/metrics';
import type { Registry } from '../shared/registry';
import type { Budget } from '../shared/retry';
import type { SendOutcome, SfmcClient, SfmcRecipient } from '../shared/sfmc-client';
import type { InputRecord, Outcome } from '../shared/stage';
import type { AugmentedMember } from './augmented-member';
import { forEachLimited, groupInOrder } from './concurrent-sends';
import { toWelcomeSent } from './transform';

/** A member whose INSERT committed longer ago than this is asked about at SFMC before a send. */
export const STATUS_CHECK_AGE_MS = 24 * 3600_000;
const DEFINITION_ROWS: ReadonlySet<string> = new Set(['send.definition', 'send.item-definition', 'send.2xx-top-definition']);

export interface Planned {
  input: InputRecord;
  member: AugmentedMember;
  definitionKey: string;
  accountId?: number;
  recipient: SfmcRecipient;
}

export interface SendDeps {
  registry: Registry;
  sfmc: SfmcClient;
  metrics: Metrics;
  holds: Holds;
  sentTopic: string;
  sentSchemaId: number;
  concurrentRequests: number;
  now: () => number;
}

export const orgScope = (orgId: string): string => `org:${orgId}`;

/** Outcomes of `planned`, in order. Never throws: every failure is the failed outcome of its records. */
export async function sendWelcomes(deps: SendDeps, planned: Planned[], budget: Budget): Promise<Outcome[]> {
  const out = new Map<Planned, Outcome>();
  const toSend = await checkOldMembers(deps, planned, budget, out);
  const groups = groupInOrder(toSend, (p) => `${p.accountId ?? ''}\0${p.definitionKey}\0${p.member.org_id}`);
  await forEachLimited(groups, deps.concurrentRequests, async (group) => {
    const { definitionKey, accountId, member } = group[0] as Planned;
    const scope = orgScope(member.org_id);
    let outcomes: SendOutcome[];
    try {
      outcomes = await deps.sfmc.sendBatch(
        definitionKey,
        group.map((p) => p.recipient),
        accountId,
        budget,
        scope,
      );
    } catch (error) {
      // The client answers every answer as an outcome; a throw (a bug, a budget) fails this group only.
      const err = error instanceof PipelineError ? error : new PipelineError('SFMC_CLIENT', String(error), { cause: error });
      outcomes = group.map((p) => ({ messageKey: p.recipient.messageKey, status: 'failed', answer: 'none', error: err }));
    }
    const answered = outcomes.some((o) => o.status !== 'failed');
    const refused = outcomes.some((o) => DEFINITION_ROWS.has(o.answer));
    if (answered || refused) deps.metrics.definitionRefused.set({ org: member.org_id, definition_key: definitionKey }, refused ? 1 : 0);
    // A good answer for this organization ends its hold, and resumes every partition waiting on it.
    if (answered) deps.holds.release(scope);
    const sentAt = deps.now();
    for (const [i, p] of group.entries()) out.set(p, await toOutcome(deps, p, outcomes[i], sentAt));
  });
  return planned.map((p) => out.get(p) as Outcome);
}

/** Members committed over a day ago: already known to SFMC (queued by an attempt whose answer we could not read)? */
async function checkOldMembers(deps: SendDeps, planned: Planned[], budget: Budget, out: Map<Planned, Outcome>): Promise<Planned[]> {
  const old = planned.filter((p) => deps.now() - p.member.source_committed_at > STATUS_CHECK_AGE_MS);
  if (old.length === 0) return planned;
  await forEachLimited(old, deps.concurrentRequests, async (p) => {
    const scope = orgScope(p.member.org_id);
    try {
      const status = await deps.sfmc.getStatus(p.recipient.messageKey, p.accountId, budget, scope);
      // Not found: never queued, and sent now. Past the 3-day status window SFMC cannot tell: an
      // unknown answer that old would have held this member's organization, alerting, for days.
      if (status)
        out.set(p, await toOutcome(deps, p, { messageKey: p.recipient.messageKey, status: 'duplicate', answer: 'status.found' }, deps.now()));
    } catch (error) {
      out.set(p, { kind: 'failed', error, trace: memberTrace(p.member.org_id, p.member.org_member_id, p.member.member_id) });
    }
  });
  return planned.filter((p) => !out.has(p));
}

async function toOutcome(deps: SendDeps, p: Planned, result: SendOutcome | undefined, sentAt: number): Promise<Outcome> {
  const m = p.member;
  const trace = memberTrace(m.org_id, m.org_member_id, m.member_id);
  if (!result) return { kind: 'failed', error: new PipelineError('SFMC_MISSING_OUTCOME', `no SFMC outcome for ${trace}`), trace };
  if (result.status === 'failed') return { kind: 'failed', error: result.error, trace };
  if (result.status === 'rejected') {
    return {
      kind: 'dead-letter',
      error: new RecordError(`SFMC_${result.errorcode ?? 'REJECTED'}`, result.message ?? `rejected by SFMC (${result.answer})`),
      trace,
    };
  }
  let value: Buffer;
  try {
    value = await deps.registry.encode(deps.sentSchemaId, toWelcomeSent(m, p.definitionKey, result, sentAt));
  } catch (error) {
    // This record's WelcomeSent only: its neighbours' accepted sends keep theirs.
    return { kind: 'failed', error, trace };
  }
  deps.metrics.sent.inc({ outcome: result.status });
  deps.metrics.endToEndSeconds.observe(Math.max(0, sentAt - m.source_committed_at) / 1000);
  deps.metrics.stageSeconds.observe(Math.max(0, sentAt - m.source_committed_at) / 1000);
  return {
    kind: 'produce',
    keepOnRetry: true,
    trace,
    scope: orgScope(m.org_id),
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
