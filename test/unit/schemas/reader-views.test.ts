/**
 * Issue 5 (3): consumers decode with the writer schema and read through their own view, so
 * records written under an old and a new version both come out right. Here without a
 * registry: the writer is given directly, the resolution is the same one registry.decode does.
 */
import avro from 'avsc';
import { memberChangeReader, type MemberChange } from '../../../consumers/augmenter/member-change';
import { toAugmentedRecord, toNewMember } from '../../../consumers/augmenter/transform';
import { augmentedMemberReader, type AugmentedMember } from '../../../consumers/emailer/augmented-member';
import { loadSchema } from '../../../consumers/shared/schemas';

const read = <T>(reader: avro.Type, writer: avro.Type, value: unknown): T =>
  reader.fromBuffer(writer.toBuffer(value), reader.createResolver(writer)) as T;

// The shape Debezium registers for cdc.*.loyalty.members (ExtractNewRecordState, avro name adjustment).
const opt = (name: string, type: unknown, dflt: unknown = null): object => ({
  name,
  type: dflt === null ? ['null', type] : [type, 'null'],
  default: dflt,
});
const debeziumV1 = {
  type: 'record',
  name: 'Value',
  namespace: 'cdc.loyalty.members',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'org_id', type: 'string' },
    { name: 'org_member_id', type: 'string' },
    { name: 'email', type: 'string' },
    opt('first_name', 'string'),
    opt('last_name', 'string'),
    opt('locale', 'string'),
    { name: 'created_at', type: { type: 'string', 'connect.version': 1, 'connect.name': 'io.debezium.time.ZonedTimestamp' } },
    opt('__op', 'string'),
    opt('__source_ts_ms', 'long'),
    opt('__source_snapshot', 'string'),
    opt('__deleted', 'string'),
  ],
};
// After ALTER TABLE ... ADD marketing_opt_in TINYINT NULL, ADD consent_source VARCHAR(32) NULL DEFAULT 'signup':
// what Apicurio's converter registered on the real stack (the default's type comes first in the union).
const debeziumV3 = {
  ...debeziumV1,
  fields: [
    ...debeziumV1.fields,
    opt('marketing_opt_in', { type: 'int', 'connect.type': 'int16' }),
    opt('consent_source', { type: 'string', 'connect.default': 'signup' }, 'signup'),
  ],
};

const row = {
  id: 7,
  org_id: 'UA',
  org_member_id: 'M7',
  email: 'm7@example.com',
  first_name: null,
  last_name: null,
  locale: 'en-US',
  created_at: '2026-01-02T03:04:05.678Z',
  __op: 'c',
  __source_ts_ms: 1_767_000_000_000,
  __source_snapshot: 'false',
  __deleted: 'false',
};

test('the member view reads Debezium records written before and after the columns were added', () => {
  const v1 = avro.Type.forSchema(debeziumV1 as avro.Schema, { wrapUnions: false });
  const v3 = avro.Type.forSchema(debeziumV3 as avro.Schema, { wrapUnions: false });
  const old = read<MemberChange>(memberChangeReader(v1.name), v1, row);
  const neu = read<MemberChange>(memberChangeReader(v3.name), v3, { ...row, marketing_opt_in: 1, consent_source: 'signup' });
  expect(old).toMatchObject({ org_member_id: 'M7', marketing_opt_in: null, __op: 'c' });
  expect(neu).toMatchObject({ org_member_id: 'M7', marketing_opt_in: 1, __op: 'c' });

  const verdictOld = toNewMember(old);
  const verdictNew = toNewMember(neu);
  expect(verdictOld.kind === 'new-member' && toAugmentedRecord(verdictOld.member, 'SK', 1).marketing_opt_in).toBeNull();
  expect(verdictNew.kind === 'new-member' && toAugmentedRecord(verdictNew.member, 'SK', 1).marketing_opt_in).toBe(true);
});

test('the emailer view reads NewMemberAugmented written before marketing_opt_in existed', () => {
  const current = loadSchema('new-member-augmented.avsc') as { fields: { name: string }[] };
  const before = avro.Type.forSchema({ ...current, fields: current.fields.filter((f) => f.name !== 'marketing_opt_in') } as avro.Schema, {
    wrapUnions: false,
  });
  const value = {
    member_id: 1,
    org_id: 'UA',
    org_member_id: 'M1',
    email: 'a@example.com',
    first_name: null,
    last_name: null,
    locale: null,
    subscriber_key: 'SK',
    member_created_at: null,
    source_committed_at: 1,
    augmented_at: 2,
  };
  const member = read<AugmentedMember>(augmentedMemberReader(), before, value);
  expect(member).toMatchObject({ org_member_id: 'M1', subscriber_key: 'SK', marketing_opt_in: null });
});
