import { readFileSync } from 'node:fs';
import { int, retentionMs, str, type Env } from '../shared/env';
import { loadStageTuning, type StageTuning } from '../shared/stage-config';
import {
  loadDbSettings,
  loadKafkaAndRegistry,
  loadSfmcSettings,
  type DbSettings,
  type KafkaAndRegistry,
  type SfmcSettings,
} from '../shared/connection-config';
import { readOrgConfig, type OrgConfig } from '../emailer/org-config';

export interface DeliveryStatusConfig extends KafkaAndRegistry {
  groupId: string;
  sentTopic: string;
  statusTopic: string;
  dlqTopic: string;
  /** retention.ms of the DLQ topic, set on it at start (-1: kept until replayed). */
  dlqRetentionMs: number;
  tuning: StageTuning;
  topicPartitions: number;
  sfmc: SfmcSettings;
  db: DbSettings;
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
  /** HTTP_HOST: where /healthz, /readyz and /metrics listen (127.0.0.1; the image sets 0.0.0.0 for probes). */
  httpHost: string;
  httpPort: number;
  logLevel: string;
}

/** Read once at start; a bad or missing variable stops the process with its name. */
export function loadDeliveryStatusConfig(env: Env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): DeliveryStatusConfig {
  return {
    ...loadKafkaAndRegistry(env, readFile),
    groupId: str(env, 'DELIVERY_STATUS_GROUP_ID', 'welcome-delivery-status'),
    sentTopic: str(env, 'SENT_TOPIC', 'welcome.sent'),
    statusTopic: str(env, 'DELIVERY_STATUS_TOPIC', 'welcome.delivery.status'),
    dlqTopic: str(env, 'DELIVERY_STATUS_DLQ_TOPIC', 'welcome.delivery.status.dlq'),
    dlqRetentionMs: retentionMs(env, 'DLQ_RETENTION_MS', -1),
    tuning: loadStageTuning(env),
    topicPartitions: int(env, 'TOPIC_PARTITIONS', 6, 1, 1000),
    sfmc: loadSfmcSettings(env, readFile),
    db: loadDbSettings(env, readFile, { userVar: 'DELIVERY_DB_USER', passwordVar: 'DELIVERY_DB_PASSWORD', defaultUser: 'welcome_delivery' }),
    orgs: readOrgConfig(env, readFile),
    firstCheckDelayMs: int(env, 'DELIVERY_FIRST_CHECK_DELAY_MS', 2_000, 0, 20_000),
    recheckBaseMs: int(env, 'DELIVERY_RECHECK_BASE_MS', 30_000, 100, 3_600_000),
    recheckMaxMs: int(env, 'DELIVERY_RECHECK_MAX_MS', 3_600_000, 100, 86_400_000),
    sweepIntervalMs: int(env, 'DELIVERY_SWEEP_INTERVAL_MS', 10_000, 100, 3_600_000),
    sweepLimit: int(env, 'DELIVERY_SWEEP_LIMIT', 200, 1, 10_000),
    concurrency: int(env, 'DELIVERY_STATUS_CONCURRENCY', 4, 1, 64),
    chunkSize: int(env, 'DELIVERY_STATUS_BATCH_SIZE', 100, 1, 500),
    partitionsConsumedConcurrently: int(env, 'PARTITIONS_CONSUMED_CONCURRENTLY', 3, 1, 64),
    httpHost: str(env, 'HTTP_HOST', '127.0.0.1'),
    httpPort: int(env, 'HTTP_PORT', 9464, 0, 65535),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
  };
}
