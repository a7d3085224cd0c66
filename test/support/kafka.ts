import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import { kafkaClientOptions, loadKafkaSecurity } from '../../consumers/shared/kafka-security';
import type { InputRecord } from '../../consumers/shared/stage';
import { stackEnv, runId } from './env';
import { waitFor } from './wait';

/** A record as a stage sees it (consumers/shared/stage.ts), without the broker timestamp. */
export type SeenRecord = Omit<InputRecord, 'timestamp'>;

export const testKafka = new Kafka({
  clientId: `test-${runId}`,
  brokers: stackEnv.kafka,
  ...kafkaClientOptions(loadKafkaSecurity(process.env, (p) => readFileSync(p, 'utf8'))),
  logLevel: logLevel.NOTHING,
});

/**
 * Reads a topic from the beginning into memory with a throwaway group, so a test can
 * assert on everything a stage wrote (and on what it did NOT write).
 */
export async function topicExists(topic: string): Promise<boolean> {
  const admin = testKafka.admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.disconnect();
  }
}

export class TopicTap {
  readonly records: SeenRecord[] = [];
  private consumer: Consumer | undefined;
  private static seq = 0;

  constructor(readonly topic: string) {}

  async start(): Promise<this> {
    await waitFor(`topic ${this.topic} to exist`, () => topicExists(this.topic), 30_000, 250);
    this.consumer = testKafka.consumer({ groupId: `test-tap-${runId}-${TopicTap.seq++}`, maxWaitTimeInMs: 100 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        this.records.push({ topic, partition, offset: message.offset, key: message.key, value: message.value, headers: message.headers ?? {} });
      },
    });
    return this;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

export async function produceRaw(
  topic: string,
  messages: { key?: string | Buffer | null; value: Buffer | null; headers?: IHeaders; partition?: number }[],
): Promise<void> {
  const producer = testKafka.producer();
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: messages.map((m) => ({ key: m.key ?? null, value: m.value, headers: m.headers, partition: m.partition })),
    });
  } finally {
    await producer.disconnect();
  }
}

export async function committedOffsets(groupId: string, topic: string): Promise<Map<number, bigint>> {
  const admin = testKafka.admin();
  await admin.connect();
  try {
    const [res] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((res?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

export async function endOffsets(topic: string): Promise<Map<number, bigint>> {
  const admin = testKafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
}
