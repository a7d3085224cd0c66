import { readFileSync } from 'node:fs';
import { int, optionalStr, retentionMs, secret, str, url, type Env } from '../shared/env';
import { loadStageTuning, type StageTuning } from '../shared/stage-config';
import { loadKafkaSecurity, type KafkaSecurity } from '../shared/kafka-security';
import { loadRegistryAuth, type RegistryAuth } from '../shared/registry-auth';
import { ConfigError } from '../shared/errors';
import { parseOrgConfig, type OrgConfig } from '../emailer/org-config';
import { dbTls } from '../emailer/config';

export interface DeliveryStatusConfig {
  kafkaBrokers: string[];
  kafkaSecurity: KafkaSecurity;
  registryAuth: RegistryAuth | undefined;
  registryUrl: string;
  groupId: string;
  sentTopic: string;
  statusTopic: string;
  dlqTopic: string;
  /** retention.ms of the DLQ topic, set on it at start (-1: kept until replayed). */
  dlqRetentionMs: number;
  tuning: StageTuning;
  topicPartitions: number;
  sfmc: { authBaseUrl: string; clientId: string; clientSecret: string; accountId?: string; scope?: string; timeoutMs: number };
  db: { host: string; port: number; user: string; password: string; database: string; tls?: { ca: string; verifyHost: boolean } };
  /** The Welcome configuration: each organization's business unit. */
  orgs: OrgConfig;
  firstCheckDelayMs: number;
  recheckBaseMs: number;
  recheckMaxMs: number;
  sweepIntervalMs: number;
  sweepLimit: number;
  concurrency: number;
  chunkSize: number;
  partitionsConsumedConcurrently: number;
  httpPort: number;
  logLevel: string;
}

/** Read once at start; a bad or missing variable stops the process with its name. */
export function loadDeliveryStatusConfig(env: Env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): DeliveryStatusConfig {
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
    groupId: str(env, 'DELIVERY_STATUS_GROUP_ID', 'welcome-delivery-status'),
    sentTopic: str(env, 'SENT_TOPIC', 'welcome.sent'),
    statusTopic: str(env, 'DELIVERY_STATUS_TOPIC', 'welcome.delivery.status'),
    dlqTopic: str(env, 'DELIVERY_STATUS_DLQ_TOPIC', 'welcome.delivery.status.dlq'),
    dlqRetentionMs: retentionMs(env, 'DLQ_RETENTION_MS', -1),
    tuning: loadStageTuning(env),
    topicPartitions: int(env, 'TOPIC_PARTITIONS', 6, 1, 1000),
    sfmc: {
      authBaseUrl: url(env, 'SFMC_AUTH_URL'),
      clientId: str(env, 'SFMC_CLIENT_ID'),
      clientSecret: secret(env, 'SFMC_CLIENT_SECRET', readFile),
      ...(accountId ? { accountId } : {}),
      ...(scope ? { scope } : {}),
      timeoutMs: int(env, 'SFMC_TIMEOUT_MS', 5_000, 100, 120_000),
    },
    db: {
      host: str(env, 'DB_HOST', '127.0.0.1'),
      port: int(env, 'DB_PORT', 3306, 1, 65535),
      user: str(env, 'DELIVERY_DB_USER', 'welcome_delivery'),
      password: secret(env, 'DELIVERY_DB_PASSWORD', readFile),
      database: str(env, 'DB_NAME', 'loyalty'),
      // DB_SSL_CA_FILE / DB_SSL_MODE, as the emailer's pool
      ...dbTls(env, readFile),
    },
    orgs: parseOrgConfig(orgsText, orgsFile),
    firstCheckDelayMs: int(env, 'DELIVERY_FIRST_CHECK_DELAY_MS', 2_000, 0, 20_000),
    recheckBaseMs: int(env, 'DELIVERY_RECHECK_BASE_MS', 30_000, 100, 3_600_000),
    recheckMaxMs: int(env, 'DELIVERY_RECHECK_MAX_MS', 3_600_000, 100, 86_400_000),
    sweepIntervalMs: int(env, 'DELIVERY_SWEEP_INTERVAL_MS', 10_000, 100, 3_600_000),
    sweepLimit: int(env, 'DELIVERY_SWEEP_LIMIT', 200, 1, 10_000),
    concurrency: int(env, 'DELIVERY_STATUS_CONCURRENCY', 4, 1, 64),
    chunkSize: int(env, 'DELIVERY_STATUS_BATCH_SIZE', 100, 1, 500),
    partitionsConsumedConcurrently: int(env, 'PARTITIONS_CONSUMED_CONCURRENTLY', 3, 1, 64),
    httpPort: int(env, 'HTTP_PORT', 9464, 0, 65535),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
  };
}
