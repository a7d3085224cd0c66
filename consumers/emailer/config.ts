import { readFileSync } from 'node:fs';
import { loadStageTuning, type StageTuning } from '../shared/stage-config';
import { int, retentionMs, str, type Env } from '../shared/env';
import {
  loadDbSettings,
  loadKafkaAndRegistry,
  loadSfmcSettings,
  type DbSettings,
  type KafkaAndRegistry,
  type SfmcSettings,
} from '../shared/connection-config';
import { loadForgetKey } from '../shared/forgotten';
import { readOrgConfig, type OrgConfig } from './org-config';

export interface EmailerConfig extends KafkaAndRegistry {
  groupId: string;
  augmentedTopic: string;
  sentTopic: string;
  dlqTopic: string;
  /** retention.ms of the DLQ topic, set on it at start (-1: kept until replayed). */
  dlqRetentionMs: number;
  skippedTopic: string;
  heldTopic: string;
  topicPartitions: number;
  sfmc: SfmcSettings & { batchSize: number; concurrentRequests: number };
  db: DbSettings;
  /** WELCOME_FORGET_KEY (or _FILE): the key of the forgotten members' hashes (shared/forgotten.ts). */
  forgetKey: string;
  orgs: OrgConfig;
  chunkSize: number;
  partitionsConsumedConcurrently: number;
  tuning: StageTuning;
  /** HTTP_HOST: where /healthz, /readyz and /metrics listen (127.0.0.1; the image sets 0.0.0.0 for probes). */
  httpHost: string;
  httpPort: number;
  logLevel: string;
}

export function loadEmailerConfig(env: Env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): EmailerConfig {
  return {
    ...loadKafkaAndRegistry(env, readFile),
    groupId: str(env, 'EMAILER_GROUP_ID', 'welcome-emailer'),
    augmentedTopic: str(env, 'AUGMENTED_TOPIC', 'welcome.members.augmented'),
    sentTopic: str(env, 'SENT_TOPIC', 'welcome.sent'),
    dlqTopic: str(env, 'EMAILER_DLQ_TOPIC', 'welcome.emailer.dlq'),
    dlqRetentionMs: retentionMs(env, 'DLQ_RETENTION_MS', -1),
    skippedTopic: str(env, 'SKIPPED_TOPIC', 'welcome.skipped'),
    heldTopic: str(env, 'HELD_TOPIC', 'welcome.held'),
    topicPartitions: int(env, 'TOPIC_PARTITIONS', 6, 1, 1000),
    sfmc: {
      ...loadSfmcSettings(env, readFile),
      batchSize: int(env, 'SFMC_BATCH_SIZE', 500, 1, 2000),
      // Requests of one chunk in flight at once (one per business unit and send definition).
      // 4: with SFMC answering in 150 ms a chunk of two organizations waited for two answers one
      // after the other; bench-ab 2026-12-01 16:03 UTC: end to end p50 489 → 304 ms (docs/performance.md, Tuning).
      concurrentRequests: int(env, 'SFMC_CONCURRENT_REQUESTS', 4, 1, 32),
    },
    db: loadDbSettings(env, readFile, { userVar: 'EMAILER_DB_USER', passwordVar: 'EMAILER_DB_PASSWORD', defaultUser: 'welcome_emailer' }),
    // Required: without it a forgotten member could not be recognized, and would be sent.
    forgetKey: loadForgetKey(env, readFile),
    orgs: readOrgConfig(env, readFile),
    chunkSize: int(env, 'EMAILER_BATCH_SIZE', 500, 1, 2000),
    // 6 = the topics' partitions: one worker each, so a fetch round runs in one wave, not two
    // (a record waits for the round's slowest chunk; bench-ab 2026-12-01 15:37, docs/performance.md).
    partitionsConsumedConcurrently: int(env, 'PARTITIONS_CONSUMED_CONCURRENTLY', 6, 1, 64),
    tuning: loadStageTuning(env),
    httpHost: str(env, 'HTTP_HOST', '127.0.0.1'),
    httpPort: int(env, 'HTTP_PORT', 9464, 0, 65535),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
  };
}
