/**
 * Issue 24: stack/sql/02-users.sh handles passwords as secrets. It runs here, against the stack's
 * MariaDB, for a throwaway set of users whose passwords hold ' \ " $ (and the sequences that
 * used to end a literal: \' and a trailing backslash), one user name holding a quote, through
 * both of its paths:
 *   - compose's (no DB_ROOT_CLIENT): root's password from MYSQL_ROOT_PASSWORD. `mysql` is a
 *     wrapper here that records its command line and logs in as a throwaway admin with a
 *     session that starts in NO_BACKSLASH_ESCAPES (a server default that changes what a
 *     backslash means), so the script's own sql_mode has to win;
 *   - the native stack's (DB_ROOT_CLIENT, root over the socket), run again with new passwords.
 * After each, every user logs in with its password (the CDC and sink users over TLS: REQUIRE
 * SSL), a wrong password is refused, and the CDC user holds no RELOAD.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { rootDb } from '../support/db';
import { ROOT, runId, STATE_DIR, stackEnv } from '../support/env';

jest.setTimeout(60_000);

const tag = runId.slice(-8);
const users = {
  CDC: `t${tag}_cd'c`,
  SINK: `t${tag}_sink`,
  EMAILER: `t${tag}_mail`,
  DELIVERY: `t${tag}_dlv`,
  FORGET: `t${tag}_fgt`,
};
const admin = { user: `t${tag}_admin`, password: `ad'm\\in"$HOME\\` };
const tricky = (n: string, round: number): string => `${n}${round}'q\\'b"s$USER\\n%x\\`;
const ca = readFileSync(join(STATE_DIR, 'tls', 'ca.crt'));
const tlsUsers = new Set(['CDC', 'SINK', 'FORGET']); // REQUIRE SSL with DB_REQUIRE_SSL=1

let root: Connection;
let dir: string;

beforeAll(async () => {
  root = await rootDb();
  await root.query('CREATE USER ?@? IDENTIFIED BY ?', [admin.user, '%', admin.password]);
  await root.query('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [admin.user, '%']);
  dir = mkdtempSync(join(tmpdir(), 'db-users-'));
  // `mysql` of the compose path: records its arguments (what `ps` shows), then the real client
  // as the throwaway admin, over TCP, in a session that starts with NO_BACKSLASH_ESCAPES
  writeFileSync(
    join(dir, 'mysql'),
    [
      '#!/bin/sh',
      `printf '%s\\n' "$@" > '${dir}/argv'`,
      `exec mariadb "$@" --user='${admin.user}' --host=127.0.0.1 --port=${stackEnv.dbPort} --init-command="SET SESSION sql_mode='NO_BACKSLASH_ESCAPES'"`,
      '',
    ].join('\n'),
  );
  chmodSync(join(dir, 'mysql'), 0o755);
});

afterAll(async () => {
  for (const u of [...Object.values(users), admin.user]) await root.query('DROP USER IF EXISTS ?@?', [u, '%']);
  await root.end();
  rmSync(dir, { recursive: true, force: true });
});

function runUsersScript(env: Record<string, string>, round: number): void {
  const vars: Record<string, string> = { DB_REQUIRE_SSL: '1' };
  for (const [k, name] of Object.entries(users)) {
    vars[`${k}_DB_USER`] = name;
    vars[`${k}_DB_PASSWORD`] = tricky(k, round);
  }
  const { DB_ROOT_CLIENT: _ignored, ...base } = process.env;
  const r = spawnSync('bash', [join(ROOT, 'stack', 'sql', '02-users.sh')], { env: { ...base, ...vars, ...env }, encoding: 'utf8', timeout: 30_000 });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
}

async function login(k: keyof typeof users, password: string): Promise<string> {
  const db = await createConnection({
    host: '127.0.0.1',
    port: stackEnv.dbPort,
    user: users[k],
    password,
    ...(tlsUsers.has(k) ? { ssl: { ca } } : {}),
  });
  try {
    const [rows] = await db.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u');
    return String(rows[0]?.u);
  } finally {
    await db.end();
  }
}

async function everyUserLogsIn(round: number): Promise<void> {
  for (const k of Object.keys(users) as (keyof typeof users)[]) {
    expect(await login(k, tricky(k, round))).toBe(`${users[k]}@%`);
    await expect(login(k, `${tricky(k, round)}x`)).rejects.toThrow(/Access denied/);
  }
  const [grants] = await root.query<RowDataPacket[]>('SHOW GRANTS FOR ?@?', [users.CDC, '%']);
  const text = grants.map((g) => String(Object.values(g)[0])).join('\n');
  expect(text).toMatch(/REPLICATION SLAVE/);
  expect(text).not.toMatch(/RELOAD/);
}

test("compose's path: root's password through an option file on a pipe, the script's sql_mode wins", async () => {
  runUsersScript({ PATH: `${dir}:${process.env.PATH ?? ''}`, MYSQL_ROOT_PASSWORD: admin.password }, 1);
  const argv = readFileSync(join(dir, 'argv'), 'utf8');
  expect(argv).toMatch(/^--defaults-extra-file=\/dev\/fd\/\d+\n-uroot\n$/);
  for (const secret of [admin.password, ...Object.keys(users).map((k) => tricky(k, 1))]) expect(argv).not.toContain(secret);
  await everyUserLogsIn(1);
});

test("the native stack's path (root over the socket) changes every password", async () => {
  const client = `mariadb --defaults-file=${join(STATE_DIR, 'mariadb', 'my.cnf')} --socket=${stackEnv.dbSocket} -uroot`;
  runUsersScript({ DB_ROOT_CLIENT: client }, 2);
  await everyUserLogsIn(2);
  await expect(login('EMAILER', tricky('EMAILER', 1))).rejects.toThrow(/Access denied/);
});
