/**
 * Issue 10: dead letters are kept until replayed. The DLQ topics carry retention.ms=-1 (the
 * consumers set it at start, `make connectors` on the sink's DLQ), set on an existing topic
 * too, idempotently, without dropping the topic's other settings.
 */
import { ConfigResourceTypes } from 'kafkajs';
import { dlqTopicConfigs, ensureTopicConfigs } from '../../consumers/shared/kafka';
import { runId, stackEnv } from '../support/env';
import { testKafka } from '../support/kafka';

jest.setTimeout(60_000);

const admin = testKafka.admin();
beforeAll(() => admin.connect());
afterAll(() => admin.disconnect());

async function topicConfig(topic: string): Promise<Record<string, string>> {
  const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
  return Object.fromEntries((res.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
}

test('every DLQ topic of the running stack keeps its records (retention.ms=-1, retention.bytes=-1)', async () => {
  for (const topic of [stackEnv.augmenterDlq, stackEnv.emailerDlq, process.env.AUDIT_DLQ_TOPIC ?? 'welcome.audit.dlq']) {
    const c = await topicConfig(topic);
    expect({ topic, retention: c['retention.ms'], bytes: c['retention.bytes'] }).toEqual({
      topic,
      retention: process.env.DLQ_RETENTION_MS ?? '-1',
      bytes: '-1',
    });
  }
});

test('an existing topic gets the DLQ retention once, keeps its other overrides, and a second pass changes nothing', async () => {
  const topic = `dlq-retention-${runId}`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: 1,
        configEntries: [
          { name: 'retention.ms', value: '604800000' },
          { name: 'max.message.bytes', value: '2000000' },
        ],
      },
    ],
  });
  try {
    expect(await ensureTopicConfigs(admin, topic, dlqTopicConfigs(-1))).toEqual(['retention.ms']);
    const c = await topicConfig(topic);
    expect(c).toMatchObject({ 'retention.ms': '-1', 'retention.bytes': '-1', 'max.message.bytes': '2000000' });
    expect(await ensureTopicConfigs(admin, topic, dlqTopicConfigs(-1))).toEqual([]);
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  }
});
