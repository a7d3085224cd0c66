/**
 * Reads loyalty.welcome_delivery_status (written only by the welcome-delivery-status sink):
 * which Welcomes are still EmailQueued and due for another status call, and the counts
 * `make status` shows. Read-only: this stage's database user has SELECT on that table only.
 */
import { createPool, type Pool, type RowDataPacket } from 'mysql2/promise';
import { PipelineError } from '../shared/errors';
import type { SentWelcome } from './transform';

export interface DueWelcome extends SentWelcome {
  checks: number;
}

export interface StatusTable {
  /** EmailQueued rows whose next check is due, oldest first. */
  due(now: number, limit: number): Promise<DueWelcome[]>;
  queuedCount(): Promise<number>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface StatusTableConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** TLS with this CA; verifyHost false: the certificate only (DB_SSL_MODE=verify-ca) */
  tls?: { ca: string; verifyHost: boolean };
}

const millis = (v: unknown): number => (v instanceof Date ? v.getTime() : Date.parse(String(v)));

export function createStatusTable(config: StatusTableConfig): StatusTable {
  const { tls, ...conn } = config;
  const ssl = tls ? { ca: tls.ca, rejectUnauthorized: true, ...(tls.verifyHost ? {} : { checkServerIdentity: () => undefined }) } : undefined;
  const pool: Pool = createPool({
    ...conn,
    ...(ssl ? { ssl } : {}),
    connectionLimit: 2,
    connectTimeout: 3_000,
    enableKeepAlive: true,
    timezone: 'Z',
  });
  const query = async (sql: string, values: unknown[]): Promise<RowDataPacket[]> => {
    try {
      const [rows] = await pool.query<RowDataPacket[]>({ sql, timeout: 5_000 }, values);
      return rows;
    } catch (err) {
      throw new PipelineError('STATUS_TABLE_UNAVAILABLE', `delivery status table unreachable: ${(err as Error).message}`, {
        transient: true,
        cause: err,
      });
    }
  };
  return {
    async due(now, limit) {
      // ix_due (status, next_check_at) serves this range scan.
      const rows = await query(
        "SELECT org_id, org_member_id, message_key, sent_at, checks FROM welcome_delivery_status WHERE status = 'EmailQueued' AND next_check_at <= ? ORDER BY next_check_at LIMIT ?",
        [new Date(now), limit],
      );
      return rows.map((r) => ({
        org_id: String(r.org_id),
        org_member_id: String(r.org_member_id),
        message_key: String(r.message_key),
        sent_at: millis(r.sent_at),
        checks: Number(r.checks),
      }));
    },
    async queuedCount() {
      const rows = await query("SELECT COUNT(*) AS n FROM welcome_delivery_status WHERE status = 'EmailQueued'", []);
      return Number(rows[0]?.n ?? 0);
    },
    async ping() {
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    close: () => pool.end(),
  };
}
