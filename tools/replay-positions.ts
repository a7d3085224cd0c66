/**
 * Where an operator's re-drive of a topic stands (make replay-dlq, make release-held), per
 * partition, on a compacted topic kept forever: key `<scope>:<partition>`, value the next
 * offset to re-drive. Not a consumer group's committed offsets: Kafka drops those about 7 days
 * (offsets.retention.minutes) after the group was last active, and a re-drive after that would
 * send every record ever re-driven again.
 */
import type { Producer } from 'kafkajs';
import { createTopicsWithLeaders } from '../consumers/shared/kafka';
import { committed, kafka, readToEnd } from './topic-read';

export async function ensurePositionsTopic(topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(topic)) return;
    await createTopicsWithLeaders(admin, [
      {
        topic,
        numPartitions: 1,
        configEntries: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'retention.ms', value: '-1' },
        ],
      },
    ]);
  } finally {
    await admin.disconnect();
  }
}

/**
 * The stored positions of one scope (partition → next offset); where none is stored, the offsets
 * a consumer group of an earlier version committed (`legacyGroup`: taken over once), else none.
 */
export async function readPositions(topic: string, scope: string, legacy?: { groupId: string; topic: string }): Promise<Map<number, bigint>> {
  const stored = new Map<number, bigint>();
  await readToEnd(topic, (m) => {
    const [s, partition] = (m.key?.toString() ?? '').split(/:(?=\d+$)/);
    if (s === scope && partition !== undefined && m.value) stored.set(Number(partition), BigInt(m.value.toString()));
  });
  if (legacy) for (const [p, offset] of await committed(legacy.groupId, legacy.topic)) if (!stored.has(p)) stored.set(p, offset);
  return stored;
}

/** Records that `next` is the partition's next offset to re-drive (after what came before it was acknowledged). */
export async function recordPosition(producer: Producer, topic: string, scope: string, partition: number, next: bigint): Promise<void> {
  await producer.send({ topic, acks: -1, messages: [{ key: `${scope}:${partition}`, value: next.toString() }] });
}
