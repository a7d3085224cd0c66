/**
 * Kafka-side resources: the topics the admin creates and one user per principal, both from
 * config/kafka-access.json (through tools/kafka-access.ts, as tools/kafka-acls.ts applies them
 * locally), and a KRaft cluster for a namespace that has none (the platform's own cluster
 * replaces it: set K8S_KAFKA_CLUSTER and K8S_KAFKA_BOOTSTRAP).
 */
import type { Grant, TopicToCreate } from '../kafka-access';
import { JOB_LABEL, jobLabels, labels, type Manifest } from './meta';
import type { K8sSettings } from './settings';

export const KAFKA_METRICS_CONFIGMAP = 'welcome-kafka-metrics';

/** A topic name as a Kubernetes object name (lower case, [a-z0-9.-], alphanumeric at both ends). */
export const objectName = (topic: string): string =>
  topic
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');

export function kafkaTopics(topics: TopicToCreate[], s: K8sSettings): Manifest[] {
  const names = new Set<string>();
  return topics.map((t) => {
    const name = objectName(t.topic);
    if (names.has(name)) throw new Error(`topics ${t.topic} and another map to the same KafkaTopic name ${name}`);
    names.add(name);
    return {
      apiVersion: 'kafka.strimzi.io/v1',
      kind: 'KafkaTopic',
      metadata: { name, namespace: s.namespace, labels: { ...labels('kafka'), 'strimzi.io/cluster': s.kafkaCluster } },
      spec: {
        topicName: t.topic,
        partitions: t.numPartitions,
        replicas: s.replicas,
        config: {
          'min.insync.replicas': s.minInsyncReplicas,
          ...Object.fromEntries((t.configEntries ?? []).map((e) => [e.name, /^-?\d+$/.test(e.value) ? Number(e.value) : e.value])),
        },
      },
    };
  });
}

/** kafkajs/CLI operation names → Strimzi's. */
export const STRIMZI_OPERATION: Record<Grant['ops'][number], string> = {
  READ: 'Read',
  WRITE: 'Write',
  DESCRIBE: 'Describe',
  DESCRIBE_CONFIGS: 'DescribeConfigs',
  CREATE: 'Create',
  ALTER_CONFIGS: 'AlterConfigs',
};

export function kafkaUsers(grants: Grant[], s: K8sSettings): Manifest[] {
  const users = [...new Set(grants.map((g) => g.user))];
  return users.map((user) => ({
    apiVersion: 'kafka.strimzi.io/v1',
    kind: 'KafkaUser',
    metadata: { name: user, namespace: s.namespace, labels: { ...labels('kafka'), 'strimzi.io/cluster': s.kafkaCluster } },
    spec: {
      authentication: { type: 'scram-sha-512' },
      authorization: {
        type: 'simple',
        acls: grants
          .filter((g) => g.user === user)
          .map((g) => ({
            resource:
              g.resource === 'cluster' ? { type: 'cluster' } : { type: g.resource, name: g.name, patternType: g.prefixed ? 'prefix' : 'literal' },
            operations: g.ops.map((op) => STRIMZI_OPERATION[op]),
            host: '*',
          })),
      },
    },
  }));
}

/** A three-node KRaft cluster (each node broker and controller), SCRAM over TLS, ACLs, the pipeline's durability defaults. */
export function kafkaCluster(s: K8sSettings, kafkaVersion: string): Manifest[] {
  return [
    {
      apiVersion: 'kafka.strimzi.io/v1',
      kind: 'KafkaNodePool',
      metadata: { name: 'dual-role', namespace: s.namespace, labels: { ...labels('kafka'), 'strimzi.io/cluster': s.kafkaCluster } },
      spec: {
        replicas: 3,
        roles: ['controller', 'broker'],
        storage: { type: 'jbod', volumes: [{ id: 0, type: 'persistent-claim', size: '100Gi', deleteClaim: false, kraftMetadata: 'shared' }] },
        resources: { requests: { cpu: '1', memory: '4Gi' }, limits: { memory: '4Gi' } },
        // the job label only: our default-deny (welcome.pipeline/component) must not select the brokers
        template: { pod: { metadata: { labels: jobLabels('kafka') } } },
      },
    },
    {
      apiVersion: 'kafka.strimzi.io/v1',
      kind: 'Kafka',
      metadata: { name: s.kafkaCluster, namespace: s.namespace, labels: labels('kafka') },
      spec: {
        kafka: {
          version: kafkaVersion,
          listeners: [{ name: 'tls', port: 9093, type: 'internal', tls: true, authentication: { type: 'scram-sha-512' } }],
          authorization: { type: 'simple' },
          config: {
            'default.replication.factor': s.replicas,
            'min.insync.replicas': s.minInsyncReplicas,
            'offsets.topic.replication.factor': s.replicas,
            'transaction.state.log.replication.factor': s.replicas,
            'transaction.state.log.min.isr': s.minInsyncReplicas,
            'unclean.leader.election.enable': false,
            'auto.create.topics.enable': false,
          },
          metricsConfig: { type: 'jmxPrometheusExporter', valueFrom: { configMapKeyRef: { name: KAFKA_METRICS_CONFIGMAP, key: 'kafka.yml' } } },
        },
        entityOperator: { topicOperator: {}, userOperator: {} },
      },
    },
  ];
}

export function kafkaMetricsConfigMap(s: K8sSettings, rules: string): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: KAFKA_METRICS_CONFIGMAP, namespace: s.namespace, labels: labels('kafka') },
    data: { 'kafka.yml': rules },
  };
}

/** Scrapes every broker's exporter as job "kafka". */
export function kafkaPodMonitor(s: K8sSettings): Manifest {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: { name: 'kafka', namespace: s.namespace, labels: labels('kafka') },
    spec: {
      jobLabel: JOB_LABEL,
      selector: { matchLabels: { 'strimzi.io/cluster': s.kafkaCluster, 'strimzi.io/kind': 'Kafka', ...jobLabels('kafka') } },
      podMetricsEndpoints: [{ port: 'tcp-prometheus', path: '/metrics', interval: '15s' }],
    },
  };
}
