/**
 * The augmenter's batch handler: decode → keep only new members → one warehouse lookup
 * for the chunk → NewMemberAugmented records. A transient failure (registry or warehouse
 * down) is thrown, which pauses the partition; anything wrong with one record becomes that
 * record's dead-letter outcome.
 */
import { DecodeError, PipelineError, RecordError } from '../shared/errors';
import type { DwKeyClient, Member } from '../shared/dw-client';
import { memberRef } from '../shared/dw-client';
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
  now?: () => number;
}

type Pending = { kind: 'outcome'; outcome: Outcome } | { kind: 'member'; member: NewMember };

async function classify(record: InputRecord, registry: Registry): Promise<Pending> {
  if (record.value === null) return { kind: 'outcome', outcome: { kind: 'skip', reason: 'tombstone' } };
  let change: MemberChange;
  try {
    change = await registry.decode<MemberChange>(record.value, memberChangeView);
  } catch (err) {
    if (err instanceof DecodeError) return { kind: 'outcome', outcome: { kind: 'dead-letter', error: err } };
    throw err;
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
    const pending = await Promise.all(records.map((r) => classify(r, deps.registry)));
    const members: Member[] = pending.flatMap((p) => (p.kind === 'member' ? [{ orgId: p.member.orgId, memberId: p.member.orgMemberId }] : []));
    const keys = members.length > 0 ? await deps.keys.lookup(members, budget) : new Map();

    return Promise.all(
      pending.map(async (p): Promise<Outcome> => {
        if (p.kind === 'outcome') return p.outcome;
        const { member } = p;
        const trace = memberTrace(member.orgId, member.orgMemberId, member.memberId);
        const result = keys.get(memberRef(member.orgId, member.orgMemberId));
        if (!result) throw new PipelineError('DW_MISSING_RESULT', `no key result for ${trace}`, { transient: true });
        if (!result.ok) return { kind: 'dead-letter', error: new RecordError(`DW_${result.code}`, result.message), trace };
        const at = now();
        const value = await deps.registry.encode(deps.augmentedSchemaId, toAugmentedRecord(member, result.subscriberKey, at));
        deps.metrics.stageSeconds.observe(Math.max(0, at - member.sourceCommittedAt) / 1000);
        return {
          kind: 'produce',
          trace,
          records: [{ topic: deps.augmentedTopic, key: memberKey(member.orgId, member.orgMemberId), value, headers: { 'welcome.trace': trace } }],
        };
      }),
    );
  };
}
