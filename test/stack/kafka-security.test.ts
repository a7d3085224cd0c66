/**
 * Issue 13: the pipeline on the broker's SASL_SSL listener, with ACLs per principal, and a
 * registry that requires credentials.
 *
 * What runs where: the stack's own consumers and Connect worker stay on PLAINTEXT (the other
 * tests use them). This test adds a second path whose every Kafka client is on SASL_SSL:
 * a Debezium source connector `members-source-sec` in the running worker (database over TLS,
 * connect/overlays/db-tls, certificate and host name verified), whose producer,
 * admin and schema-history clients log in as `connect` (overrides; the converter talks to
 * the registry through an authenticating proxy with basic auth), then an augmenter logged
 * in as `augmenter` and an emailer as `emailer` (extra processes of the real entry points,
 * registry through the same proxy), and a delivery-status stage as `delivery` that asks the
 * SFMC stand-in for that Welcome's status. Topics, groups and ACLs of that path come from
 * tools/kafka-acls.ts with the path's names, applied by `admin`. The member is of org DL,
 * which the stack's own emailer skips (switched off there), so its one Welcome can only
 * come through the secured path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import type { Connection } from 'mysql2/promise';
import { kafkaClientOptions, loadKafkaSecurity } from '../../consumers/shared/kafka-security';
import { loadConnectorDefs, type Flavour } from '../../tools/connect-defs';
import { insertMembers, rootDb } from '../support/db';
import { ROOT, runId, STATE_DIR, stackEnv, connectRest } from '../support/env';
import { TopicTap } from '../support/kafka';
import { acceptedSends } from '../support/standins';
import { applyAcls, startStage, stopStages, waitReady, type StageName, type StartedStage } from '../support/stage-process';
import { waitFor } from '../support/wait';

jest.setTimeout(420_000);

const env = process.env;
const saslPort = env.KAFKA_SASL_PORT ?? '9094';
const caFile = join(STATE_DIR, 'tls', 'ca.crt');
const password = (user: string): string => env[`KAFKA_${user.toUpperCase()}_PASSWORD`] ?? '';
const saslEnv = (user: string, pw = password(user)): Record<string, string> => ({
  KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${saslPort}`,
  KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
  KAFKA_SSL_CA_FILE: caFile,
  KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
  KAFKA_SASL_USERNAME: user,
  KAFKA_SASL_PASSWORD: pw,
});
const kafkaAs = (user: string, pw?: string): Kafka => {
  const e = saslEnv(user, pw);
  return new Kafka({
    clientId: `test-sec-${user}-${runId}`,
    brokers: [e.KAFKA_BOOTSTRAP_SERVERS as string],
    ...kafkaClientOptions(loadKafkaSecurity(e, (p) => readFileSync(p, 'utf8'))),
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  });
};

// The secured path's own names (fixed, so its ACLs do not pile up run after run).
const NAMES = {
  MEMBER_TOPIC: 'cdcsec.loyalty.members',
  AUGMENTED_TOPIC: 'welcome.sec.members.augmented',
  SENT_TOPIC: 'welcome.sec.sent',
  AUGMENTER_DLQ_TOPIC: 'welcome.sec.augmenter.dlq',
  EMAILER_DLQ_TOPIC: 'welcome.sec.emailer.dlq',
  AUDIT_DLQ_TOPIC: 'welcome.sec.audit.dlq',
  SCHEMA_HISTORY_TOPIC: '_schema-history.cdcsec',
  HEARTBEAT_TOPIC: '__debezium-heartbeat.cdcsec',
  AUGMENTER_GROUP_ID: 'welcome-augmenter-sec',
  EMAILER_GROUP_ID: 'welcome-emailer-sec',
  DELIVERY_STATUS_TOPIC: 'welcome.sec.delivery.status',
  DELIVERY_STATUS_DLQ_TOPIC: 'welcome.sec.delivery.status.dlq',
  DELIVERY_AUDIT_DLQ_TOPIC: 'welcome.sec.delivery.audit.dlq',
  DELIVERY_STATUS_GROUP_ID: 'welcome-delivery-status-sec',
  SOURCE_TOPIC_PREFIX: 'cdcsec',
};
const CONNECTOR = 'members-source-sec';

// ---- a registry that wants basic auth: a proxy in front of the real one
const registryUser = 'welcome';
const registryPassword = randomBytes(12).toString('base64url');
let proxy: Server;
let proxyUrl: string;
let refusedByProxy = 0;
function startProxy(): Promise<void> {
  const target = new URL(stackEnv.registryUrl);
  const expected = `Basic ${Buffer.from(`${registryUser}:${registryPassword}`).toString('base64')}`;
  proxy = createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      refusedByProxy++;
      res
        .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="registry"' })
        .end('{"error_code":401,"message":"Unauthorized"}');
      return;
    }
    const { authorization: _drop, ...headers } = req.headers;
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...headers, host: target.host } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  return new Promise((r) =>
    proxy.listen(0, '127.0.0.1', () => {
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      r();
    }),
  );
}

// ---- processes we start, stopped by their pid
const children: ChildProcess[] = []; // refused starts (runToExit); stages: test/support/stage-process.ts
const startConsumer = (stage: StageName, extra: Record<string, string>): StartedStage =>
  startStage(stage, { ...env, ...NAMES, ...extra }, `sec-${stage}`);
/** Runs an entry point to its exit (a refused start). Asynchronous: the proxy lives in this process. */
function runToExit(script: string, extra: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', script)], {
    cwd: ROOT,
    env: { ...env, ...NAMES, ...extra },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (status) => resolve({ status, stderr })));
}

async function connect(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await connectRest.fetch(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** The stack's source connector, with every Kafka client of it on SASL_SSL as `connect`. */
function securedSourceConfig(): Record<string, string> {
  const base = loadConnectorDefs(join(ROOT, 'connect'), (env.CONNECT_FLAVOUR ?? 'mariadb') as Flavour, ['kafka-secured', 'db-tls']).find(
    (d) => d.name === 'members-source',
  );
  if (!base) throw new Error('connect/members-source.json missing');
  const clientSecurity = (prefix: string): Record<string, string> => ({
    [`${prefix}bootstrap.servers`]: '${env:CONNECTOR_KAFKA_SASL_BOOTSTRAP_SERVERS}',
    [`${prefix}security.protocol`]: '${env:CONNECTOR_KAFKA_SECURITY_PROTOCOL}',
    [`${prefix}sasl.mechanism`]: '${env:CONNECTOR_KAFKA_SASL_MECHANISM}',
    [`${prefix}sasl.jaas.config`]: '${env:CONNECTOR_KAFKA_SASL_JAAS_CONFIG}',
    [`${prefix}ssl.truststore.type`]: 'PEM',
    [`${prefix}ssl.truststore.location`]: '${env:CONNECTOR_KAFKA_SSL_CA_FILE}',
  });
  const registry = `${proxyUrl}/apis/registry/v2`;
  return {
    ...base.config,
    'topic.prefix': NAMES.SOURCE_TOPIC_PREFIX,
    'database.server.id': String(Number(env.CDC_SERVER_ID ?? '184054') + 13),
    'schema.history.internal.kafka.topic': NAMES.SCHEMA_HISTORY_TOPIC,
    'schema.history.internal.kafka.bootstrap.servers': '${env:CONNECTOR_KAFKA_SASL_BOOTSTRAP_SERVERS}',
    // the admin creates the topics (tools/kafka-acls.ts): Connect has no CREATE here
    'topic.creation.enable': 'false',
    ...clientSecurity('producer.override.'),
    ...clientSecurity('admin.override.'),
    'key.converter.apicurio.registry.url': registry,
    'value.converter.apicurio.registry.url': registry,
    // a throwaway credential of this test's proxy (production: connect/overlays/registry-basic, ${env:...})
    'key.converter.apicurio.auth.username': registryUser,
    'key.converter.apicurio.auth.password': registryPassword,
    'value.converter.apicurio.auth.username': registryUser,
    'value.converter.apicurio.auth.password': registryPassword,
  };
}

let db: Connection;
let statuses: TopicTap | undefined;
const admin = kafkaAs('admin').admin();
const augmenterPort = env.SECURED_AUGMENTER_HTTP_PORT ?? '9468';
const emailerPort = env.SECURED_EMAILER_HTTP_PORT ?? '9469';
const deliveryPort = env.SECURED_DELIVERY_STATUS_HTTP_PORT ?? '9077';

beforeAll(async () => {
  db = await rootDb();
  await startProxy();
  // topics, groups and ACLs of the secured path, by the admin over SASL_SSL
  applyAcls({ ...env, ...NAMES, ...saslEnv('admin') });
  await admin.connect();
});

afterAll(async () => {
  await statuses?.stop();
  await stopStages();
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await connect('DELETE', `/connectors/${CONNECTOR}`).catch(() => undefined);
  await admin.disconnect();
  await new Promise((r) => proxy.close(r));
  await db.end();
});

test('a member flows end to end with every client of its path on SASL_SSL, registry behind basic auth', async () => {
  const put = await connect('PUT', `/connectors/${CONNECTOR}/config`, securedSourceConfig());
  expect([200, 201]).toContain(put.status);
  const running = async (): Promise<void> => {
    let failure: string | undefined;
    await waitFor(
      `${CONNECTOR} RUNNING`,
      async () => {
        const s = (await connect('GET', `/connectors/${CONNECTOR}/status`)).json as {
          connector?: { state: string };
          tasks?: { state: string; trace?: string }[];
        };
        const failed = s.tasks?.find((t) => t.state === 'FAILED');
        if (failed)
          failure = failed.trace
            ?.split('\n')
            .filter((l, i) => i === 0 || l.startsWith('Caused by'))
            .join(' | ');
        return (
          failure !== undefined || (s.connector?.state === 'RUNNING' && (s.tasks ?? []).length > 0 && s.tasks!.every((t) => t.state === 'RUNNING'))
        );
      },
      180_000,
      1_000,
    );
    expect({ connector: CONNECTOR, failure }).toEqual({ connector: CONNECTOR, failure: undefined });
  };
  await running();
  // A restarted task recovers its schema history: the history consumer (group
  // <prefix>-schemahistory) reads the topic on SASL_SSL, a path the first start never takes.
  // The member below only flows if the restarted task came back (a failed recovery leaves it FAILED).
  const restart = await connect('POST', `/connectors/${CONNECTOR}/restart?includeTasks=true`);
  expect({ status: restart.status, tasks: (restart.json as { tasks?: { state: string }[] }).tasks?.map((t) => t.state) }).toEqual({
    status: 202,
    tasks: ['RESTARTING'],
  });
  await running();

  const orgs = join(STATE_DIR, `sec-orgs-${runId}.json`);
  writeFileSync(orgs, JSON.stringify({ DL: { definitionKey: 'welcome-dl', enabled: true } }));
  const registryCreds = { REGISTRY_URL: proxyUrl, REGISTRY_USERNAME: registryUser, REGISTRY_PASSWORD: registryPassword };
  const augmenter = startConsumer('augmenter', { ...saslEnv('augmenter'), ...registryCreds, HTTP_PORT: augmenterPort });
  const emailer = startConsumer('emailer', { ...saslEnv('emailer'), ...registryCreds, HTTP_PORT: emailerPort, WELCOME_ORGS_FILE: orgs });
  const delivery = startConsumer('delivery-status', {
    ...saslEnv('delivery'),
    ...registryCreds,
    HTTP_PORT: deliveryPort,
    WELCOME_ORGS_FILE: orgs,
  });
  await Promise.all([
    waitReady(augmenter, augmenterPort, 'secured augmenter'),
    waitReady(emailer, emailerPort, 'secured emailer'),
    waitReady(delivery, deliveryPort, 'secured delivery-status'),
  ]);
  statuses = await new TopicTap(NAMES.DELIVERY_STATUS_TOPIC).start();

  const before = new Map((await admin.fetchTopicOffsets(NAMES.SENT_TOPIC)).map((p) => [p.partition, BigInt(p.high)]));
  const id = `ksec-${runId}`;
  await insertMembers(db, [{ org_id: 'DL', org_member_id: id, email: `${id}@example.com`, first_name: 'Secured' }]);
  await waitFor('the Welcome through the secured path', async () => (await acceptedSends(id)).length >= 1, 180_000, 500);
  expect((await acceptedSends(id)).map((s) => s.definitionKey)).toEqual(['welcome-dl']);

  // the secured emailer recorded the send on its own topic (read by the admin over SASL_SSL);
  // it produces right after SFMC accepted, so the record may land a moment after the send
  await waitFor(
    'the sent record on the secured path',
    async () =>
      (await admin.fetchTopicOffsets(NAMES.SENT_TOPIC)).reduce((n, p) => n + Number(BigInt(p.high) - (before.get(p.partition) ?? 0n)), 0) >= 1,
    30_000,
    250,
  );
  // the secured delivery-status stage read that record and wrote the Welcome's status (SFMC's
  // answer: queued first, sent once the stand-in has delivered it)
  const tap = statuses;
  const status = await waitFor(
    'a delivery status of the Welcome through the secured path',
    async () => tap.records.find((r) => r.key?.toString() === `DL:${id}`),
    120_000,
    500,
  );
  expect(String(status.headers['welcome.delivery.status'])).toMatch(/^Email(Queued|Sent)$/);
  // the connector's records went through the proxy with the credential; nothing was refused there
  expect(refusedByProxy).toBe(0);
});

describe('each principal is refused what it must not do, with a clear error and nothing written', () => {
  test('the emailer cannot read the member topic', async () => {
    const consumer = kafkaAs('emailer').consumer({ groupId: NAMES.EMAILER_GROUP_ID });
    await consumer.connect();
    try {
      await expect(consumer.subscribe({ topic: NAMES.MEMBER_TOPIC, fromBeginning: true })).rejects.toThrow(/not authorized/i);
    } finally {
      await consumer.disconnect();
    }
  });

  test.each(['augmenter', 'delivery'])('the %s cannot write the sent topic, and the topic is unchanged', async (user) => {
    const before = await admin.fetchTopicOffsets(NAMES.SENT_TOPIC);
    const producer = kafkaAs(user).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await expect(producer.send({ topic: NAMES.SENT_TOPIC, acks: -1, messages: [{ key: 'x', value: 'forged' }] })).rejects.toThrow(
        /not authorized/i,
      );
    } finally {
      await producer.disconnect();
    }
    expect(await admin.fetchTopicOffsets(NAMES.SENT_TOPIC)).toEqual(before);
  });

  test('a wrong password: the client is refused; the consumer process exits at start saying so', async () => {
    await expect(kafkaAs('augmenter', 'not-the-password').admin().connect()).rejects.toThrow(/SASL SCRAM SHA512 authentication failed/);
    const r = await runToExit('consumers/augmenter/main.js', {
      ...saslEnv('augmenter', 'not-the-password'),
      REGISTRY_URL: proxyUrl,
      REGISTRY_USERNAME: registryUser,
      REGISTRY_PASSWORD: registryPassword,
      HTTP_PORT: '0',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/augmenter: refused at start: Kafka refused the SASL login .*authentication failed/);
  });

  test('a plaintext client on the TLS port gets a connection error, not a hang', async () => {
    const plain = new Kafka({
      clientId: `test-plain-${runId}`,
      brokers: [`127.0.0.1:${saslPort}`],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3_000,
      requestTimeout: 5_000,
      retry: { retries: 0 },
    });
    const started = Date.now();
    await expect(plain.admin().connect()).rejects.toThrow(/Connection error|Closed connection|timeout|ECONNRESET/i);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  test('a wrong registry password: the consumer exits at start naming the credential', async () => {
    const r = await runToExit('consumers/augmenter/main.js', {
      ...saslEnv('augmenter'),
      REGISTRY_URL: proxyUrl,
      REGISTRY_USERNAME: registryUser,
      REGISTRY_PASSWORD: 'wrong',
      HTTP_PORT: '0',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /augmenter: refused at start: registry http:\/\/127\.0\.0\.1:\d+\/apis\/ccompat\/v7 refused PUT .* with 401: the REGISTRY_USERNAME\/REGISTRY_PASSWORD credential was rejected/,
    );
  });
});
