/**
 * produceAll against kafkajs's own send path (src/producer/sendMessages.js of kafkajs 2.2.4, the
 * code that runs in production), driven by a fake cluster whose partition leader moves mid-send:
 * first that kafkajs alone resolves such a send without writing one partition (kafkajs #1303,
 * the Welcome lost in the leader-kill scenario), then that produceAll notices and sends the
 * records of that partition again.
 */
import type { Producer } from 'kafkajs';
import { produceAll, recordingPartitioner, UnansweredPartitionsError, type OutgoingRecord } from '../../../consumers/shared/kafka';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const createSendMessages = require('kafkajs/src/producer/sendMessages') as (o: unknown) => (req: unknown) => Promise<Answer[]>;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const createRetry = require('kafkajs/src/retry') as (o: unknown) => unknown;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { KafkaJSConnectionError } = require('kafkajs/src/errors') as { KafkaJSConnectionError: new (m: string) => Error };

interface Answer {
  topicName: string;
  partition: number;
  errorCode: number;
}
interface TopicData {
  topic: string;
  partitions: { partition: number; messages: { key: string }[] }[];
}

/** Two brokers, topic `t` with two partitions; partition 0's leader is broker 1 until it dies. */
function cluster(opts: { brokerOneDiesOnce: boolean }) {
  const written: { broker: number; partition: number; key: string }[] = [];
  let leaderOfZero = 1;
  let brokerOneDead = false;
  const broker = (nodeId: number) => ({
    nodeId,
    async produce({ topicData }: { topicData: TopicData[] }) {
      if (nodeId === 1 && opts.brokerOneDiesOnce && !brokerOneDead) {
        // Dies after broker 2 has answered for partition 1 of the same send.
        await new Promise((r) => setTimeout(r, 20));
        brokerOneDead = true;
        leaderOfZero = 2; // the controller moves partition 0 to broker 2
        throw new KafkaJSConnectionError('Connection closed');
      }
      for (const t of topicData)
        for (const p of t.partitions) for (const m of p.messages) written.push({ broker: nodeId, partition: p.partition, key: String(m.key) });
      return {
        topics: topicData.map((t) => ({
          topicName: t.topic,
          partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode: 0, baseOffset: '0' })),
        })),
      };
    },
  });
  const brokers = new Map([1, 2].map((id) => [id, broker(id)]));
  const fake = {
    refreshMetadataIfNecessary: async () => undefined,
    refreshMetadata: async () => undefined,
    addMultipleTargetTopics: async () => undefined,
    isConnected: () => true,
    removeBroker: () => undefined,
    findTopicPartitionMetadata: () => [
      { partitionId: 0, leader: leaderOfZero },
      { partitionId: 1, leader: 2 },
    ],
    findLeaderForPartitions: (_topic: string, partitions: string[]) => {
      const out: Record<number, number[]> = {};
      for (const p of partitions.map(Number)) (out[p === 0 ? leaderOfZero : 2] ??= []).push(p);
      return out;
    },
    findBroker: async ({ nodeId }: { nodeId: number | string }) => brokers.get(Number(nodeId)),
  };
  const eosManager = {
    acquireBrokerLock: async () => undefined,
    releaseBrokerLock: async () => undefined,
    isTransactional: () => false,
    getSequence: () => 0,
    updateSequence: () => undefined,
    getProducerId: () => 1,
    getProducerEpoch: () => 0,
  };
  const logger = { debug: () => undefined, error: () => undefined, info: () => undefined, warn: () => undefined };
  const sendMessages = createSendMessages({
    logger,
    cluster: fake,
    partitioner: recordingPartitioner(),
    eosManager,
    retrier: createRetry({ initialRetryTime: 1, maxRetryTime: 5, retries: 3 }),
  });
  const producer = { sendBatch: (req: unknown) => sendMessages(req) } as unknown as Producer;
  return { producer, sendMessages, written };
}

/** Keys the murmur2 partitioner sends to partitions 0 and 1 of a 2-partition topic. */
function keysFor(count: number): string[] {
  const choose = recordingPartitioner();
  const meta = [
    { partitionId: 0, leader: 1 },
    { partitionId: 1, leader: 2 },
  ];
  const found: Record<number, string[]> = { 0: [], 1: [] };
  for (let i = 0; found[0]!.length < count || found[1]!.length < count; i++) {
    const key = `member-${i}`;
    const p = choose({ topic: 't', partitionMetadata: meta as never, message: { key, value: null } });
    if (found[p]!.length < count) found[p]!.push(key);
  }
  return [...found[0]!, ...found[1]!];
}

const records = (keys: string[]): OutgoingRecord[] => keys.map((key) => ({ topic: 't', key, value: Buffer.from(key) }));

describe('produceAll and a partition leader that moves mid-send', () => {
  test('kafkajs alone resolves the send without writing the moved partition (#1303)', async () => {
    const { sendMessages, written } = cluster({ brokerOneDiesOnce: true });
    const keys = keysFor(2);
    const answers = await sendMessages({
      acks: -1,
      topicMessages: [{ topic: 't', messages: keys.map((key) => ({ key, value: Buffer.from(key) })) }],
    });
    expect(answers.map((a) => a.partition)).toEqual([1]);
    expect(written.map((w) => w.key).sort()).toEqual(keys.slice(2).sort()); // partition 0's two records: nowhere
  });

  test('produceAll sends the unanswered partition again, to its new leader, once', async () => {
    const { producer, written } = cluster({ brokerOneDiesOnce: true });
    const keys = keysFor(2);
    const resent: string[][] = [];
    await produceAll(producer, records(keys), (partitions) => resent.push(partitions));
    expect(resent).toEqual([['t/0']]);
    expect(written.map((w) => w.key).sort()).toEqual([...keys].sort()); // every record once
    expect(written.filter((w) => w.partition === 0).every((w) => w.broker === 2)).toBe(true);
  });

  test('a healthy send is one request per broker and no resend', async () => {
    const { producer, written } = cluster({ brokerOneDiesOnce: false });
    const resent: string[][] = [];
    await produceAll(producer, records(keysFor(3)), (partitions) => resent.push(partitions));
    expect(resent).toEqual([]);
    expect(written).toHaveLength(6);
  });

  test('a producer whose answers never cover a partition fails loudly instead of resolving', async () => {
    const producer = { sendBatch: async () => [] } as unknown as Producer;
    await expect(produceAll(producer, records(['a']))).rejects.toBeInstanceOf(UnansweredPartitionsError);
  });
});
