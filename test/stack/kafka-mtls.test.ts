/**
 * Issue 13, mutual TLS: the local broker's third listener (KAFKA_MTLS_PORT) requires a client
 * certificate of the stack's CA and takes the principal from it (CN=delivery.client.localhost →
 * User:delivery, stack/conf/server.properties), so the ACLs of tools/kafka-acls.ts apply
 * unchanged. The delivery-status stage, started from its real entry point with
 * KAFKA_SECURITY_PROTOCOL=SSL and KAFKA_SSL_CERT_FILE/KEY_FILE and no password, reads a
 * WelcomeSent and writes its status on that listener; a client without a certificate, and the
 * certificate's principal writing what it may not, are refused with nothing written.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClientOptions, loadKafkaSecurity } from '../../consumers/shared/kafka-security';
import { createRegistry } from '../../consumers/shared/registry';
import { loadSchema, valueSubject } from '../../consumers/shared/schemas';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { runId, STATE_DIR, stackEnv } from '../support/env';
import { produceRaw, TopicTap } from '../support/kafka';
import { applyAcls, startStage, stopStages, waitReady } from '../support/stage-process';
import { waitFor } from '../support/wait';

jest.setTimeout(240_000);

const env = process.env;
const tls = join(STATE_DIR, 'tls');
const mtlsEnv = (withCert = true): Record<string, string> => ({
  KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${env.KAFKA_MTLS_PORT ?? '9076'}`,
  KAFKA_SECURITY_PROTOCOL: 'SSL',
  KAFKA_SSL_CA_FILE: join(tls, 'ca.crt'),
  ...(withCert ? { KAFKA_SSL_CERT_FILE: join(tls, 'delivery-client.crt'), KAFKA_SSL_KEY_FILE: join(tls, 'delivery-client.key') } : {}),
});
const kafkaOver = (withCert: boolean): Kafka => {
  const e = mtlsEnv(withCert);
  return new Kafka({
    clientId: `test-mtls-${runId}`,
    brokers: [e.KAFKA_BOOTSTRAP_SERVERS as string],
    ...kafkaClientOptions(loadKafkaSecurity(e, (p) => readFileSync(p, 'utf8'))),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5_000,
    retry: { retries: 1 },
  });
};

// The mutual-TLS path's own names (fixed, so its ACLs do not pile up run after run).
const NAMES = {
  SENT_TOPIC: 'welcome.mtls.sent',
  DELIVERY_STATUS_TOPIC: 'welcome.mtls.delivery.status',
  DELIVERY_STATUS_DLQ_TOPIC: 'welcome.mtls.delivery.status.dlq',
  DELIVERY_STATUS_GROUP_ID: 'welcome-delivery-status-mtls',
};
const port = env.SECURED_DELIVERY_STATUS_HTTP_PORT ?? '9077';
let statuses: TopicTap | undefined;

beforeAll(() => {
  // topics and ACLs of the path, by the admin over SASL_SSL (as `make up` does for the stack's names)
  applyAcls({
    ...env,
    ...NAMES,
    KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${env.KAFKA_SASL_PORT ?? '9094'}`,
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SSL_CA_FILE: join(tls, 'ca.crt'),
    KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    KAFKA_SASL_USERNAME: 'admin',
    KAFKA_SASL_PASSWORD: env.KAFKA_ADMIN_PASSWORD ?? '',
  });
});

afterAll(async () => {
  await statuses?.stop();
  await stopStages();
});

test('the delivery-status stage runs on the mutual-TLS listener with its certificate as its only credential', async () => {
  // no KAFKA_SASL_* at all: the certificate is the login
  const { KAFKA_SASL_MECHANISM: _m, KAFKA_SASL_USERNAME: _u, KAFKA_SASL_PASSWORD: _p, ...base } = env;
  await waitReady(
    startStage('delivery-status', { ...base, ...NAMES, ...mtlsEnv(), HTTP_PORT: port }, 'mtls-delivery-status'),
    port,
    'delivery-status on mTLS',
  );
  statuses = await new TopicTap(NAMES.DELIVERY_STATUS_TOPIC).start();

  // a WelcomeSent as the emailer writes it (the SFMC stand-in does not know this message: status 404 → unknown)
  const id = `mtls-${runId}`;
  const registry = createRegistry(stackEnv.registryUrl);
  const schemaId = await registry.register(valueSubject(NAMES.SENT_TOPIC), loadSchema('welcome-sent.avsc'), 'BACKWARD');
  const value = await registry.encode(schemaId, {
    org_id: 'UA',
    org_member_id: id,
    member_id: null,
    subscriber_key: `UA-${id}`,
    message_key: welcomeMessageKey('UA', id),
    request_id: null,
    definition_key: 'welcome-ua',
    source_committed_at: null,
    sent_at: Date.now(),
  });
  await produceRaw(NAMES.SENT_TOPIC, [{ key: `UA:${id}`, value }]);

  const tap = statuses;
  const status = await waitFor(
    'its delivery status, written over mTLS',
    async () => tap.records.find((r) => r.key?.toString() === `UA:${id}`),
    120_000,
    500,
  );
  expect(String(status.headers['welcome.delivery.status'])).toMatch(/^\w+$/);
  expect(readFileSync(join(STATE_DIR, 'logs', 'mtls-delivery-status.log'), 'utf8')).toMatch(/"protocol":"SSL".*"msg":"kafka connection"/);
});

test('without a client certificate the mutual-TLS listener refuses the connection, without a hang', async () => {
  const started = Date.now();
  await expect(kafkaOver(false).admin().connect()).rejects.toThrow(/Connection error: .*alert (bad certificate|certificate required)/);
  expect(Date.now() - started).toBeLessThan(30_000);
});

test("the certificate's principal is held to its ACLs: delivery cannot write welcome.sent, and the topic is unchanged", async () => {
  const kafka = kafkaOver(true);
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    const before = await admin.fetchTopicOffsets(NAMES.SENT_TOPIC);
    await producer.connect();
    await expect(producer.send({ topic: NAMES.SENT_TOPIC, acks: -1, messages: [{ key: 'x', value: 'forged' }] })).rejects.toThrow(/not authorized/i);
    expect(await admin.fetchTopicOffsets(NAMES.SENT_TOPIC)).toEqual(before);
  } finally {
    await producer.disconnect();
    await admin.disconnect();
  }
});
