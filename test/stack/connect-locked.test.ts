/**
 * Issue 24: Kafka Connect admits only its operators, and a connector gets only what ours need.
 *   - REST: no credentials or a wrong password → 401, for reads and writes alike (nothing is
 *     created); the internal task endpoints want the workers' signature; the operator gets in.
 *   - Config providers: a connector asking for a secret the worker holds but our connectors do
 *     not use (KAFKA_ADMIN_PASSWORD: in the worker's environment, as every local secret is) gets
 *     the literal text, not the value, through ${env:...} and through ${file:...} outside the
 *     allowed folder; so its login fails and Connect refuses the connector. Controls: the same
 *     login with the value written out, and through a file in the allowed folder, is accepted.
 *   - Client overrides outside the allowlist are refused.
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { jsonBody } from '../../tools/connect-client';
import { loadConnectorDefs, type Flavour } from '../../tools/connect-defs';
import { rootDb } from '../support/db';
import { connectRest, ROOT, runId, STATE_DIR } from '../support/env';

jest.setTimeout(180_000);

const env = process.env;
const url = connectRest.url;
const tag = runId.slice(-8);
const connector = `tlock-${tag}`;
const dbUser = `tlock${tag}`;
// a secret of another component, present in the worker's environment
const foreign = env.KAFKA_ADMIN_PASSWORD ?? '';
const secretsDir = join(STATE_DIR, 'connect', 'secrets');
const allowedFile = join(secretsDir, `${connector}.properties`);

let db: Connection;

/** The stack's source connector, logging in as the throwaway user with the given password expression. */
function sourceConfig(password: string, extra: Record<string, string> = {}): Record<string, string> {
  const base = loadConnectorDefs(join(ROOT, 'connect'), (env.CONNECT_FLAVOUR ?? 'mariadb') as Flavour, []).find((d) => d.name === 'members-source');
  if (!base) throw new Error('connect/members-source.json missing');
  return {
    ...base.config,
    name: connector,
    'topic.prefix': `tlock${tag}`,
    'database.server.id': String(Number(env.CDC_SERVER_ID ?? '184054') + 17),
    'database.user': dbUser,
    'database.password': password,
    ...extra,
  };
}

async function validate(config: Record<string, string>): Promise<{ errorCount: number; errors: string[] }> {
  const cls = encodeURIComponent(config['connector.class'] ?? '');
  const res = await connectRest.fetch(`/connector-plugins/${cls}/config/validate`, {
    method: 'PUT',
    ...jsonBody(config),
    signal: AbortSignal.timeout(60_000),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { error_count: number; configs: { value: { name: string; errors: string[] } }[] };
  return { errorCount: body.error_count, errors: body.configs.flatMap((c) => c.value.errors.map((e) => `${c.value.name}: ${e}`)) };
}

async function put(config: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await connectRest.fetch(`/connectors/${connector}/config`, { method: 'PUT', ...jsonBody(config), signal: AbortSignal.timeout(60_000) });
  return { status: res.status, text: await res.text() };
}

const exists = async (): Promise<boolean> => (await connectRest.fetch(`/connectors/${connector}`)).status === 200;

beforeAll(async () => {
  expect(foreign.length).toBeGreaterThan(8);
  db = await rootDb();
  // a login whose password is that foreign secret, with the CDC user's rights
  await db.query('CREATE USER ?@? IDENTIFIED BY ?', [dbUser, '%', foreign]);
  await db.query('GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO ?@?', [dbUser, '%']);
  await db.query('GRANT SELECT ON loyalty.members TO ?@?', [dbUser, '%']);
  writeFileSync(allowedFile, `password=${foreign.replace(/\\/g, '\\\\')}\n`);
  chmodSync(allowedFile, 0o600);
});

afterAll(async () => {
  await connectRest.fetch(`/connectors/${connector}`, { method: 'DELETE' }).catch(() => undefined);
  await db.query('DROP USER IF EXISTS ?@?', [dbUser, '%']);
  await db.end();
  rmSync(allowedFile, { force: true });
});

test("the REST API refuses requests without the operator's credentials, reads and writes alike", async () => {
  const basic = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
  expect((await fetch(`${url}/connectors`)).status).toBe(401);
  expect((await fetch(`${url}/connectors`, { headers: { authorization: basic(env.CONNECT_REST_USER ?? 'operator', 'wrong') } })).status).toBe(401);
  expect((await fetch(`${url}/connectors`, { headers: { authorization: basic('stranger', env.CONNECT_REST_PASSWORD ?? '') } })).status).toBe(401);
  const anonymousPut = await fetch(`${url}/connectors/${connector}/config`, { method: 'PUT', ...jsonBody(sourceConfig('${env:CDC_DB_PASSWORD}')) });
  expect(anonymousPut.status).toBe(401);
  expect(await exists()).toBe(false);
  // the inter-worker endpoints skip basic auth, and want the workers' request signature instead
  const internal = await fetch(`${url}/connectors/members-source/tasks`, { method: 'POST', ...jsonBody([]) });
  expect(internal.status).toBe(400);
  expect(await internal.text()).toMatch(/missing required signature/);

  const listed = await connectRest.fetch('/connectors');
  expect(listed.status).toBe(200);
  expect(await listed.json()).toEqual(expect.arrayContaining(['members-source']));
});

test('a connector asking for a variable or file outside the allowlists gets no secret and is refused', async () => {
  // the secret is really in the worker's environment: the allowlist, not its absence, keeps it out
  const pid = readFileSync(join(STATE_DIR, 'pids', 'connect.pid'), 'utf8').trim();
  expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(`KAFKA_ADMIN_PASSWORD=${foreign}`);

  // controls: this login works with the value written out, and through a file in the allowed folder
  expect(await validate(sourceConfig(foreign))).toEqual({ errorCount: 0, errors: [] });
  expect(await validate(sourceConfig(`\${file:${allowedFile}:password}`))).toEqual({ errorCount: 0, errors: [] });

  for (const asked of [
    '${env:KAFKA_ADMIN_PASSWORD}',
    `\${file:${join(STATE_DIR, 'secrets.env')}:KAFKA_ADMIN_PASSWORD}`,
    `\${file:${secretsDir}/../../secrets.env:KAFKA_ADMIN_PASSWORD}`,
  ]) {
    const { errorCount } = await validate(sourceConfig(asked));
    expect({ asked, refused: errorCount > 0 }).toEqual({ asked, refused: true });
  }
  const put1 = await put(sourceConfig('${env:KAFKA_ADMIN_PASSWORD}'));
  expect(put1.status).toBe(400);
  expect(put1.text).toMatch(/configuration is invalid/i);
  expect(await exists()).toBe(false);
});

test('a client override outside the allowlist is refused', async () => {
  const allowed = await validate(
    sourceConfig('${env:CDC_DB_PASSWORD}', { 'database.user': '${env:CDC_DB_USER}', 'producer.override.linger.ms': '0' }),
  );
  expect(allowed.errors.filter((e) => /override/.test(e))).toEqual([]);
  // (a source connector has producer and admin clients: Connect checks the overrides of those)
  for (const [key, value] of [
    ['producer.override.interceptor.classes', 'org.example.Spy'],
    ['producer.override.transactional.id', 'x'],
    ['admin.override.retries', '1'],
  ] as const) {
    const res = await put(sourceConfig('${env:CDC_DB_PASSWORD}', { 'database.user': '${env:CDC_DB_USER}', [key]: value }));
    expect({ key, status: res.status }).toEqual({ key, status: 400 });
    expect(res.text).toContain(`The 'Allowlist' policy does not allow '${key.replace(/^\w+\.override\./, '')}' to be overridden`);
  }
  expect(await exists()).toBe(false);
});
