/**
 * The forgotten-members list as the operator's tools see it (make forget, make replay-dlq,
 * make release-held): the database user FORGET_DB_USER (grants: stack/sql/02-users.sh, only
 * what forgetting needs), over TLS when DB_SSL_CA_FILE is set, and the HMAC key the emailer
 * uses (WELCOME_FORGET_KEY), so all of them recognize the same members.
 */
import { readFileSync } from 'node:fs';
import { createConnection, type Connection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { loadDbSettings, mysqlConnection } from '../consumers/shared/connection-config';
import { FORGOTTEN_TABLE, hashOfKey, loadForgetKey } from '../consumers/shared/forgotten';

const readFile = (p: string): string => readFileSync(p, 'utf8');

export async function forgetDb(env: NodeJS.ProcessEnv = process.env): Promise<Connection> {
  const db = loadDbSettings(env, readFile, { userVar: 'FORGET_DB_USER', passwordVar: 'FORGET_DB_PASSWORD', defaultUser: 'welcome_forget' });
  const conn = await createConnection({ ...mysqlConnection(db), connectTimeout: 5_000, timezone: 'Z' });
  await conn.query("SET time_zone = '+00:00'");
  return conn;
}

export const forgetKey = (env: NodeJS.ProcessEnv = process.env): string => loadForgetKey(env, readFile);

/** Records the member's hash (idempotent: forgetting twice keeps the first time). True when it is new. */
export async function recordForgotten(db: Connection, hash: string): Promise<boolean> {
  const [res] = await db.query<ResultSetHeader>(`INSERT IGNORE INTO ${FORGOTTEN_TABLE} (member_hash) VALUES (?)`, [hash]);
  return res.affectedRows === 1;
}

/**
 * A check for the replay and release tools: is the member a record is keyed by (`org:memberId`,
 * our stages' key) forgotten? The whole list is read once (one hash per erasure request: small).
 * A record keyed otherwise (Debezium's key on the augmenter's dead letters) is not recognized
 * here; the emailer still refuses to send it (docs/member-data.md).
 */
export async function forgottenCheck(env: NodeJS.ProcessEnv = process.env): Promise<(key: Buffer | string | null | undefined) => boolean> {
  const key = forgetKey(env);
  const db = await forgetDb(env);
  try {
    const [rows] = await db.query<RowDataPacket[]>(`SELECT member_hash FROM ${FORGOTTEN_TABLE}`);
    const hashes = new Set(rows.map((r) => String(r.member_hash)));
    return (k) => k !== null && k !== undefined && hashes.has(hashOfKey(key, k.toString()));
  } finally {
    await db.end();
  }
}
