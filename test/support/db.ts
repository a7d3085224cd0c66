import { createConnection, type Connection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { stackEnv } from './env';

/** Root over the stack's own socket (unix_socket auth: no password exists to leak). */
export async function rootDb(): Promise<Connection> {
  const db = await createConnection({ socketPath: stackEnv.dbSocket, user: process.env.USER ?? 'root', database: 'loyalty', timezone: 'Z' });
  await db.query("SET time_zone = '+00:00'");
  return db;
}

export interface MemberRow {
  org_id: string;
  org_member_id: string;
  email: string;
  first_name?: string | null;
  last_name?: string | null;
  locale?: string | null;
}

/** Inserts members in one multi-row INSERT (one transaction); returns their ids. */
export async function insertMembers(db: Connection, rows: MemberRow[], opts: { noBinlog?: boolean } = {}): Promise<number[]> {
  if (opts.noBinlog) await db.query('SET SESSION sql_log_bin = 0');
  try {
    const [res] = await db.query<ResultSetHeader>('INSERT INTO members (org_id, org_member_id, email, first_name, last_name, locale) VALUES ?', [
      rows.map((r) => [r.org_id, r.org_member_id, r.email, r.first_name ?? null, r.last_name ?? null, r.locale ?? null]),
    ]);
    return rows.map((_, i) => res.insertId + i);
  } finally {
    if (opts.noBinlog) await db.query('SET SESSION sql_log_bin = 1');
  }
}

export async function query<T extends RowDataPacket>(db: Connection, sql: string, params: unknown[] = []): Promise<T[]> {
  const [rows] = await db.query<T[]>(sql, params);
  return rows;
}

/**
 * Until fewer than `below` members of the organization were counted by the send-rate breaker in
 * the last minute (its window, shared by every replica and kept in the database): a test that
 * counts on the ceiling's full allowance waits out an earlier test's members.
 */
export async function waitBreakerWindowBelow(db: Connection, orgId: string, below: number, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [[row]] = await db.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM welcome_send_admissions WHERE org_id = ? AND counted_at > NOW(3) - INTERVAL 60 SECOND',
      [orgId],
    );
    if (Number(row?.n ?? 0) < below) return;
    if (Date.now() > deadline) throw new Error(`the ${orgId} breaker window still had ${String(row?.n)} members after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
