/**
 * The database connection of the operator's commands (seed-preexisting, reconcile).
 * Production: OPS_DB_USER / OPS_DB_PASSWORD (or OPS_DB_PASSWORD_FILE) on DB_HOST:DB_PORT,
 * a user with SELECT on members, new_members_sent_to_salesforce and
 * welcome_preexisting_members, and INSERT on welcome_preexisting_members (docs). Locally,
 * without OPS_DB_USER: root over the stack's own socket (unix_socket auth, no password).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Connection } from 'mysql2/promise';
import { int, optionalStr, secret, str } from '../consumers/shared/env';

export async function opsDb(env: NodeJS.ProcessEnv = process.env): Promise<Connection> {
  const user = optionalStr(env, 'OPS_DB_USER');
  const common = { database: str(env, 'DB_NAME', 'loyalty'), timezone: 'Z', supportBigNumbers: true, bigNumberStrings: false } as const;
  const db = user
    ? await createConnection({
        ...common,
        host: str(env, 'DB_HOST', '127.0.0.1'),
        port: int(env, 'DB_PORT', 3306, 1, 65535),
        user,
        password: secret(env, 'OPS_DB_PASSWORD', (p) => readFileSync(p, 'utf8')),
      })
    : await createConnection({ ...common, socketPath: join(env.STATE_DIR ?? '.state', 'mariadb', 'mariadb.sock'), user: env.USER ?? 'root' });
  await db.query("SET time_zone = '+00:00'");
  return db;
}

/** "12,345" — progress lines are read by people. */
export const n = (v: number): string => v.toLocaleString('en-US');
