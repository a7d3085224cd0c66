/**
 * Settings for tests on the running stack. `make test-stack` exports them (it sources
 * stack/bin/lib.sh, which also loads the generated local secrets); defaults match .env.example.
 */
import { join } from 'node:path';
import { projectRoot } from '../../consumers/shared/schemas';
import { createConnectClient } from '../../tools/connect-client';

const env = process.env;
export const ROOT = projectRoot(__dirname);
export const STATE_DIR = env.STATE_DIR ?? join(ROOT, '.state');

export const stackEnv = {
  kafka: (env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(','),
  registryUrl: env.REGISTRY_URL ?? 'http://127.0.0.1:8081',
  sfmcUrl: env.SFMC_AUTH_URL ?? 'http://127.0.0.1:8090',
  dwUrl: env.DW_API_URL ?? 'http://127.0.0.1:8091',
  dwToken: env.DW_API_TOKEN ?? '',
  dbSocket: join(STATE_DIR, 'mariadb', 'mariadb.sock'),
  dbPort: Number(env.DB_PORT ?? '3307'),
  cdcUser: env.CDC_DB_USER ?? 'debezium',
  cdcPassword: env.CDC_DB_PASSWORD ?? '',
  memberTopic: env.MEMBER_TOPIC ?? 'cdc.loyalty.members',
  augmentedTopic: env.AUGMENTED_TOPIC ?? 'welcome.members.augmented',
  sentTopic: env.SENT_TOPIC ?? 'welcome.sent',
  augmenterDlq: env.AUGMENTER_DLQ_TOPIC ?? 'welcome.augmenter.dlq',
  emailerDlq: env.EMAILER_DLQ_TOPIC ?? 'welcome.emailer.dlq',
  augmenterMetrics: `http://127.0.0.1:${env.AUGMENTER_HTTP_PORT ?? '9464'}`,
  emailerMetrics: `http://127.0.0.1:${env.EMAILER_HTTP_PORT ?? '9465'}`,
};

/** Kafka Connect's REST API as the stack's operator (CONNECT_REST_USER/PASSWORD from lib.sh's secrets). */
export const connectRest = createConnectClient(env);

/** Unique per test run, so tests never see each other's members, topics or groups. */
export const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
