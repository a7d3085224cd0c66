/**
 * The Apicurio registry (the version stack/pom.xml pins for the native stack) with kafkasql
 * storage as principal `registry`, configured as the native stack configures it
 * (stack/bin/stack start_registry): apicurio.kafka.common.* carries SCRAM over TLS to its
 * producer, consumer and admin client; Quarkus reads each property from its environment name.
 */
import { labels, type Manifest } from './meta';
import type { K8sSettings } from './settings';

export const REGISTRY_PORT = 8080;
const CA_DIR = '/var/run/secrets/welcome/kafka-ca';

export function registryManifests(s: K8sSettings, version: string): Manifest[] {
  const selector = { 'app.kubernetes.io/name': 'registry' };
  const env: Record<string, string> = {
    APICURIO_STORAGE_KIND: 'kafkasql',
    APICURIO_KAFKASQL_BOOTSTRAP_SERVERS: s.kafkaBootstrap,
    APICURIO_KAFKASQL_TOPIC: s.topics.registryJournal,
    APICURIO_KAFKASQL_SNAPSHOTS_TOPIC: s.topics.registrySnapshots,
    APICURIO_KAFKASQL_TOPIC_MIN_INSYNC_REPLICAS: String(s.minInsyncReplicas),
    APICURIO_KAFKA_COMMON_SECURITY_PROTOCOL: 'SASL_SSL',
    APICURIO_KAFKA_COMMON_SASL_MECHANISM: 'SCRAM-SHA-512',
    APICURIO_KAFKA_COMMON_SSL_TRUSTSTORE_TYPE: 'PEM',
    APICURIO_KAFKA_COMMON_SSL_TRUSTSTORE_LOCATION: `${CA_DIR}/ca.crt`,
    APICURIO_KAFKA_COMMON_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: 'https',
    QUARKUS_HTTP_PORT: String(REGISTRY_PORT),
  };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'welcome-registry', namespace: s.namespace, labels: labels('registry') },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: labels('registry') },
          spec: {
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'registry',
                image: `apicurio/apicurio-registry:${version}`,
                ports: [{ name: 'http', containerPort: REGISTRY_PORT }],
                env: [
                  ...Object.entries(env).map(([name, value]) => ({ name, value })),
                  // the KafkaUser's Secret holds the whole JAAS line
                  {
                    name: 'APICURIO_KAFKA_COMMON_SASL_JAAS_CONFIG',
                    valueFrom: { secretKeyRef: { name: s.users.registry, key: 'sasl.jaas.config' } },
                  },
                ],
                readinessProbe: { httpGet: { path: '/apis/ccompat/v7/subjects', port: 'http' }, periodSeconds: 10 },
                livenessProbe: {
                  httpGet: { path: '/apis/ccompat/v7/subjects', port: 'http' },
                  periodSeconds: 20,
                  failureThreshold: 6,
                  initialDelaySeconds: 60,
                },
                resources: { requests: { cpu: '200m', memory: '768Mi' }, limits: { memory: '768Mi' } },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                volumeMounts: [{ name: 'kafka-ca', mountPath: CA_DIR, readOnly: true }],
              },
            ],
            volumes: [{ name: 'kafka-ca', secret: { secretName: s.secrets.kafkaCa } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'welcome-registry', namespace: s.namespace, labels: labels('registry') },
      spec: { selector, ports: [{ name: 'http', port: REGISTRY_PORT, targetPort: 'http' }] },
    },
  ];
}

/** `make schemas` as a one-shot: subject compatibility levels, then the owned schemas (idempotent). */
export function schemasJob(s: K8sSettings): Manifest {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'welcome-schemas', namespace: s.namespace, labels: labels('schemas') },
    spec: {
      backoffLimit: 6,
      template: {
        metadata: { labels: labels('schemas') },
        spec: {
          restartPolicy: 'OnFailure',
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'schemas',
              image: s.consumerImage,
              args: ['dist/tools/schemas.js', 'register'],
              env: [{ name: 'REGISTRY_URL', value: s.registryUrl }],
              securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              resources: { requests: { cpu: '50m', memory: '192Mi' }, limits: { memory: '192Mi' } },
            },
          ],
        },
      },
    },
  };
}
