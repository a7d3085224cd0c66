import type { MemberChange } from '../../../consumers/augmenter/member-change';
import { commitTime, toAugmentedRecord, toNewMember } from '../../../consumers/augmenter/transform';

const change = (over: Partial<MemberChange> = {}): MemberChange => ({
  id: 42,
  org_id: 'UA',
  org_member_id: '00123456',
  email: 'ann@example.com',
  first_name: 'Ann',
  last_name: null,
  locale: 'en-US',
  created_at: '2026-11-25T09:00:00.123Z',
  marketing_opt_in: null,
  __op: 'c',
  __source_ts_ms: 1_764_061_200_500,
  __source_snapshot: 'false',
  __deleted: 'false',
  __transaction_id: '0-1-30',
  __transaction_data_collection_order: 2,
  ts_ms: null,
  ...over,
});

describe('toNewMember', () => {
  test('a committed insert is a new member with every field carried', () => {
    expect(toNewMember(change())).toEqual({
      kind: 'new-member',
      member: {
        memberId: 42,
        orgId: 'UA',
        orgMemberId: '00123456',
        email: 'ann@example.com',
        firstName: 'Ann',
        lastName: null,
        locale: 'en-US',
        memberCreatedAt: Date.parse('2026-11-25T09:00:00.123Z'),
        sourceCommittedAt: 1_764_061_200_500,
        marketingOptIn: null,
        transactionId: '0-1-30',
        transactionOrder: 2,
      },
    });
  });

  test('a change without transaction metadata (a re-drive, or the connector without it) carries nulls, not a guess', () => {
    const verdict = toNewMember(change({ __transaction_id: null, __transaction_data_collection_order: undefined }));
    expect(verdict).toMatchObject({ kind: 'new-member', member: { transactionId: null, transactionOrder: null } });
  });

  test.each([
    ['a snapshot read', { __op: 'r', __source_snapshot: 'true' }, 'snapshot'],
    ['a create flagged as snapshot (last row of a snapshot)', { __op: 'c', __source_snapshot: 'last' }, 'snapshot'],
    ['an update', { __op: 'u' }, 'update'],
    ['a delete', { __op: 'd', __deleted: 'true' }, 'delete'],
    ['a rewritten delete without op', { __op: 'c', __deleted: 'true' }, 'delete'],
    ['a heartbeat', { __op: null, org_id: null, org_member_id: null, email: null, ts_ms: 1 }, 'heartbeat'],
  ] as const)('%s is skipped, never a new member', (_name, over, reason) => {
    expect(toNewMember(change(over as Partial<MemberChange>))).toEqual({ kind: 'skip', reason });
  });

  test('a tombstone is skipped', () => {
    expect(toNewMember(null)).toEqual({ kind: 'skip', reason: 'tombstone' });
  });

  test.each([
    ['missing operation', { __op: null }, 'UNKNOWN_OPERATION'],
    ['unknown operation', { __op: 't' }, 'UNKNOWN_OPERATION'],
    ['NULL email', { email: null }, 'MISSING_EMAIL'],
    ['empty email', { email: '  ' }, 'MISSING_EMAIL'],
    ['invalid email', { email: 'not-an-address' }, 'INVALID_EMAIL'],
    ['email with two @', { email: 'a@b@example.com' }, 'INVALID_EMAIL'],
    ['email over 254 characters', { email: `${'a'.repeat(250)}@example.com` }, 'INVALID_EMAIL'],
    ['org id with odd characters', { org_id: 'U-A' }, 'INVALID_ORG_ID'],
    ['member id with a control character', { org_member_id: 'a\u0007b' }, 'INVALID_MEMBER_ID'],
    ['empty member id', { org_member_id: '' }, 'INVALID_MEMBER_ID'],
    ['no source commit time', { __source_ts_ms: null }, 'MISSING_SOURCE_TIME'],
  ] as const)('%s is invalid with code %s', (_name, over, code) => {
    const verdict = toNewMember(change(over as Partial<MemberChange>));
    expect(verdict).toMatchObject({ kind: 'invalid', code });
  });

  test('a unicode email and a 254-character email are accepted', () => {
    expect(toNewMember(change({ email: 'zoë.ünïcode@exämple.com' })).kind).toBe('new-member');
    const long = `${'a'.repeat(254 - '@example.com'.length)}@example.com`;
    expect(long).toHaveLength(254);
    expect(toNewMember(change({ email: long })).kind).toBe('new-member');
  });

  test('marketing_opt_in arrives as TINYINT and becomes a boolean', () => {
    expect(toNewMember(change({ marketing_opt_in: 1 }))).toMatchObject({ member: { marketingOptIn: true } });
    expect(toNewMember(change({ marketing_opt_in: 0 }))).toMatchObject({ member: { marketingOptIn: false } });
  });

  test('timestamps at the epoch and past 2038 are carried exactly', () => {
    const epoch = toNewMember(change({ created_at: '1970-01-01T00:00:00Z', __source_ts_ms: 0 }));
    expect(epoch).toMatchObject({ member: { memberCreatedAt: 0, sourceCommittedAt: 0 } });
    const y2040 = Date.parse('2040-02-29T12:00:00.001Z');
    expect(toNewMember(change({ created_at: '2040-02-29T12:00:00.001Z', __source_ts_ms: y2040 }))).toMatchObject({
      member: { memberCreatedAt: y2040, sourceCommittedAt: y2040 },
    });
  });
});

describe('commitTime', () => {
  test('a created_at inside the binlog second refines a whole-second binlog time (MariaDB)', () => {
    expect(commitTime(1_000_000, 1_000_456)).toBe(1_000_456);
  });
  test('a created_at outside that second (app-supplied, skewed, or a precise MySQL binlog time) is ignored', () => {
    expect(commitTime(1_000_000, 999_999)).toBe(1_000_000);
    expect(commitTime(1_000_000, 1_001_000)).toBe(1_000_000);
    expect(commitTime(1_000_123, Number.NaN)).toBe(1_000_123);
  });
});

test('toAugmentedRecord carries the source commit time, the subscriber key and the transaction position', () => {
  const verdict = toNewMember(change({ marketing_opt_in: 1 }));
  if (verdict.kind !== 'new-member') throw new Error('expected a new member');
  expect(toAugmentedRecord(verdict.member, 'UA-KEY', 1_764_061_201_000)).toEqual({
    member_id: 42,
    org_id: 'UA',
    org_member_id: '00123456',
    email: 'ann@example.com',
    first_name: 'Ann',
    last_name: null,
    locale: 'en-US',
    subscriber_key: 'UA-KEY',
    member_created_at: Date.parse('2026-11-25T09:00:00.123Z'),
    source_committed_at: 1_764_061_200_500,
    augmented_at: 1_764_061_201_000,
    marketing_opt_in: true,
    source_transaction_id: '0-1-30',
    source_transaction_order: 2,
  });
});
