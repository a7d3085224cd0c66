/**
 * NetworkPolicies: every pod of the pipeline (label welcome.pipeline/component) is denied all
 * traffic, then each gets the flows it needs: DNS; Kafka's TLS listener; the registry; the
 * database, SFMC and the warehouse by port (a policy cannot name a host); Prometheus' scrapes
 * from the monitoring namespace; Connect's REST API from the Strimzi operator's namespace and
 * between Connect's own workers (they forward requests to the leader) only. The Kafka cluster's
 * pods and the pod that builds the Connect image are Strimzi's, with the policies Strimzi writes
 * for them (none of ours selects them).
 */
import { CONNECT_REST_PORT, STRIMZI_METRICS_PORT } from './connect';
import { CONSUMER_POD, STAGES } from './consumers';
import { COMPONENT_LABEL, labels, type Manifest } from './meta';
import { REGISTRY_PORT } from './registry';
import type { K8sSettings } from './settings';

type Peer = Record<string, unknown>;
type Rule = { to?: Peer[]; from?: Peer[]; ports: { port: number | string; protocol: string }[] };

const tcp = (port: number): { port: number; protocol: string } => ({ port, protocol: 'TCP' });
const ns = (name: string): Peer => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': name } } });
const pods = (match: Record<string, string>): Peer => ({ podSelector: { matchLabels: match } });
/** Anywhere outside the cluster's pod network: the destinations we know only by port. */
const outside: Peer = { ipBlock: { cidr: '0.0.0.0/0' } };

function policy(s: K8sSettings, name: string, podSelector: Peer, ingress: Rule[], egress: Rule[]): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: s.namespace, labels: labels('network') },
    spec: { podSelector, policyTypes: ['Ingress', 'Egress'], ingress, egress },
  };
}

export function networkPolicies(s: K8sSettings): Manifest[] {
  const dns: Rule = { to: [{ ...ns('kube-system'), ...pods({ 'k8s-app': 'kube-dns' }) }], ports: [{ port: 53, protocol: 'UDP' }, tcp(53)] };
  const kafka: Rule = { to: [pods({ 'strimzi.io/cluster': s.kafkaCluster, 'strimzi.io/kind': 'Kafka' })], ports: [tcp(9093)] };
  const registry: Rule = { to: [pods({ 'app.kubernetes.io/name': 'registry' })], ports: [tcp(REGISTRY_PORT)] };
  const database: Rule = { to: [outside], ports: [tcp(s.dbPort)] };
  const https: Rule = { to: [outside], ports: [tcp(s.httpsPort)] };
  const scrape = (port: number | string): Rule => ({
    from: [ns(s.monitoringNamespace)],
    ports: [typeof port === 'number' ? tcp(port) : { port, protocol: 'TCP' }],
  });
  const connectPods = { 'strimzi.io/cluster': s.connectName, 'strimzi.io/kind': 'KafkaConnect' };
  return [
    policy(s, 'default-deny', { matchExpressions: [{ key: COMPONENT_LABEL, operator: 'Exists' }] }, [], [dns]),
    ...STAGES.map((stage) =>
      policy(
        s,
        stage.name,
        { matchLabels: { 'app.kubernetes.io/name': stage.name } },
        [scrape(CONSUMER_POD.httpPort)],
        [
          kafka,
          registry,
          ...(stage.egress.includes('database') ? [database] : []),
          ...(stage.egress.some((e) => e === 'sfmc' || e === 'warehouse') ? [https] : []),
        ],
      ),
    ),
    policy(
      s,
      'connect',
      { matchLabels: connectPods },
      [
        // the REST API: the operator manages connectors through it; workers forward to their leader
        {
          from: [{ ...ns(s.operatorNamespace), ...pods({ 'strimzi.io/kind': 'cluster-operator' }) }, pods(connectPods)],
          ports: [tcp(CONNECT_REST_PORT)],
        },
        scrape(STRIMZI_METRICS_PORT),
      ],
      [
        kafka,
        registry,
        database,
        // the Kubernetes config providers read Secrets and ConfigMaps from the API server
        { to: [outside], ports: [tcp(443), tcp(6443)] },
      ],
    ),
    policy(
      s,
      'registry',
      { matchLabels: { 'app.kubernetes.io/name': 'registry' } },
      [
        {
          from: [
            ...STAGES.map((st) => pods({ 'app.kubernetes.io/name': st.name })),
            pods(connectPods),
            pods({ 'app.kubernetes.io/name': 'schemas' }),
          ],
          ports: [tcp(REGISTRY_PORT)],
        },
      ],
      [kafka],
    ),
    policy(s, 'schemas', { matchLabels: { 'app.kubernetes.io/name': 'schemas' } }, [], [registry]),
  ];
}
