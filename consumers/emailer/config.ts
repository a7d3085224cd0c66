import { readFileSync } from 'node:fs';
import { loadStageTuning, type StageTuning } from '../shared/stage-config';
import { loadKafkaSecurity, type KafkaSecurity } from '../shared/kafka-security';
import { loadRegistryAuth, type RegistryAuth } from '../shared/registry-auth';
import { int, optionalStr, retentionMs, secret, str, url, type Env } from '../shared/env';
import { ConfigError } from '../shared/errors';
import { parseOrgConfig, type OrgConfig } from './org-config';

export interface EmailerConfig {
  kafkaBrokers: string[];
  kafkaSecurity: KafkaSecurity;
  registryAuth: RegistryAuth | undefined;
  registryUrl: string;
  groupId: string;
  augmentedTopic: string;
  sentTopic: string;
  dlqTopic: string;
  /** retention.ms of the DLQ topic, set on it at start (-1: kept until replayed). */
  dlqRetentionMs: number;
  skippedTopic: string;
  heldTopic: string;
  topicPartitions: number;
  sfmc: { authBaseUrl: string; clientId: string; clientSecret: string; accountId?: string; scope?: string; timeoutMs: number; batchSize: number };
  db: { host: string; port: number; user: string; password: string; database: string; tls?: { ca: string; verifyHost: boolean } };
  orgs: OrgConfig;
  chunkSize: number;
  partitionsConsumedConcurrently: number;
  tuning: StageTuning;
  httpPort: number;
  logLevel: string;
}

/** DB_SSL_CA_FILE: TLS to the audit table's database; DB_SSL_MODE verify-full (default) or verify-ca. */
export function dbTls(env: Env, readFile: (p: string) => string): { tls?: { ca: string; verifyHost: boolean } } {
  const file = optionalStr(env, 'DB_SSL_CA_FILE');
  const mode = str(env, 'DB_SSL_MODE', 'verify-full');
  if (mode !== 'verify-full' && mode !== 'verify-ca') throw new ConfigError(`DB_SSL_MODE must be verify-full or verify-ca, got "${mode}"`);
  if (!file) return {};
  let ca: string;
  try {
    ca = readFile(file);
  } catch (err) {
    throw new ConfigError(`DB_SSL_CA_FILE points to "${file}", which cannot be read`, err);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`DB_SSL_CA_FILE points to "${file}", which holds no PEM certificate`);
  return { tls: { ca, verifyHost: mode === 'verify-full' } };
}

export function loadEmailerConfig(env: Env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): EmailerConfig {
  const orgsFile = str(env, 'WELCOME_ORGS_FILE', 'config/welcome-orgs.json');
  let orgsText: string;
  try {
    orgsText = readFile(orgsFile);
  } catch (err) {
    throw new ConfigError(`WELCOME_ORGS_FILE: cannot read "${orgsFile}"`, err);
  }
  const accountId = optionalStr(env, 'SFMC_ACCOUNT_ID');
  const scope = optionalStr(env, 'SFMC_SCOPE');
  return {
    kafkaBrokers: str(env, 'KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')
      .split(',')
      .map((b) => b.trim()),
    kafkaSecurity: loadKafkaSecurity(env, readFile),
    registryUrl: url(env, 'REGISTRY_URL', 'http://127.0.0.1:8081'),
    registryAuth: loadRegistryAuth(env, readFile),
    groupId: str(env, 'EMAILER_GROUP_ID', 'welcome-emailer'),
    augmentedTopic: str(env, 'AUGMENTED_TOPIC', 'welcome.members.augmented'),
    sentTopic: str(env, 'SENT_TOPIC', 'welcome.sent'),
    dlqTopic: str(env, 'EMAILER_DLQ_TOPIC', 'welcome.emailer.dlq'),
    dlqRetentionMs: retentionMs(env, 'DLQ_RETENTION_MS', -1),
    skippedTopic: str(env, 'SKIPPED_TOPIC', 'welcome.skipped'),
    heldTopic: str(env, 'HELD_TOPIC', 'welcome.held'),
    topicPartitions: int(env, 'TOPIC_PARTITIONS', 6, 1, 1000),
    sfmc: {
      authBaseUrl: url(env, 'SFMC_AUTH_URL'),
      clientId: str(env, 'SFMC_CLIENT_ID'),
      clientSecret: secret(env, 'SFMC_CLIENT_SECRET', readFile),
      ...(accountId ? { accountId } : {}),
      ...(scope ? { scope } : {}),
      timeoutMs: int(env, 'SFMC_TIMEOUT_MS', 5_000, 100, 120_000),
      batchSize: int(env, 'SFMC_BATCH_SIZE', 500, 1, 2000),
    },
    db: {
      host: str(env, 'DB_HOST', '127.0.0.1'),
      port: int(env, 'DB_PORT', 3306, 1, 65535),
      user: str(env, 'EMAILER_DB_USER', 'welcome_emailer'),
      password: secret(env, 'EMAILER_DB_PASSWORD', readFile),
      database: str(env, 'DB_NAME', 'loyalty'),
      ...dbTls(env, readFile),
    },
    orgs: parseOrgConfig(orgsText, orgsFile),
    chunkSize: int(env, 'EMAILER_BATCH_SIZE', 500, 1, 2000),
    partitionsConsumedConcurrently: int(env, 'PARTITIONS_CONSUMED_CONCURRENTLY', 3, 1, 64),
    tuning: loadStageTuning(env),
    httpPort: int(env, 'HTTP_PORT', 9464, 0, 65535),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
  };
}
