/**
 * Our own durable record of what was sent: the audit table the welcome-audit sink fills
 * from welcome.sent. SFMC rejects a reused messageKey only for 2-3 days; a replay older
 * than that (offsets reset, DLQ replayed late, topic re-read) would send again, so the
 * emailer asks this table first. The table lags welcome.sent by the sink's latency (about
 * a second); inside that gap SFMC's own dedup (109110) still holds.
 */
import { createPool, type Pool, type RowDataPacket } from 'mysql2/promise';
import { PipelineError } from '../shared/errors';
import { mysqlConnection, type DbSettings } from '../shared/connection-config';

export interface SentRecord {
  /** The subset of members (memberKey) that already have a Welcome on record. */
  alreadySent(members: { orgId: string; orgMemberId: string }[]): Promise<Set<string>>;
  /** The subset that existed when the pipeline was switched on (`make seed-preexisting`): never welcomed. */
  preExisting(members: { orgId: string; orgMemberId: string }[]): Promise<Set<string>>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** The emailer's own read-only user on the audit table, optionally over TLS. */
export type SentRecordConfig = DbSettings;

const key = (orgId: string, orgMemberId: string): string => `${orgId}:${orgMemberId}`;

export function createSentRecord(config: SentRecordConfig): SentRecord {
  // A database restart closes every pooled connection: mysql2 drops a closed connection from
  // the pool (no crash), a query that meets one fails as SENT_RECORD_UNAVAILABLE (transient: the
  // stage pauses and retries), and the next attempt opens a fresh one. Idle connections are
  // also retired after 30 s, so few stale ones are left to meet after a restart.
  const pool: Pool = createPool({
    ...mysqlConnection(config),
    connectionLimit: 4,
    connectTimeout: 3_000,
    enableKeepAlive: true,
    maxIdle: 2,
    idleTimeout: 30_000,
    timezone: 'Z',
  });
  async function present(table: string, members: { orgId: string; orgMemberId: string }[]): Promise<Set<string>> {
    if (members.length === 0) return new Set();
    const tuples = members.map(() => '(?, ?)').join(', ');
    try {
      const [rows] = await pool.query<RowDataPacket[]>(
        { sql: `SELECT org_id, org_member_id FROM ${table} WHERE (org_id, org_member_id) IN (${tuples})`, timeout: 5_000 },
        members.flatMap((m) => [m.orgId, m.orgMemberId]),
      );
      return new Set(rows.map((r) => key(String(r.org_id), String(r.org_member_id))));
    } catch (err) {
      // Unknown whether they were sent: never guess "no", pause until the table answers.
      throw new PipelineError('SENT_RECORD_UNAVAILABLE', `${table} unreachable: ${(err as Error).message}`, { transient: true, cause: err });
    }
  }
  return {
    alreadySent: (members) => present('new_members_sent_to_salesforce', members),
    preExisting: (members) => present('welcome_preexisting_members', members),
    async ping() {
      try {
        await pool.query({ sql: 'SELECT 1', timeout: 2_000 });
        return true;
      } catch {
        return false;
      }
    },
    close: () => pool.end(),
  };
}

export const sentKey = key;
