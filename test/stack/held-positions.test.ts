/**
 * Issue 20, item 7: `make release-held` must not depend on a consumer group's committed
 * offsets, which Kafka drops about 7 days after the group was last active
 * (offsets.retention.minutes): then every held record ever released would count as held again
 * and a release would send them all a second time through the pipeline. Here the expiry is the
 * group's deletion; topics and the organization are this run's own.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { GUARD_HEADERS } from '../../consumers/emailer/guards';
import { ROOT, runId } from '../support/env';
import { testKafka } from '../support/kafka';

jest.setTimeout(120_000);

const org = `T${runId}`.slice(0, 16);
const env = { ...process.env, HELD_TOPIC: `test.held.${runId}`, AUGMENTED_TOPIC: `test.augmented.${runId}` };
const held = (...args: string[]): string =>
  execFileSync('node', [join(ROOT, 'dist/tools/held.js'), ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
const pendingOf = (status: string): number => Number(new RegExp(`^\\s+${org}\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);

test('a release is remembered after the consumer group that read it has expired: nothing is held again, nothing released twice', async () => {
  const admin = testKafka.admin();
  const producer = testKafka.producer();
  await Promise.all([admin.connect(), producer.connect()]);
  try {
    await admin.createTopics({
      topics: [
        { topic: env.HELD_TOPIC, numPartitions: 2 },
        { topic: env.AUGMENTED_TOPIC, numPartitions: 2 },
      ],
      waitForLeaders: true,
    });
    await producer.send({
      topic: env.HELD_TOPIC,
      acks: -1,
      messages: [0, 1, 2].map((i) => ({ key: `${org}:m${i}`, value: `v${i}`, partition: i % 2, headers: { [GUARD_HEADERS.org]: org } })),
    });
    expect(pendingOf(held('status'))).toBe(3);
    expect(held('release', org)).toMatch(new RegExp(`released 3 held Welcome\\(s\\) of ${org}`));
    expect(pendingOf(held('status'))).toBe(0);

    // Seven idle days later Kafka has dropped the release group's offsets.
    await admin.deleteGroups([`welcome-held-release-${org}`]).catch(() => undefined);

    expect(pendingOf(held('status'))).toBe(0);
    expect(held('release', org)).toMatch(new RegExp(`released 0 held Welcome\\(s\\) of ${org}`));
    // A record held after that is still found, and released once.
    await producer.send({ topic: env.HELD_TOPIC, acks: -1, messages: [{ key: `${org}:m3`, value: 'v3', headers: { [GUARD_HEADERS.org]: org } }] });
    expect(pendingOf(held('status'))).toBe(1);
    expect(held('release', org)).toMatch(new RegExp(`released 1 held Welcome\\(s\\) of ${org}`));
    const offsets = await admin.fetchTopicOffsets(env.AUGMENTED_TOPIC);
    expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(4);
  } finally {
    await admin.deleteTopics({ topics: [env.HELD_TOPIC, env.AUGMENTED_TOPIC] }).catch(() => undefined);
    await Promise.all([admin.disconnect(), producer.disconnect()]);
  }
});
