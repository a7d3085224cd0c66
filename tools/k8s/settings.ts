/**
 * Settings of a Kubernetes deployment, read once from the environment of `make k8s` (K8S_*),
 * with the names the pipeline uses everywhere else (TOPIC_PARTITIONS, the *_TOPIC and user
 * variables of config/kafka-access.json). Defaults describe the deployment docs/deploying.md
 * walks through: one namespace `welcome` holding the Kafka cluster, Connect and the consumers,
 * Strimzi's cluster operator in `strimzi`, Prometheus (prometheus-operator) in `monitoring`.
 */
import { int, str } from '../../consumers/shared/env';
import { pipelineNames } from '../kafka-access';

type Env = Readonly<Record<string, string | undefined>>;

export interface K8sSettings {
  namespace: string;
  operatorNamespace: string;
  monitoringNamespace: string;
  kafkaCluster: string;
  kafkaBootstrap: string;
  connectName: string;
  /** Where Strimzi pushes the Connect image it builds (spec.build.output.image). */
  connectImage: string;
  connectImagePushSecret: string;
  consumerImage: string;
  connectOverlays: string[];
  partitions: number;
  replicas: number;
  minInsyncReplicas: number;
  dlqRetentionMs: number;
  /** Signups per second the consumers are sized for (sizing.ts). */
  designSignupsPerSecond: number;
  connectorMaxRestarts: number;
  registryUrl: string;
  dbHost: string;
  dbPort: number;
  cdcDbUser: string;
  cdcServerId: string;
  sinkDbUser: string;
  emailerDbUser: string;
  deliveryDbUser: string;
  sfmcAuthUrl: string;
  sfmcClientId: string;
  dwApiUrl: string;
  /** Egress by port: a NetworkPolicy cannot name a host. */
  httpsPort: number;
  users: ReturnType<typeof pipelineNames>['users'];
  groups: ReturnType<typeof pipelineNames>['groups'];
  topics: ReturnType<typeof pipelineNames>['topics'];
  secrets: { db: string; dbTruststore: string; dbCa: string; registryAuth: string; sfmc: string; warehouse: string; kafkaCa: string };
}

export function loadK8sSettings(env: Env): K8sSettings {
  const namespace = str(env, 'K8S_NAMESPACE', 'welcome');
  const kafkaCluster = str(env, 'K8S_KAFKA_CLUSTER', 'welcome-kafka');
  const names = pipelineNames(env);
  // connect/overlays/ folders; `none` for none (production: Kafka over SCRAM/TLS and MySQL over TLS)
  const overlays = str(env, 'K8S_CONNECT_OVERLAYS', 'kafka-secured,db-tls')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o && o !== 'none');
  return {
    namespace,
    operatorNamespace: str(env, 'K8S_OPERATOR_NAMESPACE', 'strimzi'),
    monitoringNamespace: str(env, 'K8S_MONITORING_NAMESPACE', 'monitoring'),
    kafkaCluster,
    kafkaBootstrap: str(env, 'K8S_KAFKA_BOOTSTRAP', `${kafkaCluster}-kafka-bootstrap:9093`),
    connectName: str(env, 'K8S_CONNECT_NAME', 'welcome-connect'),
    connectImage: str(env, 'K8S_CONNECT_IMAGE', 'registry.example.com/welcome/connect:latest'),
    connectImagePushSecret: str(env, 'K8S_CONNECT_IMAGE_PUSH_SECRET', 'welcome-image-push'),
    consumerImage: str(env, 'K8S_CONSUMER_IMAGE', 'registry.example.com/welcome/consumers:0.1.0'),
    connectOverlays: overlays,
    partitions: int(env, 'TOPIC_PARTITIONS', 6, 1, 1000),
    replicas: int(env, 'K8S_REPLICATION_FACTOR', 3, 1, 10),
    minInsyncReplicas: int(env, 'K8S_MIN_INSYNC_REPLICAS', 2, 1, 10),
    dlqRetentionMs: int(env, 'DLQ_RETENTION_MS', -1, -1, Number.MAX_SAFE_INTEGER),
    designSignupsPerSecond: int(env, 'K8S_DESIGN_SIGNUPS_PER_S', 200, 1, 100_000),
    connectorMaxRestarts: int(env, 'K8S_CONNECTOR_MAX_RESTARTS', 10, 1, 1000),
    registryUrl: str(env, 'K8S_REGISTRY_URL', 'http://welcome-registry:8080'),
    dbHost: str(env, 'K8S_DB_HOST', 'mysql.example.internal'),
    dbPort: int(env, 'K8S_DB_PORT', 3306, 1, 65535),
    cdcDbUser: str(env, 'CDC_DB_USER', 'debezium'),
    cdcServerId: str(env, 'CDC_SERVER_ID', '184054'),
    sinkDbUser: str(env, 'SINK_DB_USER', 'welcome_audit'),
    emailerDbUser: str(env, 'EMAILER_DB_USER', 'welcome_emailer'),
    deliveryDbUser: str(env, 'DELIVERY_DB_USER', 'welcome_delivery'),
    sfmcAuthUrl: str(env, 'K8S_SFMC_AUTH_URL', 'https://example.auth.marketingcloudapis.com'),
    sfmcClientId: str(env, 'K8S_SFMC_CLIENT_ID', 'welcome-pipeline'),
    dwApiUrl: str(env, 'K8S_DW_API_URL', 'https://dw-keys.example.internal'),
    httpsPort: int(env, 'K8S_HTTPS_EGRESS_PORT', 443, 1, 65535),
    users: names.users,
    groups: names.groups,
    topics: names.topics,
    secrets: {
      db: 'welcome-db',
      dbTruststore: 'welcome-db-truststore',
      dbCa: 'welcome-db-ca',
      registryAuth: 'welcome-registry-auth',
      sfmc: 'welcome-sfmc',
      warehouse: 'welcome-warehouse',
      kafkaCa: `${kafkaCluster}-cluster-ca-cert`,
    },
  };
}
