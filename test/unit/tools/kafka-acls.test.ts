import { join } from 'node:path';
import { loadDeliveryStatusConfig } from '../../../consumers/delivery-status/config';
import { loadConnectorDefs } from '../../../tools/connect-defs';
import { pipelineGrants, pipelineNames, pipelineTopics, type Grant } from '../../../tools/kafka-acls';

const ROOT = join(__dirname, '..', '..', '..');
const grants = pipelineGrants({});
const of = (user: string): Grant[] => grants.filter((g) => g.user === user);
const can = (user: string, resource: Grant['resource'], name: string, op: Grant['ops'][number]): boolean =>
  of(user).some((g) => g.resource === resource && g.name === name && g.ops.includes(op));

test('the delivery-status principal gets exactly what the stage reads and writes, named as its config names them', () => {
  const config = loadDeliveryStatusConfig({
    SFMC_AUTH_URL: 'http://sfmc.example',
    SFMC_CLIENT_ID: 'c',
    SFMC_CLIENT_SECRET: 's',
    DELIVERY_DB_PASSWORD: 'p',
    WELCOME_ORGS_FILE: join(ROOT, 'config', 'welcome-orgs.json'),
  });
  const { users } = pipelineNames({});
  expect(
    of(users.delivery)
      .map((g) => `${g.resource}:${g.name}:${[...g.ops].sort().join(',')}`)
      .sort(),
  ).toEqual(
    [
      `topic:${config.sentTopic}:DESCRIBE,READ`,
      `topic:${config.statusTopic}:DESCRIBE,WRITE`,
      `topic:${config.dlqTopic}:DESCRIBE,DESCRIBE_CONFIGS,WRITE`,
      `group:${config.groupId}:DESCRIBE,READ`,
    ].sort(),
  );
  // the admin creates its output topics, DLQ kept until replayed (the stage checks it at start)
  const topics = new Map(pipelineTopics({}).map((t) => [t.topic, t]));
  expect(topics.has(config.statusTopic)).toBe(true);
  expect(topics.get(config.dlqTopic)?.configEntries).toContainEqual({ name: 'retention.ms', value: '-1' });
});

test('only the emailer writes welcome.sent', () => {
  const { topics } = pipelineNames({});
  expect([...new Set(grants.filter((g) => g.name === topics.sent && g.ops.includes('WRITE')).map((g) => g.user))]).toEqual(['emailer']);
});

test.each(['mariadb', 'mysql'] as const)(
  'Connect may run every sink of connect/*.json (%s): its topics, group connect-<name>, its DLQ',
  (flavour) => {
    const sinks = loadConnectorDefs(join(ROOT, 'connect'), flavour).filter((d) => d.config.topics);
    expect(sinks.map((d) => d.name).sort()).toEqual(['welcome-audit', 'welcome-delivery-status']);
    const created = new Set(pipelineTopics({}).map((t) => t.topic));
    for (const sink of sinks) {
      for (const topic of sink.config.topics!.split(','))
        expect({ sink: sink.name, topic, read: can('connect', 'topic', topic, 'READ') }).toMatchObject({ read: true });
      expect({ sink: sink.name, group: can('connect', 'group', `connect-${sink.name}`, 'READ') }).toEqual({ sink: sink.name, group: true });
      const dlq = sink.config['errors.deadletterqueue.topic.name'];
      expect({ sink: sink.name, dlq, write: can('connect', 'topic', dlq!, 'WRITE'), created: created.has(dlq!) }).toEqual({
        sink: sink.name,
        dlq,
        write: true,
        created: true,
      });
    }
  },
);
