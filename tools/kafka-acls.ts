/**
 * Least privilege on Kafka, as data: what each principal of the pipeline may do, and a
 * setup command that creates the topics and those ACLs as the admin principal.
 *   node dist/tools/kafka-acls.js print     the ACL table for these settings
 *   node dist/tools/kafka-acls.js apply     create missing topics, then the ACLs (idempotent)
 * Topic, group and user names come from the same variables the components read
 * (MEMBER_TOPIC, AUGMENTER_GROUP_ID, ...); the connection is the admin's own
 * (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*; see kafka-security.ts).
 * Topics are created here, by the admin, so no component needs CREATE on the cluster.
 */
import { readFileSync } from 'node:fs';
import {
  AclOperationTypes as Op,
  AclPermissionTypes,
  AclResourceTypes as Res,
  Kafka,
  logLevel,
  ResourcePatternTypes as Pattern,
  type AclEntry,
} from 'kafkajs';
import { kafkaClientOptions, kafkaFromEnv } from '../consumers/shared/kafka-security';
import { createTopicsWithLeaders, dlqTopicConfigs } from '../consumers/shared/kafka';
import { retentionMs } from '../consumers/shared/env';
import { HELD_TOPIC_CONFIGS, SKIPPED_TOPIC_CONFIGS } from '../consumers/emailer/guards';

type Env = Readonly<Record<string, string | undefined>>;
export interface Grant {
  user: string;
  resource: 'topic' | 'group' | 'cluster';
  name: string;
  prefixed?: boolean;
  ops: (keyof typeof Op)[];
}

export function pipelineNames(env: Env) {
  const v = (name: string, fallback: string): string => env[name]?.trim() || fallback;
  return {
    users: {
      augmenter: v('KAFKA_AUGMENTER_USER', 'augmenter'),
      emailer: v('KAFKA_EMAILER_USER', 'emailer'),
      connect: v('KAFKA_CONNECT_USER', 'connect'),
      registry: v('KAFKA_REGISTRY_USER', 'registry'),
      delivery: v('KAFKA_DELIVERY_USER', 'delivery'),
    },
    topics: {
      member: v('MEMBER_TOPIC', 'cdc.loyalty.members'),
      augmented: v('AUGMENTED_TOPIC', 'welcome.members.augmented'),
      sent: v('SENT_TOPIC', 'welcome.sent'),
      augmenterDlq: v('AUGMENTER_DLQ_TOPIC', 'welcome.augmenter.dlq'),
      emailerDlq: v('EMAILER_DLQ_TOPIC', 'welcome.emailer.dlq'),
      auditDlq: v('AUDIT_DLQ_TOPIC', 'welcome.audit.dlq'),
      held: v('HELD_TOPIC', 'welcome.held'),
      skipped: v('SKIPPED_TOPIC', 'welcome.skipped'),
      deliveryStatus: v('DELIVERY_STATUS_TOPIC', 'welcome.delivery.status'),
      deliveryDlq: v('DELIVERY_STATUS_DLQ_TOPIC', 'welcome.delivery.status.dlq'),
      // the status sink's dead letters (errors.deadletterqueue.topic.name of connect/welcome-delivery-status.json)
      deliveryAuditDlq: v('DELIVERY_AUDIT_DLQ_TOPIC', 'welcome.delivery.audit.dlq'),
      schemaHistory: v('SCHEMA_HISTORY_TOPIC', '_schema-history.cdc'),
      // heartbeat.interval.ms > 0: Debezium writes __debezium-heartbeat.<topic.prefix>
      heartbeat: v('HEARTBEAT_TOPIC', '__debezium-heartbeat.cdc'),
      // provide.transaction.metadata: Debezium writes each transaction's BEGIN/END to <topic.prefix>.transaction
      transaction: v('TRANSACTION_TOPIC', `${v('SOURCE_TOPIC_PREFIX', 'cdc')}.transaction`),
      connectInternal: ['_connect-configs', '_connect-offsets', '_connect-status'],
      // Apicurio 3.3 also creates its events topic (apicurio.events.kafka.topic) at start
      registry: [
        v('REGISTRY_KAFKASQL_TOPIC', '_registry-journal'),
        v('REGISTRY_KAFKASQL_SNAPSHOTS_TOPIC', '_registry-snapshots'),
        v('REGISTRY_EVENTS_TOPIC', 'registry-events'),
      ],
    },
    groups: {
      augmenter: v('AUGMENTER_GROUP_ID', 'welcome-augmenter'),
      emailer: v('EMAILER_GROUP_ID', 'welcome-emailer'),
      connectWorker: v('CONNECT_GROUP_ID', 'welcome-connect'),
      // Connect names a sink's group connect-<connector>; Debezium's schema-history consumer
      // subscribes as <topic.prefix>-schemahistory when it recovers the history (every restart
      // of the task after the first), so a missing grant shows only then.
      auditSink: v('AUDIT_SINK_GROUP_ID', 'connect-welcome-audit'),
      deliverySink: v('DELIVERY_SINK_GROUP_ID', 'connect-welcome-delivery-status'),
      delivery: v('DELIVERY_STATUS_GROUP_ID', 'welcome-delivery-status'),
      schemaHistory: `${v('SOURCE_TOPIC_PREFIX', 'cdc')}-schemahistory`,
      registryPrefix: v('REGISTRY_KAFKASQL_GROUP_PREFIX', 'apicurio-'),
    },
  };
}

/** Who may do what. Anything not granted here is denied (allow.everyone.if.no.acl.found=false). */
export function pipelineGrants(env: Env): Grant[] {
  const { users: u, topics: t, groups: g } = pipelineNames(env);
  const read: Grant['ops'] = ['READ', 'DESCRIBE'];
  const write: Grant['ops'] = ['WRITE', 'DESCRIBE'];
  return [
    // augmenter: member changes in, augmented members and its dead letters out
    { user: u.augmenter, resource: 'topic', name: t.member, ops: read },
    { user: u.augmenter, resource: 'topic', name: t.augmented, ops: write },
    // DESCRIBE_CONFIGS: at start it checks the DLQ keeps its records (retention), set here at creation
    { user: u.augmenter, resource: 'topic', name: t.augmenterDlq, ops: [...write, 'DESCRIBE_CONFIGS'] },
    { user: u.augmenter, resource: 'group', name: g.augmenter, ops: ['READ', 'DESCRIBE'] },
    // emailer: augmented members in, sent records and its dead letters out
    { user: u.emailer, resource: 'topic', name: t.augmented, ops: read },
    { user: u.emailer, resource: 'topic', name: t.sent, ops: write },
    { user: u.emailer, resource: 'topic', name: t.emailerDlq, ops: [...write, 'DESCRIBE_CONFIGS'] },
    // the member guards' traces: held Welcomes and rule skips
    { user: u.emailer, resource: 'topic', name: t.held, ops: [...write, 'DESCRIBE_CONFIGS'] },
    { user: u.emailer, resource: 'topic', name: t.skipped, ops: [...write, 'DESCRIBE_CONFIGS'] },
    { user: u.emailer, resource: 'group', name: g.emailer, ops: ['READ', 'DESCRIBE'] },
    // delivery status: sent records in, their delivery status (first check and the sweeper's
    // re-checks, same topic) and its dead letters out; its status table is in the database
    { user: u.delivery, resource: 'topic', name: t.sent, ops: read },
    { user: u.delivery, resource: 'topic', name: t.deliveryStatus, ops: write },
    { user: u.delivery, resource: 'topic', name: t.deliveryDlq, ops: [...write, 'DESCRIBE_CONFIGS'] },
    { user: u.delivery, resource: 'group', name: g.delivery, ops: ['READ', 'DESCRIBE'] },
    // Connect: its own internal topics and group, the source's output and schema history,
    // the sink's input, group and dead letters
    ...t.connectInternal.map((name): Grant => ({
      user: u.connect,
      resource: 'topic',
      name,
      ops: ['READ', 'WRITE', 'DESCRIBE', 'DESCRIBE_CONFIGS', 'CREATE'],
    })),
    { user: u.connect, resource: 'group', name: g.connectWorker, ops: ['READ', 'DESCRIBE'] },
    { user: u.connect, resource: 'topic', name: t.member, ops: ['WRITE', 'DESCRIBE', 'DESCRIBE_CONFIGS'] },
    { user: u.connect, resource: 'topic', name: t.heartbeat, ops: ['WRITE', 'DESCRIBE', 'DESCRIBE_CONFIGS'] },
    { user: u.connect, resource: 'topic', name: t.transaction, ops: ['WRITE', 'DESCRIBE', 'DESCRIBE_CONFIGS'] },
    { user: u.connect, resource: 'topic', name: t.schemaHistory, ops: ['READ', 'WRITE', 'DESCRIBE', 'DESCRIBE_CONFIGS'] },
    { user: u.connect, resource: 'group', name: g.schemaHistory, ops: ['READ', 'DESCRIBE'] },
    { user: u.connect, resource: 'topic', name: t.sent, ops: read },
    { user: u.connect, resource: 'group', name: g.auditSink, ops: ['READ', 'DESCRIBE'] },
    // DESCRIBE_CONFIGS on the sinks' DLQs: `connectors register` checks their retention before registering
    { user: u.connect, resource: 'topic', name: t.auditDlq, ops: [...write, 'DESCRIBE_CONFIGS'] },
    // the status sink: delivery statuses into welcome_delivery_status, its dead letters out
    { user: u.connect, resource: 'topic', name: t.deliveryStatus, ops: read },
    { user: u.connect, resource: 'group', name: g.deliverySink, ops: ['READ', 'DESCRIBE'] },
    { user: u.connect, resource: 'topic', name: t.deliveryAuditDlq, ops: [...write, 'DESCRIBE_CONFIGS'] },
    // Debezium reads the brokers' default replication factor before it checks the history topic
    { user: u.connect, resource: 'cluster', name: 'kafka-cluster', ops: ['DESCRIBE_CONFIGS'] },
    // registry (kafkasql storage): its journal and snapshots, a fresh group per start
    ...t.registry.map((name): Grant => ({
      user: u.registry,
      resource: 'topic',
      name,
      ops: ['READ', 'WRITE', 'DESCRIBE', 'DESCRIBE_CONFIGS', 'CREATE'],
    })),
    { user: u.registry, resource: 'group', name: g.registryPrefix, prefixed: true, ops: ['READ', 'DESCRIBE'] },
    { user: u.registry, resource: 'cluster', name: 'kafka-cluster', ops: ['DESCRIBE', 'DESCRIBE_CONFIGS'] },
  ];
}

const RESOURCE = { topic: Res.TOPIC, group: Res.GROUP, cluster: Res.CLUSTER } as const;

export function aclEntries(grants: Grant[]): AclEntry[] {
  return grants.flatMap((gr) =>
    gr.ops.map((op) => ({
      resourceType: RESOURCE[gr.resource],
      resourceName: gr.name,
      resourcePatternType: gr.prefixed ? Pattern.PREFIXED : Pattern.LITERAL,
      principal: `User:${gr.user}`,
      host: '*',
      operation: Op[op],
      permissionType: AclPermissionTypes.ALLOW,
    })),
  );
}

/** Topics the admin creates, with the partitions and replicas the pipeline expects. */
export function pipelineTopics(env: Env): { topic: string; numPartitions: number; configEntries?: { name: string; value: string }[] }[] {
  const { topics: t } = pipelineNames(env);
  const partitions = Number(env.TOPIC_PARTITIONS ?? 6);
  return [
    { topic: t.heartbeat, numPartitions: 1 },
    ...[t.member, t.transaction, t.augmented, t.sent, t.deliveryStatus].map((topic) => ({ topic, numPartitions: partitions })),
    // created with the settings the consumers check at start, so they need no ALTER_CONFIGS
    ...[t.augmenterDlq, t.emailerDlq, t.auditDlq, t.deliveryDlq, t.deliveryAuditDlq].map((topic) => ({
      topic,
      numPartitions: partitions,
      configEntries: entries(dlqTopicConfigs(retentionMs(env, 'DLQ_RETENTION_MS', -1))),
    })),
    { topic: t.held, numPartitions: partitions, configEntries: entries(HELD_TOPIC_CONFIGS) },
    { topic: t.skipped, numPartitions: partitions, configEntries: entries(SKIPPED_TOPIC_CONFIGS) },
    // Debezium's schema history: one partition, kept forever (losing it stops CDC)
    {
      topic: t.schemaHistory,
      numPartitions: 1,
      configEntries: [
        { name: 'retention.ms', value: '-1' },
        { name: 'retention.bytes', value: '-1' },
        { name: 'cleanup.policy', value: 'delete' },
      ],
    },
  ];
}

const entries = (configs: Record<string, string>): { name: string; value: string }[] =>
  Object.entries(configs).map(([name, value]) => ({ name, value }));

const out = (line: string): void => void process.stdout.write(`${line}\n`);

async function apply(env: Env): Promise<void> {
  const { brokers, security } = kafkaFromEnv(env, (p) => readFileSync(p, 'utf8'));
  const kafka = new Kafka({
    clientId: 'welcome-kafka-acls',
    brokers,
    ...kafkaClientOptions(security),
    logLevel: logLevel.NOTHING,
    // It runs right after the nodes answer (make up): a JVM that has just started can take
    // over kafkajs's default 1 s to finish a TLS handshake, and a fresh cluster a few seconds to
    // elect leaders (CI: "Connection timeout" on KAFKA_NODES=3). Wrong credentials still fail at
    // once: SASL authentication errors are not retried.
    connectionTimeout: 10_000,
    retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 8 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = pipelineTopics(env).filter((t) => !existing.has(t.topic));
    if (missing.length > 0)
      await createTopicsWithLeaders(
        admin,
        missing.map((t) => ({ ...t, replicationFactor: Number(env.KAFKA_REPLICATION_FACTOR ?? -1) })),
      );
    const entries = aclEntries(pipelineGrants(env));
    await admin.createAcls({ acl: entries });
    out(
      `kafka-acls: ${missing.length} topic(s) created, ${entries.length} ACL entries in place for ${Object.values(pipelineNames(env).users).join(', ')}`,
    );
  } finally {
    await admin.disconnect();
  }
}

function print(env: Env): void {
  for (const g of pipelineGrants(env))
    out(`  User:${g.user.padEnd(10)} ${g.ops.join(',').padEnd(34)} ${g.resource} ${g.name}${g.prefixed ? '*' : ''}`);
}

if (require.main === module) {
  const command = process.argv[2] ?? 'print';
  (command === 'apply'
    ? apply(process.env)
    : command === 'print'
      ? Promise.resolve(print(process.env))
      : Promise.reject(new Error('usage: kafka-acls print | apply'))
  ).catch((err: unknown) => {
    process.stderr.write(`kafka-acls: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
