/**
 * Least privilege on Kafka: applies config/kafka-access.json (read by ./kafka-access.ts, the
 * same table tools/k8s renders as KafkaUser/KafkaTopic) as the admin principal.
 *   node dist/tools/kafka-acls.js print     the ACL table for these settings
 *   node dist/tools/kafka-acls.js apply     create missing topics, then the ACLs (idempotent)
 * Topic, group and user names come from the same variables the components read
 * (MEMBER_TOPIC, AUGMENTER_GROUP_ID, ...: the table names them); the connection is the admin's own
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
import { createTopicsWithLeaders } from '../consumers/shared/kafka';
import { pipelineGrants, pipelineNames, pipelineTopics, type Grant } from './kafka-access';

type Env = Readonly<Record<string, string | undefined>>;
export { pipelineGrants, pipelineNames, pipelineTopics, type Grant } from './kafka-access';

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
        missing.map(({ key: _key, ...t }) => ({ ...t, replicationFactor: Number(env.KAFKA_REPLICATION_FACTOR ?? -1) })),
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
