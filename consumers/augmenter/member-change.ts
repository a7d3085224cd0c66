/**
 * Our reader view of the Debezium change events on the member topic (ExtractNewRecordState
 * with op, source.ts_ms, source.snapshot and the transaction's id and order kept). Every field is optional here on purpose:
 * the writer schema may gain, widen or make nullable columns, and the transform — not the
 * decoder — decides what a usable record is, so a bad row is dead-lettered with a reason.
 */
import avro from 'avsc';

export interface MemberChange {
  id: number | null;
  org_id: string | null;
  org_member_id: string | null;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  locale: string | null;
  created_at: string | null;
  marketing_opt_in: number | boolean | null;
  __op: string | null;
  __source_ts_ms: number | null;
  __source_snapshot: string | null;
  __deleted: string | null;
  /** Debezium transaction metadata (provide.transaction.metadata): which transaction, and the row's place among its member changes. */
  __transaction_id?: string | null;
  __transaction_data_collection_order?: number | null;
  /** Present only on Debezium heartbeat records. */
  ts_ms: number | null;
}

const optional = (name: string, ...types: string[]): avro.Schema => ({ name, type: ['null', ...types], default: null }) as unknown as avro.Schema;

/** The writer's full name becomes an alias, so avsc resolves whatever the topic prefix is. */
export function memberChangeReader(writerName: string | undefined): avro.Type {
  return avro.Type.forSchema(
    {
      type: 'record',
      name: 'MemberChange',
      namespace: 'welcome.reader',
      aliases: writerName ? [writerName] : [],
      fields: [
        optional('id', 'long'),
        optional('org_id', 'string'),
        optional('org_member_id', 'string'),
        optional('email', 'string'),
        optional('first_name', 'string'),
        optional('last_name', 'string'),
        optional('locale', 'string'),
        optional('created_at', 'string'),
        // TINYINT(1) arrives as int (MySQL) or boolean (if mapped so); both are read.
        optional('marketing_opt_in', 'int', 'boolean'),
        optional('__op', 'string'),
        optional('__source_ts_ms', 'long'),
        optional('__source_snapshot', 'string'),
        optional('__deleted', 'string'),
        optional('__transaction_id', 'string'),
        optional('__transaction_data_collection_order', 'long'),
        optional('ts_ms', 'long'),
      ],
    } as avro.Schema,
    { wrapUnions: false },
  );
}

/** The augmenter's view, one instance so the registry builds each writer's resolver once. */
export const memberChangeView = (writer: avro.Type): avro.Type => memberChangeReader(writer.name);
