/**
 * Issue 13: the local MariaDB serves TLS with a certificate of the stack's CA. A CDC user
 * with REQUIRE SSL (a copy of the stack's, so the other tests keep their plain connection)
 * is refused without TLS and accepted with it; the preflight and the emailer's audit-table
 * pool verify the certificate against the CA.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { createSentRecord } from '../../consumers/emailer/sent-record';
import { rootDb } from '../support/db';
import { ROOT, runId, STATE_DIR, stackEnv } from '../support/env';

jest.setTimeout(120_000);

const ca = readFileSync(join(STATE_DIR, 'tls', 'ca.crt'), 'utf8');
const user = `cdc_tls_${runId}`.slice(0, 32);
const password = `pw-${runId}`;
let root: Connection;

beforeAll(async () => {
  root = await rootDb();
  await root.query('CREATE USER ?@? IDENTIFIED BY ? REQUIRE SSL', [user, '%', password]);
  await root.query('GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO ?@?', [user, '%']);
  await root.query('GRANT SELECT ON loyalty.members TO ?@?', [user, '%']);
  await root.query('GRANT SELECT ON loyalty.new_members_sent_to_salesforce TO ?@?', [user, '%']);
});
afterAll(async () => {
  await root.query('DROP USER IF EXISTS ?@?', [user, '%']);
  await root.end();
});

const connectAs = (ssl?: object): Promise<Connection> =>
  createConnection({ host: '127.0.0.1', port: stackEnv.dbPort, user, password, database: 'loyalty', ...(ssl ? { ssl } : {}) });

test('without TLS the REQUIRE SSL user is refused', async () => {
  await expect(connectAs()).rejects.toThrow(/Access denied for user/);
});

test('with the CA verified (host name included) the session is encrypted', async () => {
  const c = await connectAs({ ca, rejectUnauthorized: true });
  try {
    const [[row]] = await c.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_version'");
    expect(String(row?.Value)).toMatch(/^TLSv1\.[23]$/);
  } finally {
    await c.end();
  }
});

test('a client trusting another CA is refused by its own check', async () => {
  const other = readFileSync(join(STATE_DIR, 'tls', 'kafka.crt'), 'utf8'); // a leaf, not our CA
  await expect(connectAs({ ca: other, rejectUnauthorized: true })).rejects.toThrow(/certificate/i);
});

test("the emailer's audit-table pool works over TLS", async () => {
  const sent = createSentRecord({ host: '127.0.0.1', port: stackEnv.dbPort, user, password, database: 'loyalty', tls: { ca, verifyHost: true } });
  try {
    expect(await sent.ping()).toBe(true);
    expect(await sent.alreadySent([{ orgId: 'UA', orgMemberId: `none-${runId}` }])).toEqual(new Set());
  } finally {
    await sent.close();
  }
});

test('the preflight passes as that user over TLS and says so', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'tools', 'db-preflight.js')], {
    env: {
      ...process.env,
      CDC_DB_USER: user,
      CDC_DB_PASSWORD: password,
      DB_SSL_CA_FILE: join(STATE_DIR, 'tls', 'ca.crt'),
      DB_SSL_MODE: 'verify-full',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise((r) => child.once('exit', r));
  expect({ code, out }).toEqual({ code: 0, out: expect.stringMatching(/\(mariadb, TLS TLS_\w+\) ready for CDC as cdc_tls_/) as unknown as string });
});
