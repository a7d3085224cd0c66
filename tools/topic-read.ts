/**
 * Reading a topic to the end offsets seen at the start (so a command terminates), for the
 * operator's tools. With a groupId it resumes from, and commits (after `each` returned),
 * that group's offsets: a record is handled at least once, and once in the normal case.
 */
import { Kafka, logLevel, type IHeaders, type KafkaMessage } from 'kafkajs';

export const brokers = (process.env.KAFKA_BOOTSTRAP_SERVERS ?? '127.0.0.1:9092').split(',');
export const kafka = new Kafka({ clientId: 'welcome-ops-tool', brokers, logLevel: logLevel.NOTHING });

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

export async function readToEnd(
  topic: string,
  each: (m: KafkaMessage, partition: number) => Promise<void> | void,
  opts: { groupId?: string; progress?: (done: number, total: number) => void } = {},
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
    start = lows;
    if (opts.groupId) {
      const [c] = await admin.fetchOffsets({ groupId: opts.groupId, topics: [topic] });
      for (const p of c?.partitions ?? [])
        if (BigInt(p.offset) >= 0n)
          start.set(p.partition, BigInt(p.offset) > (lows.get(p.partition) ?? 0n) ? BigInt(p.offset) : (lows.get(p.partition) ?? 0n));
    }
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
        .then(() =>
          consumer.run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const end = ends.get(partition) ?? 0n;
              if (BigInt(message.offset) >= end || !remaining.has(partition)) return;
              try {
                await each(message, partition);
              } catch (err) {
                clearTimeout(timer);
                reject(err);
                throw err;
              }
              count++;
              if (opts.progress && count % 10_000 === 0) opts.progress(count, total);
              if (opts.groupId) await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
              if (BigInt(message.offset) + 1n >= end) remaining.delete(partition);
              if (remaining.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            },
          }),
        )
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return count;
}
