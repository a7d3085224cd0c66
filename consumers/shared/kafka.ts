/**
 * The only module that imports kafkajs. kafkajs is in maintenance mode (last release
 * Feb 2023); keeping every Kafka call here keeps a move to @confluentinc/kafka-javascript
 * (same API shape, librdkafka underneath) a change to one file.
 */
import {
  Kafka,
  logLevel,
  CompressionTypes,
  ConfigResourceTypes,
  Partitioners,
  type Consumer,
  type Producer,
  type EachBatchPayload,
  type IHeaders,
  type Admin,
  type Message,
  type ITopicConfig,
} from 'kafkajs';
import { kafkaClientOptions, type KafkaSecurity } from './kafka-security';
import type { Logger } from './logger';

export type { Consumer, Producer, EachBatchPayload, Admin };
export type KafkaMessage = EachBatchPayload['batch']['messages'][number];

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  /** TLS/SASL (consumers/shared/kafka-security.ts); absent = PLAINTEXT. */
  security?: KafkaSecurity;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafka(config: KafkaConfig, logger: Logger): Kafka {
  const kafkaLog = logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    ...(config.security ? kafkaClientOptions(config.security) : {}),
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 100, maxRetryTime: 5_000, retries: 10 },
    // kafkajs's own logs go through pino, one JSON line each, at kafkajs's level.
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }) => {
        const { message, ...extra } = log;
        kafkaLog[LEVELS[level] ?? 'info']({ ...extra, namespace: log.namespace }, message);
      },
  });
}

export interface GroupTiming {
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
}

/**
 * Consumers tuned for latency: a fetch returns as soon as one byte is there (max 100 ms wait).
 * The session timeout is short (6 s by default, stage-config.ts) so a killed member's
 * partitions move within seconds; the stage heartbeats on a timer so slow work never expires it.
 */
export function createConsumer(
  kafka: Kafka,
  groupId: string,
  timing: GroupTiming = { sessionTimeoutMs: 30_000, heartbeatIntervalMs: 3_000, rebalanceTimeoutMs: 60_000 },
): Consumer {
  return kafka.consumer({
    groupId,
    sessionTimeout: timing.sessionTimeoutMs,
    heartbeatInterval: timing.heartbeatIntervalMs,
    rebalanceTimeout: timing.rebalanceTimeoutMs,
    maxWaitTimeInMs: 100,
    minBytes: 1,
    maxBytesPerPartition: 1_048_576,
    allowAutoTopicCreation: false,
  });
}

/**
 * The partition kafkajs's partitioner chose for each message object it routed. produceAll reads
 * it to check that the broker answers cover every partition written (kafkajs #1303, below).
 */
const routedPartition = new WeakMap<object, number>();

/** The default (Java-compatible murmur2) partitioner, recording what it chose. Exported for its test. */
export const recordingPartitioner = () => {
  const choose = Partitioners.DefaultPartitioner();
  return (args: Parameters<ReturnType<typeof Partitioners.DefaultPartitioner>>[0]): number => {
    const partition = choose(args);
    routedPartition.set(args.message, partition);
    return partition;
  };
};

/** Idempotent producer with acks=all: an acknowledged record is on every in-sync replica, once. */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: recordingPartitioner });
}

export interface OutgoingRecord {
  topic: string;
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: IHeaders;
}

/** How often produceAll re-sends records whose partition got no answer before it gives up. */
const UNANSWERED_RESENDS = 3;

export class UnansweredPartitionsError extends Error {
  constructor(readonly partitions: string[]) {
    super(`kafkajs resolved a send without a broker answer for ${partitions.join(', ')} (kafkajs #1303)`);
    this.name = 'UnansweredPartitionsError';
  }
}

/**
 * One acknowledged write of many records (acks=all); resolves only when every record has a
 * broker's answer. kafkajs 2.2.4 alone does not promise that: when a partition's leader moves
 * mid-send to a broker that already answered for the send's other partitions, its retry skips
 * that broker (sendMessages.js keeps one response per broker, not per partition) and resolves
 * without ever writing that partition's records — kafkajs issue #1303, a Welcome lost in our
 * leader-kill scenario. So the answers are checked against the partitions the records were
 * routed to, and records without an answer are sent again (a fresh send, so a fresh map).
 * A producer not made by createProducer has no routing record: every send then fails loudly.
 */
export async function produceAll(producer: Producer, records: OutgoingRecord[], onResend?: (partitions: string[]) => void): Promise<void> {
  let pending = records;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const byTopic = new Map<string, { record: OutgoingRecord; message: Message }[]>();
    for (const record of pending) {
      const message: Message = { key: record.key, value: record.value, headers: record.headers };
      byTopic.set(record.topic, [...(byTopic.get(record.topic) ?? []), { record, message }]);
    }
    const answers = await producer.sendBatch({
      acks: -1,
      compression: CompressionTypes.None,
      topicMessages: [...byTopic.entries()].map(([topic, sent]) => ({ topic, messages: sent.map((s) => s.message) })),
    });
    const answered = new Set(answers.filter((a) => a.errorCode === 0).map((a) => `${a.topicName}/${a.partition}`));
    const unanswered = [...byTopic.entries()].flatMap(([topic, sent]) =>
      sent.filter((s) => !answered.has(`${topic}/${routedPartition.get(s.message) ?? '?'}`)),
    );
    if (unanswered.length === 0) return;
    const partitions = [...new Set(unanswered.map((s) => `${s.record.topic}/${routedPartition.get(s.message) ?? '?'}`))];
    if (attempt >= UNANSWERED_RESENDS) throw new UnansweredPartitionsError(partitions);
    onResend?.(partitions);
    pending = unanswered.map((s) => s.record);
  }
}

/**
 * Creates the topics that are missing; `configs` (e.g. a DLQ's retention) are set on new
 * topics and, through `ensureTopicConfigs`, on existing ones too.
 */
export async function ensureTopics(kafka: Kafka, topics: { topic: string; partitions: number; configs?: Record<string, string> }[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
      await createTopicsWithLeaders(
        admin,
        missing.map((t) => ({
          topic: t.topic,
          numPartitions: t.partitions,
          configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      );
    }
    for (const t of topics.filter((x) => existing.has(x.topic) && x.configs)) await ensureTopicConfigs(admin, t.topic, t.configs ?? {});
  } finally {
    await admin.disconnect();
  }
}

/**
 * createTopics, then wait until every partition of those topics has a leader. kafkajs's own
 * waitForLeaders asks the controller broker and retries only LEADER_NOT_AVAILABLE: on a KRaft
 * cluster a broker that has not applied the new topic yet answers UNKNOWN_TOPIC_OR_PARTITION and
 * kafkajs gives up (seen: `make up KAFKA_NODES=3` failing in kafka-acls on a fresh cluster).
 * Here any broker's metadata is asked again until it shows the leaders, for up to `timeoutMs`.
 */
export async function createTopicsWithLeaders(admin: Admin, topics: ITopicConfig[], timeoutMs = 60_000): Promise<void> {
  await admin.createTopics({ waitForLeaders: false, topics });
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: names });
      if (meta.length === names.length && meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      last = err; // not on every broker yet
    }
    if (Date.now() > deadline)
      throw new Error(`topics ${names.join(', ')} created but without leaders after ${timeoutMs / 1000} s${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Settings of a dead-letter topic: kept until replayed (retention.ms -1), not deleted by size either. */
export const dlqTopicConfigs = (retentionMs: number): Record<string, string> => ({
  'retention.ms': String(retentionMs),
  'retention.bytes': '-1',
  'cleanup.policy': 'delete',
});

/**
 * Sets `wanted` on an existing topic, keeping its other topic-level settings; no request when
 * they are already set (idempotent). kafkajs 2.2.4 has no IncrementalAlterConfigs, and the
 * AlterConfigs it has replaces a topic's whole set of overrides: so the overrides are read
 * first and sent back with ours merged in. Returns the names that changed.
 */
export async function ensureTopicConfigs(admin: Admin, topic: string, wanted: Record<string, string>): Promise<string[]> {
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
  const entries = described.resources[0]?.configEntries ?? [];
  // isDefault is false for broker-level settings too: only TOPIC_CONFIG (1) is the topic's own
  const overrides = new Map(
    entries
      .filter((e) => !e.isDefault && e.configValue !== null && (e as { configSource?: number }).configSource === 1)
      .map((e) => [e.configName, e.configValue]),
  );
  const changed = Object.entries(wanted)
    .filter(([name, value]) => entries.find((e) => e.configName === name)?.configValue !== value)
    .map(([name]) => name);
  if (changed.length === 0) return [];
  for (const [name, value] of Object.entries(wanted)) overrides.set(name, value);
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [...overrides].map(([name, value]) => ({ name, value })) }],
  });
  return changed;
}

/**
 * Lag per partition of a group: end offset minus committed offset. Tried once more after a
 * reconnect: kafkajs 2.2.4's fetchTopicOffsets bails on NOT_LEADER_OR_FOLLOWER without refreshing
 * its metadata, and refreshes it only when it is metadataMaxAge (5 min) old, so after a broker
 * failover every call failed for 5 minutes and the stall detector was blind (seen in the
 * leader-kill scenario). Connecting again reloads the metadata.
 */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<{ partition: number; lag: number }[]> {
  const measure = async () => {
    const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    return ends.map((e) => {
      const c = done.get(e.partition) ?? -1;
      const end = Number(e.high);
      return { partition: e.partition, lag: c < 0 ? end - Number(e.low) : Math.max(0, end - c) };
    });
  };
  try {
    return await measure();
  } catch {
    await admin.disconnect();
    await admin.connect();
    return measure();
  }
}

export function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : first.toString();
}
