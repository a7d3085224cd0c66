/**
 * Reading a topic to the end offsets seen at the start (so a command terminates), for the
 * operator's tools (dlq, held, reconcile). With a groupId it resumes from, and commits (after
 * `each` returned), that group's offsets: a record is handled at least once, and once in the
 * normal case. With `from` the caller picks the start per partition (the DLQ replay's stored
 * positions). The client takes KAFKA_SECURITY_* like the consumers: the tools reach a secured
 * Kafka too.
 */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type IHeaders, type KafkaMessage } from 'kafkajs';
import { kafkaClientOptions, kafkaFromEnv } from '../consumers/shared/kafka-security';

const kafkaEnv = kafkaFromEnv(process.env, (p) => readFileSync(p, 'utf8'));
export const brokers = kafkaEnv.brokers;
export const kafka = new Kafka({ clientId: 'welcome-ops-tool', brokers, ...kafkaClientOptions(kafkaEnv.security), logLevel: logLevel.NOTHING });

export const header = (h: IHeaders | undefined, name: string): string | undefined => {
  const v = h?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined || first === null ? undefined : first.toString();
};

/** Committed offsets of a group on a topic (partition → next offset; absent: nothing committed). */
export async function committed(groupId: string, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [c] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((c?.partitions ?? []).filter((p) => BigInt(p.offset) >= 0n).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

export interface ReadOptions {
  /** Resume from, and commit to, this consumer group. */
  groupId?: string;
  /** Where to start per partition, given the log starts (below a log start: the log start). */
  from?: (lows: Map<number, bigint>) => Promise<Map<number, bigint>>;
  progress?: (done: number, total: number) => void;
}

export async function readToEnd(
  topic: string,
  each: (m: KafkaMessage, partition: number) => Promise<void> | void,
  opts: ReadOptions = {},
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  let start: Map<number, bigint>;
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.map((p) => [p.partition, BigInt(p.high)]));
    const lows = new Map(offsets.map((p) => [p.partition, BigInt(p.low)]));
    start = opts.from ? await opts.from(lows) : opts.groupId ? await committed(opts.groupId, topic) : new Map(lows);
    // a position below the log start (records deleted meanwhile) starts at the log start
    for (const [p, low] of lows) if ((start.get(p) ?? 0n) < low) start.set(p, low);
  } finally {
    await admin.disconnect();
  }
  const pending = [...ends].filter(([p, end]) => (start.get(p) ?? 0n) < end);
  const total = pending.reduce((a, [p, end]) => a + Number(end - (start.get(p) ?? 0n)), 0);
  if (pending.length === 0) return 0;
  const consumer = kafka.consumer({ groupId: opts.groupId ?? `welcome-ops-read-${Date.now()}-${process.pid}`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  let count = 0;
  const remaining = new Set(pending.map(([p]) => p));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} took longer than 600 s`)), 600_000);
      consumer
        .subscribe({ topic, fromBeginning: true })
        .then(async () => {
          await consumer.run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const end = ends.get(partition) ?? 0n;
              const offset = BigInt(message.offset);
              if (offset >= end || offset < (start.get(partition) ?? 0n) || !remaining.has(partition)) return;
              try {
                await each(message, partition);
              } catch (err) {
                // Fail loudly instead of letting kafkajs retry the same message forever.
                clearTimeout(timer);
                reject(err);
                throw err;
              }
              count++;
              if (opts.progress && count % 10_000 === 0) opts.progress(count, total);
              if (opts.groupId) await consumer.commitOffsets([{ topic, partition, offset: (offset + 1n).toString() }]);
              if (offset + 1n >= end) remaining.delete(partition);
              if (remaining.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            },
          });
          // a group resumes where it committed; a chosen start is sought explicitly
          if (opts.from) for (const [partition] of pending) consumer.seek({ topic, partition, offset: String(start.get(partition) ?? 0n) });
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return count;
}
