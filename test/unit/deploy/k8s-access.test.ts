import { AclOperationTypes, AclResourceTypes, ResourcePatternTypes } from 'kafkajs';
import { aclEntries, pipelineGrants, pipelineTopics } from '../../../tools/kafka-acls';
import { STRIMZI_OPERATION } from '../../../tools/k8s/kafka';
import { rendered, spec } from './k8s-render';

const OPERATION_OF = Object.fromEntries(Object.entries(STRIMZI_OPERATION).map(([ours, strimzi]) => [strimzi, ours]));
const nameOf = (enumeration: Record<string, unknown>, value: number): string =>
  Object.entries(enumeration).find(([, v]) => v === value)?.[0] ?? String(value);

/** One line per ACL entry, the same shape for both sides. */
const key = (principal: string, type: string, name: string, pattern: string, op: string): string => `${principal} ${type}:${name} ${pattern} ${op}`;

describe('KafkaUsers and KafkaTopics from config/kafka-access.json', () => {
  const env = { TOPIC_PARTITIONS: '6' };
  const { of, one, s } = rendered(env);

  it('give each principal exactly the ACLs tools/kafka-acls.ts applies', () => {
    // what kafka-acls sends to the broker (kafkajs AclEntry), read back as names
    const applied = aclEntries(pipelineGrants(env)).map((e) =>
      key(
        e.principal,
        nameOf(AclResourceTypes, e.resourceType).toLowerCase(),
        e.resourceName,
        e.resourcePatternType === ResourcePatternTypes.PREFIXED ? 'prefix' : 'literal',
        nameOf(AclOperationTypes, e.operation),
      ),
    );
    const kafkajsOp = (strimzi: string): string => OPERATION_OF[strimzi] ?? `unknown ${strimzi}`;
    const rendered = of('KafkaUser').flatMap((u) =>
      (spec(u).authorization.acls as { resource: { type: string; name?: string; patternType?: string }; operations: string[] }[]).flatMap((acl) =>
        acl.operations.map((op) =>
          key(
            `User:${u.metadata.name}`,
            acl.resource.type,
            acl.resource.name ?? 'kafka-cluster',
            acl.resource.patternType ?? 'literal',
            kafkajsOp(op),
          ),
        ),
      ),
    );
    expect(rendered.sort()).toEqual(applied.sort());
    for (const u of of('KafkaUser')) expect(spec(u).authentication).toEqual({ type: 'scram-sha-512' });
  });

  it("include KEDA's own principal, which may only describe the consumers' inputs and groups", () => {
    const keda = one('KafkaUser', s.users.keda);
    const acls = spec(keda).authorization.acls as { resource: { type: string; name: string }; operations: string[] }[];
    expect(new Set(acls.flatMap((a) => a.operations))).toEqual(new Set(['Describe']));
    expect(acls.map((a) => `${a.resource.type}:${a.resource.name}`).sort()).toEqual(
      [s.topics.member, s.topics.augmented, s.topics.sent]
        .map((t) => `topic:${t}`)
        .concat([s.groups.augmenter, s.groups.emailer, s.groups.delivery].map((g) => `group:${g}`))
        .sort(),
    );
  });

  it('create the topics kafka-acls creates, with its partitions and settings, replicated with min.insync.replicas', () => {
    const topics = of('KafkaTopic').map((t) => spec(t));
    expect(topics.map((t) => t.topicName)).toEqual(pipelineTopics(env).map((t) => t.topic));
    for (const t of pipelineTopics(env)) {
      const k = topics.find((x) => x.topicName === t.topic);
      expect(k.partitions).toBe(t.numPartitions);
      expect(k.replicas).toBe(s.replicas);
      expect(k.config['min.insync.replicas']).toBe(s.minInsyncReplicas);
      for (const e of t.configEntries ?? [])
        expect({ topic: t.topic, [e.name]: String(k.config[e.name]) }).toEqual({ topic: t.topic, [e.name]: e.value });
    }
    // dead letters stay until replayed; the schema history forever
    expect(topics.find((t) => t.topicName === s.topics.emailerDlq).config['retention.ms']).toBe(-1);
    expect(topics.find((t) => t.topicName === s.topics.schemaHistory).config['retention.bytes']).toBe(-1);
  });
});
