/**
 * Issue 13: the local MariaDB serves TLS with a certificate of the stack's CA, and the users
 * Kafka Connect logs in as (CDC and sink: stack/sql/02-users.sh, DB_REQUIRE_SSL=1) are
 * REQUIRE SSL. So the stack's own connectors can only run because they verify that
 * certificate (connect/flavours/mariadb); the preflight, the emailer's audit-table pool and
 * the running connectors are checked here on that path.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { loadDeliveryStatusConfig } from '../../consumers/delivery-status/config';
import { createStatusTable } from '../../consumers/delivery-status/status-table';
import { createSentRecord } from '../../consumers/emailer/sent-record';
import { rootDb } from '../support/db';
import { ROOT, runId, STATE_DIR, stackEnv, connectRest } from '../support/env';

jest.setTimeout(120_000);

const ca = readFileSync(join(STATE_DIR, 'tls', 'ca.crt'), 'utf8');
const env = process.env;
const users = {
  cdc: { user: stackEnv.cdcUser, password: stackEnv.cdcPassword },
  sink: { user: env.SINK_DB_USER ?? 'welcome_audit', password: env.SINK_DB_PASSWORD ?? '' },
};
let root: Connection;
beforeAll(async () => {
  root = await rootDb();
});
afterAll(async () => {
  await root.end();
});

const connectAs = (who: keyof typeof users, ssl?: object): Promise<Connection> =>
  createConnection({ host: '127.0.0.1', port: stackEnv.dbPort, ...users[who], database: 'loyalty', ...(ssl ? { ssl } : {}) });

test.each(['cdc', 'sink'] as const)("without TLS the stack's %s user is refused", async (who) => {
  await expect(connectAs(who)).rejects.toThrow(/Access denied for user/);
  const [[row]] = await root.query<RowDataPacket[]>('SHOW CREATE USER ?@?', [users[who].user, '%']);
  expect(String(Object.values(row ?? {})[0])).toMatch(/ REQUIRE SSL\b/);
});

test('with the CA verified (host name included) the CDC session is encrypted', async () => {
  const c = await connectAs('cdc', { ca, rejectUnauthorized: true });
  try {
    const [[row]] = await c.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_version'");
    expect(String(row?.Value)).toMatch(/^TLSv1\.[23]$/);
  } finally {
    await c.end();
  }
});

test('a client trusting another CA is refused by its own check', async () => {
  const other = readFileSync(join(STATE_DIR, 'tls', 'kafka.crt'), 'utf8'); // a leaf, not our CA
  await expect(connectAs('cdc', { ca: other, rejectUnauthorized: true })).rejects.toThrow(/certificate/i);
});

test("the emailer's audit-table pool works over TLS", async () => {
  const sent = createSentRecord({
    host: '127.0.0.1',
    port: stackEnv.dbPort,
    user: env.EMAILER_DB_USER ?? 'welcome_emailer',
    password: env.EMAILER_DB_PASSWORD ?? '',
    database: 'loyalty',
    tls: { ca, verifyHost: true },
    forgetKey: env.WELCOME_FORGET_KEY ?? '',
  });
  try {
    expect(await sent.ping()).toBe(true);
    expect(await sent.lookup([{ orgId: 'UA', orgMemberId: `none-${runId}` }])).toEqual({
      sent: new Set(),
      preExisting: new Set(),
      forgotten: new Map(),
    });
  } finally {
    await sent.close();
  }
});

test("the delivery-status stage's status-table pool, configured from the stack's settings, works over TLS", async () => {
  // a REQUIRE SSL copy of the stage's user (its own stays plain: `make status` reads as it)
  const user = `ds_tls_${runId}`.slice(0, 32);
  const password = `pw-${runId}`;
  await root.query('CREATE USER ?@? IDENTIFIED BY ? REQUIRE SSL', [user, '%', password]);
  try {
    await root.query('GRANT SELECT ON loyalty.welcome_delivery_status TO ?@?', [user, '%']);
    const { db } = loadDeliveryStatusConfig({ ...env, DELIVERY_DB_USER: user, DELIVERY_DB_PASSWORD: password });
    expect(db.tls).toEqual({ ca, verifyHost: true }); // DB_SSL_CA_FILE from stack/bin/lib.sh
    const { tls: _plain, ...withoutTls } = db;
    for (const [config, expected] of [
      [db, true],
      [withoutTls, false],
    ] as const) {
      const table = createStatusTable(config);
      try {
        expect({ tls: 'tls' in config, ping: await table.ping() }).toEqual({ tls: 'tls' in config, ping: expected });
      } finally {
        await table.close();
      }
    }
  } finally {
    await root.query('DROP USER IF EXISTS ?@?', [user, '%']);
  }
});

function preflight(extra: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'tools', 'db-preflight.js')], {
    env: { ...env, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((r) => child.once('exit', (code) => r({ code, out })));
}

test('the preflight, with the stack settings as `make connectors` runs it, passes over verified TLS with nothing to note', async () => {
  // DB_SSL_CA_FILE and DB_SSL_MODE come from stack/bin/lib.sh, as they do for `make connectors`
  const r = await preflight({});
  expect(r).toEqual({
    code: 0,
    out: expect.stringMatching(/^db-preflight: \S+ \(mariadb, TLS TLS_\w+\) ready for CDC as \S+\n$/) as unknown as string,
  });
});

test('the preflight names a CDC user that may log in without TLS (a copy of the stack user, REQUIRE NONE)', async () => {
  const user = `cdc_plain_${runId}`.slice(0, 32);
  const password = `pw-${runId}`;
  await root.query('CREATE USER ?@? IDENTIFIED BY ? REQUIRE NONE', [user, '%', password]);
  try {
    await root.query('GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO ?@?', [user, '%']);
    await root.query('GRANT SELECT ON loyalty.members TO ?@?', [user, '%']);
    const r = await preflight({ CDC_DB_USER: user, CDC_DB_PASSWORD: password, DB_SSL_CA_FILE: '' });
    expect(r.code).toBe(0);
    expect(r.out).toContain('db-preflight: note: this session is not encrypted');
    expect(r.out).toContain('db-preflight: note: the CDC user may log in without TLS (REQUIRE NONE)');
    expect(r.out).toMatch(/\(mariadb, no TLS\) ready for CDC/);
  } finally {
    await root.query('DROP USER IF EXISTS ?@?', [user, '%']);
  }
});

test.each(['members-source', 'welcome-audit', 'welcome-delivery-status'])(
  '%s runs on the stack over verified TLS (its user is REQUIRE SSL)',
  async (name) => {
    const res = await connectRest.fetch(`/connectors/${name}`, { signal: AbortSignal.timeout(10_000) });
    const c = (await res.json()) as { config: Record<string, string> };
    const tls = name === 'members-source' ? c.config['database.ssl.mode'] : /sslMode=([\w-]+)/.exec(c.config['connection.url'] ?? '')?.[1];
    expect(tls).toBe('verify-full');
    const s = (await (await connectRest.fetch(`/connectors/${name}/status`)).json()) as { tasks: { state: string }[] };
    expect(s.tasks.map((t) => t.state)).toEqual(['RUNNING']);
  },
);
