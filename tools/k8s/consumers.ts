/**
 * Per consumer stage: a Deployment (the one image, non-root, read-only root filesystem, probes on
 * its health server), its Service and ServiceMonitor (job label = the stage's name, as
 * monitoring/alerts.yml expects), a PodDisruptionBudget, and a KEDA ScaledObject on the lag of
 * its consumer group. CONSUMER_POD holds the values the container test (test/containers) and
 * docker-compose.yml must share with these manifests.
 */
import table from '../../config/kafka-access.json';
import type { GroupKey, TopicKey, UserKey } from '../kafka-access';
import { JOB_LABEL, jobLabels, labels, type Manifest } from './meta';
import type { K8sSettings } from './settings';
import { COST_SOURCE, STAGE_COSTS, stageResources } from './sizing';

export type StageName = 'augmenter' | 'emailer' | 'delivery-status';

/** Port, user, probes and grace every consumer runs with, here, in compose and in the container test. */
export const CONSUMER_POD = {
  httpPort: 9464,
  uid: 1000,
  gid: 1000,
  /** SIGTERM → in-flight chunk committed → exit within 10 s (process.ts gives up at 9 s); compose's stop_grace_period. */
  terminationGraceSeconds: 20,
  probes: {
    startup: { path: '/healthz', periodSeconds: 2, failureThreshold: 30 },
    liveness: { path: '/healthz', periodSeconds: 10, failureThreshold: 3 },
    readiness: { path: '/readyz', periodSeconds: 5, failureThreshold: 3 },
  },
} as const;

interface StageDef {
  name: StageName;
  script: string;
  user: UserKey;
  group: GroupKey;
  input: TopicKey;
  /** Topics the stage names through environment variables (the table's variable names). */
  topics: TopicKey[];
  /** Files of secrets: variable (read as NAME_FILE) → Secret and key. */
  secrets: (s: K8sSettings) => Record<string, { secret: string; key: string }>;
  env: (s: K8sSettings) => Record<string, string>;
  /** Outside the cluster, by port (a NetworkPolicy cannot name a host). */
  egress: ('warehouse' | 'sfmc' | 'database')[];
  /** It works on a timer as well as on records (the delivery-status sweeper): never scaled to zero. */
  timer: boolean;
}

export const STAGES: StageDef[] = [
  {
    name: 'augmenter',
    script: 'dist/consumers/augmenter/main.js',
    user: 'augmenter',
    group: 'augmenter',
    input: 'member',
    topics: ['member', 'augmented', 'augmenterDlq'],
    secrets: (s) => ({ DW_API_TOKEN: { secret: s.secrets.warehouse, key: 'token' } }),
    env: (s) => ({ DW_API_URL: s.dwApiUrl }),
    egress: ['warehouse'],
    timer: false,
  },
  {
    name: 'emailer',
    script: 'dist/consumers/emailer/main.js',
    user: 'emailer',
    group: 'emailer',
    input: 'augmented',
    topics: ['augmented', 'sent', 'emailerDlq', 'held', 'skipped'],
    secrets: (s) => ({
      SFMC_CLIENT_SECRET: { secret: s.secrets.sfmc, key: 'client-secret' },
      EMAILER_DB_PASSWORD: { secret: s.secrets.db, key: 'emailer-password' },
      // The key of the forgotten members' hashes (make forget): the forget tool uses the same.
      WELCOME_FORGET_KEY: { secret: s.secrets.db, key: 'forget-key' },
    }),
    env: (s) => ({ SFMC_AUTH_URL: s.sfmcAuthUrl, SFMC_CLIENT_ID: s.sfmcClientId, EMAILER_DB_USER: s.emailerDbUser }),
    egress: ['sfmc', 'database'],
    timer: false,
  },
  {
    name: 'delivery-status',
    script: 'dist/consumers/delivery-status/main.js',
    user: 'delivery',
    group: 'delivery',
    input: 'sent',
    topics: ['sent', 'deliveryStatus', 'deliveryDlq'],
    secrets: (s) => ({
      SFMC_CLIENT_SECRET: { secret: s.secrets.sfmc, key: 'client-secret' },
      DELIVERY_DB_PASSWORD: { secret: s.secrets.db, key: 'delivery-password' },
    }),
    env: (s) => ({ SFMC_AUTH_URL: s.sfmcAuthUrl, SFMC_CLIENT_ID: s.sfmcClientId, DELIVERY_DB_USER: s.deliveryDbUser }),
    egress: ['sfmc', 'database'],
    timer: true,
  },
];

const SECRETS_DIR = '/var/run/secrets/welcome';
const envName = (row: { env?: string; default: string }, what: string): string => {
  if (!row.env) throw new Error(`config/kafka-access.json: ${what} has no variable`);
  return row.env;
};

/** Every variable a stage's container gets, with file paths for its secrets (NAME_FILE). */
export function stageEnv(stage: StageDef, s: K8sSettings): Record<string, string> {
  return {
    HTTP_PORT: String(CONSUMER_POD.httpPort),
    KAFKA_BOOTSTRAP_SERVERS: s.kafkaBootstrap,
    KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    KAFKA_SASL_USERNAME: s.users[stage.user],
    KAFKA_SASL_PASSWORD_FILE: `${SECRETS_DIR}/kafka-user/password`,
    KAFKA_SSL_CA_FILE: `${SECRETS_DIR}/kafka-ca/ca.crt`,
    REGISTRY_URL: s.registryUrl,
    TOPIC_PARTITIONS: String(s.partitions),
    DLQ_RETENTION_MS: String(s.dlqRetentionMs),
    [envName(table.groups[stage.group], stage.group)]: s.groups[stage.group],
    ...Object.fromEntries(stage.topics.map((t) => [envName(table.topics[t], t), s.topics[t]])),
    ...(stage.egress.includes('database') ? { DB_HOST: s.dbHost, DB_PORT: String(s.dbPort), DB_SSL_CA_FILE: `${SECRETS_DIR}/db-ca/ca.crt` } : {}),
    ...stage.env(s),
    ...Object.fromEntries(Object.entries(stage.secrets(s)).map(([name, ref]) => [`${name}_FILE`, `${SECRETS_DIR}/${volumeOf(name)}/${ref.key}`])),
  };
}

const volumeOf = (variable: string): string => variable.toLowerCase().replace(/_/g, '-');

/** One read-only volume per secret file the stage reads, mounted under SECRETS_DIR/<volume>. */
function secretFiles(stage: StageDef, s: K8sSettings): { volume: string; secret: string; key: string }[] {
  return [
    { volume: 'kafka-user', secret: s.users[stage.user], key: 'password' },
    { volume: 'kafka-ca', secret: s.secrets.kafkaCa, key: 'ca.crt' },
    ...(stage.egress.includes('database') ? [{ volume: 'db-ca', secret: s.secrets.dbCa, key: 'ca.crt' }] : []),
    ...Object.entries(stage.secrets(s)).map(([name, ref]) => ({ volume: volumeOf(name), ...ref })),
  ];
}

const selector = (stage: StageName): Record<string, string> => ({ 'app.kubernetes.io/name': stage });
const probe = (p: { path: string; periodSeconds: number; failureThreshold: number }) => ({
  httpGet: { path: p.path, port: 'http' },
  periodSeconds: p.periodSeconds,
  failureThreshold: p.failureThreshold,
  timeoutSeconds: 2,
});

export function stageDeployment(stage: StageDef, s: K8sSettings): Manifest {
  const files = secretFiles(stage, s);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: stage.name,
      namespace: s.namespace,
      labels: labels(stage.name),
      annotations: { 'welcome/sizing': `${s.designSignupsPerSecond} signups/s; ${COST_SOURCE}` },
    },
    spec: {
      // no replicas: the ScaledObject owns the count (a re-apply must not reset it)
      selector: { matchLabels: selector(stage.name) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: labels(stage.name) },
        spec: {
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: CONSUMER_POD.terminationGraceSeconds,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: CONSUMER_POD.uid,
            runAsGroup: CONSUMER_POD.gid,
            fsGroup: CONSUMER_POD.gid,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: stage.name,
              image: s.consumerImage,
              args: [stage.script],
              ports: [{ name: 'http', containerPort: CONSUMER_POD.httpPort, protocol: 'TCP' }],
              env: Object.entries(stageEnv(stage, s)).map(([name, value]) => ({ name, value })),
              resources: stageResources(STAGE_COSTS[stage.name], s.designSignupsPerSecond),
              startupProbe: probe(CONSUMER_POD.probes.startup),
              livenessProbe: probe(CONSUMER_POD.probes.liveness),
              readinessProbe: probe(CONSUMER_POD.probes.readiness),
              securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: files.map((f) => ({ name: f.volume, mountPath: `${SECRETS_DIR}/${f.volume}`, readOnly: true })),
            },
          ],
          volumes: files.map((f) => ({ name: f.volume, secret: { secretName: f.secret, items: [{ key: f.key, path: f.key }] } })),
        },
      },
    },
  };
}

export function stageService(stage: StageDef, s: K8sSettings): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: stage.name, namespace: s.namespace, labels: { ...labels(stage.name), ...jobLabels(stage.name) } },
    spec: { selector: selector(stage.name), ports: [{ name: 'http', port: CONSUMER_POD.httpPort, targetPort: 'http' }] },
  };
}

export function stageServiceMonitor(stage: StageDef, s: K8sSettings): Manifest {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: stage.name, namespace: s.namespace, labels: labels(stage.name) },
    spec: {
      // job = the Service's job label: augmenter, emailer, delivery-status, as monitoring/alerts.yml names them
      jobLabel: JOB_LABEL,
      selector: { matchLabels: selector(stage.name) },
      endpoints: [{ port: 'http', path: '/metrics', interval: '15s' }],
    },
  };
}

export function stagePdb(stage: StageDef, s: K8sSettings): Manifest {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: stage.name, namespace: s.namespace, labels: labels(stage.name) },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector(stage.name) } },
  };
}

export const KEDA_AUTH = 'welcome-kafka-keda';
/** Lag per replica KEDA aims for: two seconds of the design rate, at least one chunk (500). */
export const lagThreshold = (signupsPerSecond: number): number => Math.max(500, signupsPerSecond * 2);

/**
 * Replicas between 1 and the input topic's partitions (more would sit idle). Minimum 1 for every
 * stage: delivery-status works on a timer (its sweeper re-checks statuses with no new record),
 * and the augmenter and emailer owe a Welcome within seconds of a signup, which KEDA's activation
 * (a poll every 30 s) and a pod start cannot give from zero.
 */
export function stageScaledObject(stage: StageDef, s: K8sSettings): Manifest {
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: stage.name, namespace: s.namespace, labels: labels(stage.name) },
    spec: {
      scaleTargetRef: { name: stage.name },
      minReplicaCount: 1,
      maxReplicaCount: s.partitions,
      triggers: [
        {
          type: 'kafka',
          metadata: {
            bootstrapServers: s.kafkaBootstrap,
            consumerGroup: s.groups[stage.group],
            topic: s.topics[stage.input],
            lagThreshold: String(lagThreshold(s.designSignupsPerSecond)),
            offsetResetPolicy: 'earliest',
          },
          authenticationRef: { name: KEDA_AUTH },
        },
      ],
    },
  };
}

/** KEDA's own principal (config/kafka-access.json: keda) over SCRAM and TLS. */
export function kedaAuthentication(s: K8sSettings): Manifest[] {
  const cm = 'welcome-kafka-keda';
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: cm, namespace: s.namespace, labels: labels('keda') },
      data: { sasl: 'scram_sha512', tls: 'enable', username: s.users.keda },
    },
    {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'TriggerAuthentication',
      metadata: { name: KEDA_AUTH, namespace: s.namespace, labels: labels('keda') },
      spec: {
        configMapTargetRef: ['sasl', 'tls', 'username'].map((key) => ({ parameter: key, name: cm, key })),
        secretTargetRef: [
          { parameter: 'password', name: s.users.keda, key: 'password' },
          { parameter: 'ca', name: s.secrets.kafkaCa, key: 'ca.crt' },
        ],
      },
    },
  ];
}

export function consumerManifests(s: K8sSettings): Manifest[] {
  return [
    ...kedaAuthentication(s),
    ...STAGES.flatMap((stage) => [
      stageDeployment(stage, s),
      stageService(stage, s),
      stageServiceMonitor(stage, s),
      stagePdb(stage, s),
      stageScaledObject(stage, s),
    ]),
  ];
}
