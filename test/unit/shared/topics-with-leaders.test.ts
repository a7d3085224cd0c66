/**
 * createTopicsWithLeaders on a cluster that learns a new topic broker by broker: the metadata
 * answer is first UNKNOWN_TOPIC_OR_PARTITION (where kafkajs's waitForLeaders gives up), then a
 * partition without a leader, then every leader.
 */
import type { Admin } from 'kafkajs';
import { createTopicsWithLeaders } from '../../../consumers/shared/kafka';

function admin(answers: (() => unknown)[]) {
  const created: unknown[] = [];
  let asked = 0;
  const a = {
    async createTopics(req: unknown) {
      created.push(req);
      return true;
    },
    async fetchTopicMetadata() {
      const answer = answers[Math.min(asked++, answers.length - 1)] as () => unknown;
      return answer();
    },
  };
  return { admin: a as unknown as Admin, created, asked: () => asked };
}
const unknownTopic = () => {
  throw Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
};
const leaders =
  (...l: number[]) =>
  () => ({ topics: [{ name: 't', partitions: l.map((leader, partitionId) => ({ partitionId, leader })) }] });

test('waits through an unknown topic and a missing leader until every partition has one', async () => {
  const { admin: a, created, asked } = admin([unknownTopic, unknownTopic, leaders(1, -1), leaders(1, 2)]);
  await createTopicsWithLeaders(a, [{ topic: 't', numPartitions: 2 }]);
  expect(created).toEqual([{ waitForLeaders: false, topics: [{ topic: 't', numPartitions: 2 }] }]);
  expect(asked()).toBe(4);
});

test('gives up with the last error once the time is spent', async () => {
  const { admin: a } = admin([unknownTopic]);
  await expect(createTopicsWithLeaders(a, [{ topic: 't', numPartitions: 1 }], 600)).rejects.toThrow(
    /created but without leaders after 0.6 s: Error: This server does not host/,
  );
});
