/**
 * Issue 4, security: secrets only from the environment, never in files, logs or Connect's
 * REST output; logs identify members without PII; the CDC user reads only what it needs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection, type Connection } from 'mysql2/promise';
import { insertMembers, rootDb } from '../support/db';
import { ROOT, runId, STATE_DIR, stackEnv, connectRest } from '../support/env';
import { acceptedSends } from '../support/standins';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

const SECRET_NAMES = ['CDC_DB_PASSWORD', 'SINK_DB_PASSWORD', 'EMAILER_DB_PASSWORD', 'DW_API_TOKEN', 'SFMC_CLIENT_SECRET', 'CONNECT_REST_PASSWORD'];
const secrets = SECRET_NAMES.map((n) => [n, process.env[n] ?? ''] as const);

function restartWithLogLevel(services: string[], level: string | undefined): void {
  const env = { ...process.env };
  if (level) env.LOG_LEVEL = level;
  else delete env.LOG_LEVEL;
  execFileSync(join(ROOT, 'stack/bin/stack'), ['restart', ...services], { env, stdio: 'ignore' });
}

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
});
afterAll(async () => {
  await db.end();
});

test('the generated secrets are set and long enough to mean something', () => {
  for (const [name, value] of secrets) expect({ name, length: value.length >= 16 }).toEqual({ name, length: true });
});

test("no secret appears in connect/*.json, in Connect's REST output, or in any log, even at trace level", async () => {
  const connectFiles = readdirSync(join(ROOT, 'connect'), { recursive: true }).filter((f) => String(f).endsWith('.json'));
  const rest = await Promise.all(
    [
      '/connectors?expand=info&expand=status',
      '/connectors/members-source/config',
      '/connectors/welcome-audit/config',
      '/connectors/members-source/tasks',
    ].map(async (p) => (await connectRest.fetch(p)).text()),
  );
  expect(rest.join('')).toContain('${env:CDC_DB_PASSWORD}');

  // Consumers at trace level while a member flows through, then back to the default.
  const id = `sec-${runId}`;
  restartWithLogLevel(['augmenter', 'emailer'], 'trace');
  try {
    await insertMembers(db, [{ org_id: 'UA', org_member_id: id, email: `${id}@example.com`, first_name: 'Secretive', last_name: 'Person' }]);
    await waitFor('the Welcome', async () => (await acceptedSends(id)).length === 1, 60_000);
  } finally {
    restartWithLogLevel(['augmenter', 'emailer'], undefined);
  }

  const logs = readdirSync(join(STATE_DIR, 'logs'))
    .filter((f) => f.endsWith('.log'))
    .map((f) => [f, readFileSync(join(STATE_DIR, 'logs', f), 'utf8')] as const);
  for (const [name, value] of secrets) {
    for (const f of connectFiles)
      expect({ file: f, name, leaked: readFileSync(join(ROOT, 'connect', String(f)), 'utf8').includes(value) }).toEqual({
        file: f,
        name,
        leaked: false,
      });
    expect({ where: 'Connect REST', name, leaked: rest.join('').includes(value) }).toEqual({ where: 'Connect REST', name, leaked: false });
    for (const [file, text] of logs) expect({ file, name, leaked: text.includes(value) }).toEqual({ file, name, leaked: false });
  }
  // PII: the consumers' logs carry the member id, never the address or the name.
  const consumerLogs = logs
    .filter(([f]) => f === 'augmenter.log' || f === 'emailer.log')
    .map(([, t]) => t)
    .join('\n');
  expect(consumerLogs).toContain(id);
  expect(consumerLogs).not.toContain(`${id}@example.com`);
  expect(consumerLogs).not.toContain('Secretive');
});

test('the CDC user can read the captured table and nothing else', async () => {
  const cdc = await createConnection({
    host: '127.0.0.1',
    port: stackEnv.dbPort,
    user: stackEnv.cdcUser,
    password: stackEnv.cdcPassword,
    database: 'loyalty',
    // the stack's CDC user is REQUIRE SSL (test/stack/db-tls.test.ts)
    ssl: { ca: readFileSync(join(STATE_DIR, 'tls', 'ca.crt'), 'utf8'), rejectUnauthorized: true },
  });
  try {
    await expect(cdc.query('SELECT COUNT(*) FROM members')).resolves.toBeDefined();
    await expect(cdc.query('SELECT * FROM member_payment_methods')).rejects.toThrow(/denied/i);
    await expect(cdc.query('SELECT * FROM new_members_sent_to_salesforce')).rejects.toThrow(/denied/i);
    await expect(cdc.query('SELECT * FROM mysql.user')).rejects.toThrow(/denied/i);
    await expect(cdc.query("INSERT INTO members (org_id, org_member_id, email) VALUES ('UA', 'x', 'x@example.com')")).rejects.toThrow(/denied/i);
  } finally {
    await cdc.end();
  }
});

describe('a consumer refuses to start on bad configuration, naming the problem', () => {
  const run = (script: string, env: Record<string, string | undefined>) =>
    spawnSync('node', [join(ROOT, 'dist', script)], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000 });

  test('augmenter without DW_API_URL', () => {
    const r = run('consumers/augmenter/main.js', { DW_API_TOKEN: 'x' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/configuration error: DW_API_URL is required/);
  });

  test('emailer with an invalid Welcome config file', () => {
    const bad = join(STATE_DIR, `bad-orgs-${runId}.json`);
    writeFileSync(bad, '{"UA": {"definitionKey": "", "enabled": true}}');
    const r = run('consumers/emailer/main.js', {
      WELCOME_ORGS_FILE: bad,
      SFMC_AUTH_URL: 'https://x.example',
      SFMC_CLIENT_ID: 'c',
      SFMC_CLIENT_SECRET: 's',
      EMAILER_DB_PASSWORD: 'p',
      WELCOME_FORGET_KEY: 'a-forget-key-of-some-length',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/UA.definitionKey must be a non-empty string/);
  });

  // Without the key a forgotten member could not be recognized, and would be sent: no start.
  test.each([
    [undefined, /WELCOME_FORGET_KEY \(or WELCOME_FORGET_KEY_FILE\) is required/],
    ['short', /WELCOME_FORGET_KEY must be at least 16 characters/],
  ])('emailer with WELCOME_FORGET_KEY=%s', (key, message) => {
    const r = run('consumers/emailer/main.js', {
      SFMC_AUTH_URL: 'https://x.example',
      SFMC_CLIENT_ID: 'c',
      SFMC_CLIENT_SECRET: 's',
      EMAILER_DB_PASSWORD: 'p',
      WELCOME_FORGET_KEY: key,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('short');
  });

  test('emailer with a secret file that does not exist', () => {
    const r = run('consumers/emailer/main.js', {
      SFMC_AUTH_URL: 'https://x.example',
      SFMC_CLIENT_ID: 'c',
      SFMC_CLIENT_SECRET_FILE: '/nonexistent/secret',
      EMAILER_DB_PASSWORD: 'p',
      WELCOME_ORGS_FILE: join(ROOT, 'config/welcome-orgs.json'),
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/SFMC_CLIENT_SECRET_FILE points to "\/nonexistent\/secret", which cannot be read/);
  });

  test('a URL that is not one', () => {
    const r = run('consumers/augmenter/main.js', { DW_API_URL: 'warehouse.internal', DW_API_TOKEN: 'x' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/DW_API_URL must be a URL/);
  });
});
