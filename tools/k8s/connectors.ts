/**
 * One KafkaConnector per connect/*.json, composed as `make connectors` composes it
 * (tools/connect-defs.ts: the file, its flavour, the overlays), with each `${env:NAME}` replaced
 * one to one by a reference to a Kubernetes Secret or ConfigMap key, which Strimzi's
 * KubernetesSecretConfigProvider / KubernetesConfigMapConfigProvider resolve in the worker.
 * toEnvRefs() is the inverse: a test applies it and gets back exactly what `make connectors` PUTs.
 */
import { loadConnectorDefs, type ConnectorDef, type Flavour } from '../connect-defs';
import type { K8sSettings } from './settings';
import { labels, type Manifest } from './meta';

/** Where a connector variable lives on Kubernetes: a Secret key, or a key of our ConfigMap. */
export type EnvSource = { secret: string; key: string } | { configMap: string; key: string; value: string };

export const CONNECTOR_CONFIGMAP = 'welcome-connectors';
/** The mount points (KafkaConnect template volumes; Strimzi allows additional volumes under /mnt). */
export const KAFKA_CA_MOUNT = '/mnt/kafka-cluster-ca';
export const DB_TRUSTSTORE_MOUNT = '/mnt/db-truststore';

/** Every ${env:…} a connector file, flavour or overlay may name, and its source on Kubernetes. */
export function connectorEnv(s: K8sSettings): Record<string, EnvSource> {
  const cm = (value: string) => (key: string) => ({ configMap: CONNECTOR_CONFIGMAP, key, value });
  const plain: Record<string, (key: string) => EnvSource> = {
    DB_HOST: cm(s.dbHost),
    DB_PORT: cm(String(s.dbPort)),
    CDC_DB_USER: cm(s.cdcDbUser),
    CDC_SERVER_ID: cm(s.cdcServerId),
    SINK_DB_USER: cm(s.sinkDbUser),
    KAFKA_BOOTSTRAP_SERVERS: cm(s.kafkaBootstrap),
    TOPIC_PARTITIONS: cm(String(s.partitions)),
    DLQ_REPLICATION_FACTOR: cm(String(s.replicas)),
    REGISTRY_URL: cm(s.registryUrl),
    CONNECTOR_KAFKA_SECURITY_PROTOCOL: cm('SASL_SSL'),
    CONNECTOR_KAFKA_SASL_MECHANISM: cm('SCRAM-SHA-512'),
    CONNECTOR_KAFKA_SSL_CA_FILE: cm(`${KAFKA_CA_MOUNT}/ca.crt`),
    DB_SSL_TRUSTSTORE: cm(`${DB_TRUSTSTORE_MOUNT}/truststore.p12`),
    DB_SSL_CA_FILE: cm(`${DB_TRUSTSTORE_MOUNT}/ca.crt`),
  };
  const secrets: Record<string, EnvSource> = {
    CDC_DB_PASSWORD: { secret: s.secrets.db, key: 'cdc-password' },
    SINK_DB_PASSWORD: { secret: s.secrets.db, key: 'sink-password' },
    DB_SSL_TRUSTSTORE_PASSWORD: { secret: s.secrets.dbTruststore, key: 'password' },
    // the KafkaUser's own Secret: Strimzi's User Operator writes sasl.jaas.config into it
    CONNECTOR_KAFKA_SASL_JAAS_CONFIG: { secret: s.users.connect, key: 'sasl.jaas.config' },
    REGISTRY_USERNAME: { secret: s.secrets.registryAuth, key: 'username' },
    REGISTRY_PASSWORD: { secret: s.secrets.registryAuth, key: 'password' },
  };
  return { ...Object.fromEntries(Object.entries(plain).map(([name, f]) => [name, f(name)])), ...secrets };
}

const providerRef = (ns: string, src: EnvSource): string =>
  'secret' in src ? `\${secrets:${ns}/${src.secret}:${src.key}}` : `\${configmaps:${ns}/${src.configMap}:${src.key}}`;

/** ${env:NAME} → its Secret/ConfigMap reference; an unmapped name is an error naming it. */
export function toProviderRefs(config: Record<string, string>, env: Record<string, EnvSource>, ns: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [
      key,
      value.replace(/\$\{env:([^}]+)\}/g, (_m, name: string) => {
        const src = env[name];
        if (!src) throw new Error(`${key}: \${env:${name}} has no Secret or ConfigMap on Kubernetes (tools/k8s/connectors.ts connectorEnv)`);
        return providerRef(ns, src);
      }),
    ]),
  );
}

/** The inverse of toProviderRefs, for the equality test. */
export function toEnvRefs(config: Record<string, string>, env: Record<string, EnvSource>, ns: string): Record<string, string> {
  const back = new Map(Object.entries(env).map(([name, src]) => [providerRef(ns, src), `\${env:${name}}`]));
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [key, value.replace(/\$\{(?:secrets|configmaps):[^}]+\}/g, (ref) => back.get(ref) ?? ref)]),
  );
}

/** The definitions `make connectors` PUTs with CONNECT_FLAVOUR=mysql and these overlays. */
export function connectorDefs(connectDir: string, s: K8sSettings): ConnectorDef[] {
  return loadConnectorDefs(connectDir, 'mysql' as Flavour, s.connectOverlays);
}

export function kafkaConnectors(defs: ConnectorDef[], s: K8sSettings): Manifest[] {
  const env = connectorEnv(s);
  return defs.map((def) => {
    const { 'connector.class': cls, 'tasks.max': tasks, ...config } = def.config;
    if (!cls) throw new Error(`${def.name}: no connector.class`);
    return {
      apiVersion: 'kafka.strimzi.io/v1',
      kind: 'KafkaConnector',
      metadata: { name: def.name, namespace: s.namespace, labels: { ...labels('connect'), 'strimzi.io/cluster': s.connectName } },
      spec: {
        class: cls,
        tasksMax: Number(tasks ?? '1'),
        // Connect leaves a FAILED task FAILED; the operator restarts it (this replaces our watchdog here,
        // which would need the REST API that only the operator may reach): at once, then after 2, 6, 12… min
        autoRestart: { enabled: true, maxRestarts: s.connectorMaxRestarts },
        config: toProviderRefs(config, env, s.namespace),
      },
    };
  });
}

/** The ConfigMap of plain connector settings, and the names of the Secrets connectors read. */
export function connectorSources(defs: ConnectorDef[], s: K8sSettings): { configMap: Manifest; secrets: string[]; configMaps: string[] } {
  const env = connectorEnv(s);
  const used = new Set(defs.flatMap((d) => Object.values(d.config).flatMap((v) => [...v.matchAll(/\$\{env:([^}]+)\}/g)].map((m) => m[1] as string))));
  const data: Record<string, string> = {};
  const secrets = new Set<string>();
  for (const name of [...used].sort()) {
    const src = env[name];
    if (!src) throw new Error(`\${env:${name}} has no Secret or ConfigMap on Kubernetes`);
    if ('secret' in src) secrets.add(src.secret);
    else data[src.key] = src.value;
  }
  return {
    configMap: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: CONNECTOR_CONFIGMAP, namespace: s.namespace, labels: labels('connect') },
      data,
    },
    secrets: [...secrets].sort(),
    configMaps: [CONNECTOR_CONFIGMAP],
  };
}
