import { readFileSync } from 'node:fs';
import { loadStageTuning, type StageTuning } from '../shared/stage-config';
import { loadKafkaAndRegistry, type KafkaAndRegistry } from '../shared/connection-config';
import { int, retentionMs, secret, str, url, type Env } from '../shared/env';

export interface AugmenterConfig extends KafkaAndRegistry {
  groupId: string;
  memberTopic: string;
  augmentedTopic: string;
  dlqTopic: string;
  /** retention.ms of the DLQ topic, set on it at start (-1: kept until replayed). */
  dlqRetentionMs: number;
  dwApiUrl: string;
  dwApiToken: string;
  dwTimeoutMs: number;
  chunkSize: number;
  topicPartitions: number;
  partitionsConsumedConcurrently: number;
  tuning: StageTuning;
  /** HTTP_HOST: where /healthz, /readyz and /metrics listen (127.0.0.1; the image sets 0.0.0.0 for probes). */
  httpHost: string;
  httpPort: number;
  logLevel: string;
}

/** Read once at start; a bad or missing variable stops the process with its name. */
export function loadAugmenterConfig(env: Env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): AugmenterConfig {
  return {
    ...loadKafkaAndRegistry(env, readFile),
    groupId: str(env, 'AUGMENTER_GROUP_ID', 'welcome-augmenter'),
    memberTopic: str(env, 'MEMBER_TOPIC', 'cdc.loyalty.members'),
    augmentedTopic: str(env, 'AUGMENTED_TOPIC', 'welcome.members.augmented'),
    dlqTopic: str(env, 'AUGMENTER_DLQ_TOPIC', 'welcome.augmenter.dlq'),
    dlqRetentionMs: retentionMs(env, 'DLQ_RETENTION_MS', -1),
    dwApiUrl: url(env, 'DW_API_URL'),
    dwApiToken: secret(env, 'DW_API_TOKEN', readFile),
    dwTimeoutMs: int(env, 'DW_API_TIMEOUT_MS', 2_000, 50, 60_000),
    chunkSize: int(env, 'AUGMENTER_BATCH_SIZE', 500, 1, 500),
    topicPartitions: int(env, 'TOPIC_PARTITIONS', 6, 1, 1000),
    // 6 = the topics' partitions: one worker each, so a fetch round runs in one wave, not two
    // (a record waits for the round's slowest chunk; bench-ab 2026-12-01 15:37, docs/performance.md).
    partitionsConsumedConcurrently: int(env, 'PARTITIONS_CONSUMED_CONCURRENTLY', 6, 1, 64),
    tuning: loadStageTuning(env),
    httpHost: str(env, 'HTTP_HOST', '127.0.0.1'),
    httpPort: int(env, 'HTTP_PORT', 9464, 0, 65535),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
  };
}
