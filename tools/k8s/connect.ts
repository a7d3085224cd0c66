/**
 * The Kafka Connect cluster as a Strimzi KafkaConnect: plugins built from Maven Central into an
 * image (spec.build, the artifacts of deploy/k8s/connect-plugins.lock.json), the native worker's
 * settings (worker.ts), metrics through the JMX exporter with monitoring/jmx/connect.yml, the
 * Kubernetes config providers the connectors' Secret/ConfigMap references need, and the RBAC
 * that lets the worker read exactly those.
 */
import type { PluginLock } from './plugin-lock';
import { DB_TRUSTSTORE_MOUNT, KAFKA_CA_MOUNT } from './connectors';
import { JOB_LABEL, jobLabels, labels, type Manifest } from './meta';
import type { K8sSettings } from './settings';
import type { WorkerSpec } from './worker';

export const CONNECT_METRICS_CONFIGMAP = 'welcome-connect-metrics';
export const CONNECT_REST_PORT = 8083;
/** Strimzi's metrics port on every Kafka and Connect pod (named tcp-prometheus). */
export const STRIMZI_METRICS_PORT = 9404;

/** Each connector plugin folder gets its archive plus the converter jars, as the native stack links them. */
export function buildPlugins(lock: PluginLock): { name: string; artifacts: Record<string, string>[] }[] {
  const converter = lock.converter.map((j) => ({ type: 'jar', url: j.url, sha512sum: j.sha512 }));
  return [
    {
      name: 'debezium-connector-mysql',
      artifacts: [{ type: 'tgz', url: lock.debeziumMysql.url, sha512sum: lock.debeziumMysql.sha512 }, ...converter],
    },
    { name: 'debezium-connector-jdbc', artifacts: [{ type: 'tgz', url: lock.debeziumJdbc.url, sha512sum: lock.debeziumJdbc.sha512 }, ...converter] },
  ];
}

export function kafkaConnect(s: K8sSettings, worker: WorkerSpec, lock: PluginLock, kafkaVersion: string): Manifest {
  return {
    apiVersion: 'kafka.strimzi.io/v1',
    kind: 'KafkaConnect',
    metadata: {
      name: s.connectName,
      namespace: s.namespace,
      labels: labels('connect'),
      // connectors are KafkaConnector resources; the operator reverts anything PUT over REST
      annotations: { 'strimzi.io/use-connector-resources': 'true' },
    },
    spec: {
      version: kafkaVersion,
      replicas: 2,
      bootstrapServers: s.kafkaBootstrap,
      ...worker.fields,
      tls: { trustedCertificates: [{ secretName: s.secrets.kafkaCa, certificate: 'ca.crt' }] },
      authentication: { type: 'scram-sha-512', username: s.users.connect, passwordSecret: { secretName: s.users.connect, password: 'password' } },
      config: {
        ...worker.config,
        // -1 in worker.properties = the brokers' default; spelled out here, where the brokers are not ours
        'config.storage.replication.factor': s.replicas,
        'offset.storage.replication.factor': s.replicas,
        'status.storage.replication.factor': s.replicas,
        'config.providers': 'secrets,configmaps',
        'config.providers.secrets.class': 'io.strimzi.kafka.KubernetesSecretConfigProvider',
        'config.providers.configmaps.class': 'io.strimzi.kafka.KubernetesConfigMapConfigProvider',
      },
      resources: { requests: { cpu: '500m', memory: '1536Mi' }, limits: { memory: '1536Mi' } },
      jvmOptions: {
        '-Xms': '1g',
        '-Xmx': '1g',
        javaSystemProperties: [
          {
            name: 'org.apache.kafka.disallowed.login.modules',
            value: 'com.sun.security.auth.module.JndiLoginModule,org.apache.kafka.common.security.kerberos.KerberosLoginModule',
          },
        ],
      },
      metricsConfig: {
        type: 'jmxPrometheusExporter',
        valueFrom: { configMapKeyRef: { name: CONNECT_METRICS_CONFIGMAP, key: 'connect.yml' } },
      },
      template: {
        pod: {
          metadata: { labels: { ...labels('connect'), ...jobLabels('connect') } },
          volumes: [
            { name: 'kafka-cluster-ca', secret: { secretName: s.secrets.kafkaCa } },
            { name: 'db-truststore', secret: { secretName: s.secrets.dbTruststore } },
          ],
        },
        connectContainer: {
          volumeMounts: [
            { name: 'kafka-cluster-ca', mountPath: KAFKA_CA_MOUNT, readOnly: true },
            { name: 'db-truststore', mountPath: DB_TRUSTSTORE_MOUNT, readOnly: true },
          ],
        },
        podDisruptionBudget: { maxUnavailable: 1 },
      },
      build: {
        output: { type: 'docker', image: s.connectImage, pushSecret: s.connectImagePushSecret },
        plugins: buildPlugins(lock),
      },
    },
  };
}

/** The rules file the native worker's agent loads (monitoring/jmx/connect.yml), as Strimzi reads it. */
export function connectMetricsConfigMap(s: K8sSettings, rules: string): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CONNECT_METRICS_CONFIGMAP, namespace: s.namespace, labels: labels('connect') },
    data: { 'connect.yml': rules },
  };
}

/** get on exactly the Secrets and ConfigMaps the connectors reference, for the worker's service account. */
export function connectConfigProviderRbac(s: K8sSettings, secrets: string[], configMaps: string[]): Manifest[] {
  const name = `${s.connectName}-config-providers`;
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name, namespace: s.namespace, labels: labels('connect') },
      rules: [
        { apiGroups: [''], resources: ['secrets'], resourceNames: secrets, verbs: ['get'] },
        { apiGroups: [''], resources: ['configmaps'], resourceNames: configMaps, verbs: ['get'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name, namespace: s.namespace, labels: labels('connect') },
      // Strimzi names the Connect pods' service account <cluster>-connect
      subjects: [{ kind: 'ServiceAccount', name: `${s.connectName}-connect`, namespace: s.namespace }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    },
  ];
}

/** Scrapes every Connect worker's exporter as job "connect" (the name monitoring/alerts.yml uses). */
export function connectPodMonitor(s: K8sSettings): Manifest {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: { name: 'connect', namespace: s.namespace, labels: labels('connect') },
    spec: {
      jobLabel: JOB_LABEL,
      selector: { matchLabels: { 'strimzi.io/cluster': s.connectName, 'strimzi.io/kind': 'KafkaConnect', ...jobLabels('connect') } },
      podMetricsEndpoints: [{ port: 'tcp-prometheus', path: '/metrics', interval: '15s' }],
    },
  };
}
