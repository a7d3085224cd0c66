/**
 * groupLag after a broker failover: kafkajs's fetchTopicOffsets keeps failing with
 * NOT_LEADER_OR_FOLLOWER on its stale metadata until the admin reconnects (kafkajs 2.2.4 bails on
 * that error and refreshes only after metadataMaxAge, 5 min). The fake admin behaves the same:
 * it answers only once connect() has reloaded its metadata.
 */
import type { Admin } from 'kafkajs';
import { groupLag } from '../../../consumers/shared/kafka';

function admin(opts: { staleUntilReconnect: boolean; down?: boolean }) {
  let stale = opts.staleUntilReconnect;
  const calls: string[] = [];
  const a = {
    async connect() {
      calls.push('connect');
      if (opts.down) throw new Error('Connection error: ECONNREFUSED');
      stale = false;
    },
    async disconnect() {
      calls.push('disconnect');
    },
    async fetchTopicOffsets() {
      calls.push('fetchTopicOffsets');
      if (stale || opts.down)
        throw Object.assign(new Error('This server is not the leader for that topic-partition'), { type: 'NOT_LEADER_OR_FOLLOWER' });
      return [
        { partition: 0, offset: '10', high: '10', low: '0' },
        { partition: 1, offset: '4', high: '4', low: '2' },
      ];
    },
    async fetchOffsets() {
      return [
        {
          topic: 't',
          partitions: [
            { partition: 0, offset: '7', metadata: null },
            { partition: 1, offset: '-1', metadata: null },
          ],
        },
      ];
    },
  };
  return { admin: a as unknown as Admin, calls };
}

test('a healthy admin: one measure, no reconnect', async () => {
  const { admin: a, calls } = admin({ staleUntilReconnect: false });
  expect(await groupLag(a, 'g', 't')).toEqual([
    { partition: 0, lag: 3 },
    { partition: 1, lag: 2 }, // nothing committed: from the low watermark
  ]);
  expect(calls).toEqual(['fetchTopicOffsets']);
});

test('stale metadata after a failover: reconnects once and measures', async () => {
  const { admin: a, calls } = admin({ staleUntilReconnect: true });
  expect(await groupLag(a, 'g', 't')).toEqual([
    { partition: 0, lag: 3 },
    { partition: 1, lag: 2 },
  ]);
  expect(calls).toEqual(['fetchTopicOffsets', 'disconnect', 'connect', 'fetchTopicOffsets']);
});

test('Kafka down: the error reaches the caller (no figure, no verdict), after one reconnect attempt', async () => {
  const { admin: a, calls } = admin({ staleUntilReconnect: true, down: true });
  await expect(groupLag(a, 'g', 't')).rejects.toThrow('ECONNREFUSED');
  expect(calls).toEqual(['fetchTopicOffsets', 'disconnect', 'connect']);
});
