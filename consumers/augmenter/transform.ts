/**
 * Change event → new member, or the reason it is not one. Pure: plain objects in, plain
 * objects out. The business rule lives here: only a committed INSERT (op 'c') that is not
 * part of a snapshot is a new member; reads, updates, deletes and heartbeats never are.
 */
import { isPlausibleEmail, isValidOrgMemberId, ORG_ID } from '../shared/member';
import type { MemberChange } from './member-change';

export interface NewMember {
  memberId: number;
  orgId: string;
  orgMemberId: string;
  email: string;
  firstName: string | null;
  lastName: string | null;
  locale: string | null;
  memberCreatedAt: number | null;
  sourceCommittedAt: number;
  marketingOptIn: boolean | null;
  /** The INSERT's transaction and the row's place among its member changes (from 1); null when Debezium gave none. */
  transactionId?: string | null;
  transactionOrder?: number | null;
}

export type SkipReason = 'snapshot' | 'update' | 'delete' | 'heartbeat' | 'tombstone';

export type ChangeVerdict =
  { kind: 'new-member'; member: NewMember } | { kind: 'skip'; reason: SkipReason } | { kind: 'invalid'; code: string; message: string };

// Debezium marks every snapshot record with source.snapshot != false (true, first, last, ...).
const isSnapshot = (flag: string | null): boolean => flag !== null && flag !== 'false';

const invalid = (code: string, message: string): ChangeVerdict => ({ kind: 'invalid', code, message });

export function toNewMember(change: MemberChange | null): ChangeVerdict {
  if (change === null) return { kind: 'skip', reason: 'tombstone' };
  if (change.__op === null && change.org_id === null && change.ts_ms !== null) return { kind: 'skip', reason: 'heartbeat' };
  if (change.__deleted === 'true' || change.__op === 'd') return { kind: 'skip', reason: 'delete' };
  if (change.__op === 'r' || isSnapshot(change.__source_snapshot)) return { kind: 'skip', reason: 'snapshot' };
  if (change.__op === 'u') return { kind: 'skip', reason: 'update' };
  if (change.__op !== 'c') return invalid('UNKNOWN_OPERATION', `operation "${change.__op ?? 'missing'}" is not c, u, d or r`);

  const { id, org_id: orgId, org_member_id: orgMemberId, email } = change;
  if (id === null) return invalid('MISSING_ID', 'id is missing');
  if (orgId === null || !ORG_ID.test(orgId)) return invalid('INVALID_ORG_ID', `org_id ${JSON.stringify(orgId)} is not 1-16 letters, digits or _`);
  if (orgMemberId === null || !isValidOrgMemberId(orgMemberId)) {
    return invalid('INVALID_MEMBER_ID', 'org_member_id is empty, longer than 64 or has control characters');
  }
  if (email === null || email.trim() === '') return invalid('MISSING_EMAIL', 'email is missing or empty');
  if (!isPlausibleEmail(email.trim())) return invalid('INVALID_EMAIL', 'email is not a plausible address');
  if (change.__source_ts_ms === null) return invalid('MISSING_SOURCE_TIME', 'source commit timestamp (__source_ts_ms) is missing');

  const createdAt = change.created_at === null ? Number.NaN : Date.parse(change.created_at);
  const optIn = change.marketing_opt_in;
  const binlogAt = change.__source_ts_ms;
  return {
    kind: 'new-member',
    member: {
      memberId: id,
      orgId,
      orgMemberId,
      email: email.trim(),
      firstName: change.first_name,
      lastName: change.last_name,
      locale: change.locale,
      memberCreatedAt: Number.isNaN(createdAt) ? null : createdAt,
      sourceCommittedAt: commitTime(binlogAt, createdAt),
      marketingOptIn: optIn === null ? null : Boolean(optIn),
      transactionId: change.__transaction_id ?? null,
      transactionOrder: change.__transaction_data_collection_order ?? null,
    },
  };
}

/**
 * The binlog event time is exact on MySQL 8 (commit timestamps in microseconds) but whole
 * seconds on MariaDB. When the row's own created_at (milliseconds, set by the server as the
 * INSERT ran) falls inside that same second, it is the better estimate of the commit; an
 * application-supplied or skewed created_at outside that second is ignored.
 */
export function commitTime(binlogAt: number, createdAt: number): number {
  return Number.isFinite(createdAt) && createdAt >= binlogAt && createdAt < binlogAt + 1000 ? createdAt : binlogAt;
}

/** The NewMemberAugmented record (schemas/new-member-augmented.avsc) as avsc expects it. */
export function toAugmentedRecord(member: NewMember, subscriberKey: string, now: number): Record<string, unknown> {
  return {
    member_id: member.memberId,
    org_id: member.orgId,
    org_member_id: member.orgMemberId,
    email: member.email,
    first_name: member.firstName,
    last_name: member.lastName,
    locale: member.locale,
    subscriber_key: subscriberKey,
    // timestamp-millis travel as epoch-millisecond longs (avsc without logical-type classes)
    member_created_at: member.memberCreatedAt,
    source_committed_at: member.sourceCommittedAt,
    augmented_at: now,
    marketing_opt_in: member.marketingOptIn,
    source_transaction_id: member.transactionId ?? null,
    source_transaction_order: member.transactionOrder ?? null,
  };
}
