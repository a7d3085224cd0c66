/**
 * The augmenter's batch handler: decode → keep only new members → one warehouse lookup
 * for the chunk → NewMemberAugmented records. The warehouse's verdict per member (dw-answers.ts):
 * a member the answer names as wrong is dead-lettered; any other failure (slow down, our
 * setup, unknown: an AnswerError of scope `warehouse`) fails the records that needed the
 * answer, and the stage pauses, holds or bisects (chunk.ts). One record that cannot be
 * encoded fails alone.
 */
import { DecodeError, PipelineError, RecordError } from '../shared/errors';
import type { DwKeyClient, KeyResult, Member } from '../shared/dw-client';
import { memberRef, WAREHOUSE_SCOPE } from '../shared/dw-client';
import type { Holds } from '../shared/holds';
import type { Budget } from '../shared/retry';
import { memberKey, memberTrace } from '../shared/member';
import type { Metrics } from '../shared/metrics';
import type { Registry } from '../shared/registry';
import type { BatchHandler, InputRecord, Outcome } from '../shared/stage';
import { memberChangeView, type MemberChange } from './member-change';
import { toAugmentedRecord, toNewMember, type NewMember } from './transform';

export interface AugmentDeps {
  registry: Registry;
  keys: DwKeyClient;
  metrics: Metrics;
  augmentedTopic: string;
  augmentedSchemaId: number;
  /** Setup holds: an answer from the warehouse (or a decoded record) releases its hold. */
  holds: Holds;
  now?: () => number;
}

type Pending = { kind: 'outcome'; outcome: Outcome } | { kind: 'member'; member: NewMember };

async function classify(record: InputRecord, registry: Registry, budget: Budget): Promise<Pending> {
  if (record.value === null) return { kind: 'outcome', outcome: { kind: 'skip', reason: 'tombstone' } };
  let change: MemberChange;
  try {
    change = await registry.decode<MemberChange>(record.value, memberChangeView, budget);
  } catch (err) {
    if (err instanceof DecodeError) return { kind: 'outcome', outcome: { kind: 'dead-letter', error: err } };
    return { kind: 'outcome', outcome: { kind: 'failed', error: err } }; // the registry's answer decides (registry-answers.ts)
  }
  const verdict = toNewMember(change);
  switch (verdict.kind) {
    case 'new-member':
      return { kind: 'member', member: verdict.member };
    case 'skip':
      return { kind: 'outcome', outcome: { kind: 'skip', reason: verdict.reason } };
    case 'invalid':
      return {
        kind: 'outcome',
        outcome: {
          kind: 'dead-letter',
          error: new RecordError(verdict.code, verdict.message),
          trace: memberTrace(change.org_id ?? '?', change.org_member_id ?? '?', change.id),
        },
      };
  }
}

export function createAugmentHandler(deps: AugmentDeps): BatchHandler {
  const now = deps.now ?? Date.now;
  return async (records, budget) => {
    const pending = await Promise.all(records.map((r) => classify(r, deps.registry, budget)));
    if (pending.some((p) => p.kind === 'member')) deps.holds.release('registry');
    const members: Member[] = pending.flatMap((p) => (p.kind === 'member' ? [{ orgId: p.member.orgId, memberId: p.member.orgMemberId }] : []));
    let keys = new Map<string, KeyResult>();
    let lookupFailed: unknown;
    try {
      if (members.length > 0) keys = await deps.keys.lookup(members, budget);
      // The warehouse answered: a hold on it (a refused token, a wrong URL) is over.
      if (members.length > 0) deps.holds.release(WAREHOUSE_SCOPE);
    } catch (err) {
      lookupFailed = err; // the members' records fail; skips and dead letters keep their outcome
    }

    return Promise.all(
      pending.map(async (p): Promise<Outcome> => {
        if (p.kind === 'outcome') return p.outcome;
        const { member } = p;
        const trace = memberTrace(member.orgId, member.orgMemberId, member.memberId);
        if (lookupFailed !== undefined) return { kind: 'failed', error: lookupFailed, trace };
        const result = keys.get(memberRef(member.orgId, member.orgMemberId));
        if (!result) return { kind: 'failed', error: new PipelineError('DW_MISSING_RESULT', `no key result for ${trace}`), trace };
        if (!result.ok) return { kind: 'dead-letter', error: new RecordError(`DW_${result.code}`, result.message), trace };
        const at = now();
        let value: Buffer;
        try {
          value = await deps.registry.encode(deps.augmentedSchemaId, toAugmentedRecord(member, result.subscriberKey, at), budget);
        } catch (error) {
          return { kind: 'failed', error, trace }; // this record only
        }
        deps.metrics.stageSeconds.observe(Math.max(0, at - member.sourceCommittedAt) / 1000);
        return {
          kind: 'produce',
          trace,
          scope: WAREHOUSE_SCOPE,
          records: [{ topic: deps.augmentedTopic, key: memberKey(member.orgId, member.orgMemberId), value, headers: { 'welcome.trace': trace } }],
        };
      }),
    );
  };
}
