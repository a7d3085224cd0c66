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
import { FORGOTTEN_TABLE, memberHash } from '../shared/forgotten';

export interface KnownMembers {
  /** memberKeys that already have a Welcome on record. */
  sent: Set<string>;
  /** memberKeys that existed when the pipeline was switched on (`make seed-preexisting`): never welcomed. */
  preExisting: Set<string>;
  /** memberKeys forgotten (`make forget`) → their hash: never sent, whatever else says (held, released, replayed). */
  forgotten: Map<string, string>;
}

export interface SentRecord {
  /**
   * Which of these members were already welcomed, existed before the switch-on or were
   * forgotten: one query for the three tables. `timeoutMs` bounds the pool wait, connect and query together (default 5 s).
   */
  lookup(members: { orgId: string; orgMemberId: string }[], timeoutMs?: number): Promise<KnownMembers>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** The emailer's own read-only user on the audit table, optionally over TLS. */
export type SentRecordConfig = DbSettings & {
  /**
   * Connections kept open: one per chunk in flight (partitionsConsumedConcurrently). Fewer made
   * chunks queue for a connection; idle ones above maxIdle were closed every second and opened
   * again (a TLS handshake) by the next chunk.
   */
  connections?: number;
  /** WELCOME_FORGET_KEY: forgotten members are recorded as its HMAC of their key (shared/forgotten.ts). */
  forgetKey: string;
};

const key = (orgId: string, orgMemberId: string): string => `${orgId}:${orgMemberId}`;
const SENT_TABLE = 'new_members_sent_to_salesforce';
const PREEXISTING_TABLE = 'welcome_preexisting_members';

export function createSentRecord(config: SentRecordConfig): SentRecord {
  const { connections, forgetKey, ...db } = config;
  const size = Math.max(2, connections ?? 4);
  // A database restart closes every pooled connection: mysql2 drops a closed connection from
  // the pool (no crash), a query that meets one fails as SENT_RECORD_UNAVAILABLE (transient: the
  // stage pauses and retries), and the next attempt opens a fresh one. Idle connections are
  // retired after 30 s, so few stale ones are left to meet after a restart.
  const pool: Pool = createPool({
    ...mysqlConnection(db),
    connectionLimit: size,
    connectTimeout: 3_000,
    enableKeepAlive: true,
    maxIdle: size,
    idleTimeout: 30_000,
    timezone: 'Z',
  });
  const tuples = (n: number): string => Array.from({ length: n }, () => '(?, ?)').join(', ');
  const params = (members: { orgId: string; orgMemberId: string }[]): string[] => members.flatMap((m) => [m.orgId, m.orgMemberId]);
  async function query(sql: string, values: string[], what: string, timeoutMs = 5_000): Promise<RowDataPacket[]> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // The pool's wait for a free connection has no timeout of its own: the race bounds it.
      const running = pool.query<RowDataPacket[]>({ sql, timeout: Math.max(1, Math.min(5_000, timeoutMs)) }, values);
      running.catch(() => undefined); // given up on below: its late failure is not unhandled
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms (pool wait, connect and query)`)), timeoutMs);
      });
      const [rows] = await Promise.race([running, late]);
      return rows;
    } catch (err) {
      // Unknown whether they were sent: never guess "no", pause until the table answers.
      throw new PipelineError('SENT_RECORD_UNAVAILABLE', `${what} unreachable: ${(err as Error).message}`, { transient: true, cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
  const select = (table: string, n: number, tag: string): string =>
    `SELECT '${tag}' AS t, org_id, org_member_id FROM ${table} WHERE (org_id, org_member_id) IN (${tuples(n)})`;
  return {
    async lookup(members, timeoutMs) {
      const known: KnownMembers = { sent: new Set(), preExisting: new Set(), forgotten: new Map() };
      if (members.length === 0) return known;
      // The forgotten list holds hashes only: the answer names the hash, mapped back here.
      const byHash = new Map(members.map((m) => [memberHash(forgetKey, m.orgId, m.orgMemberId), key(m.orgId, m.orgMemberId)]));
      const forgotten = `SELECT 'f' AS t, member_hash AS org_id, NULL AS org_member_id FROM ${FORGOTTEN_TABLE} WHERE member_hash IN (${[...byHash.keys()].map(() => '?').join(', ')})`;
      // The three tables in one round trip on one connection: the chunk waits for one answer, not three.
      const rows = await query(
        `${select(SENT_TABLE, members.length, 's')} UNION ALL ${select(PREEXISTING_TABLE, members.length, 'p')} UNION ALL ${forgotten}`,
        [...params(members), ...params(members), ...byHash.keys()],
        `${SENT_TABLE}/${PREEXISTING_TABLE}/${FORGOTTEN_TABLE}`,
        timeoutMs,
      );
      for (const r of rows) {
        if (r.t === 'f') {
          const k = byHash.get(String(r.org_id));
          if (k) known.forgotten.set(k, String(r.org_id));
        } else (r.t === 's' ? known.sent : known.preExisting).add(key(String(r.org_id), String(r.org_member_id)));
      }
      return known;
    },
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
