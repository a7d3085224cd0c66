/**
 * The consumer Deployments, and the values they share with the Dockerfile, docker-compose.yml
 * and the container test (CONSUMER_POD): port, user, probes, grace period.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CONSUMER_POD, lagThreshold, STAGES } from '../../../tools/k8s/consumers';
import { COMPONENT_LABEL } from '../../../tools/k8s/meta';
import { STAGE_COSTS, stageResources } from '../../../tools/k8s/sizing';
import { LOCKDOWN_FLAGS } from '../../containers/podman';
import { rendered, ROOT, spec } from './k8s-render';

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<
    string,
    {
      environment?: Record<string, unknown>;
      stop_grace_period?: string;
      healthcheck?: { test: string[] };
      read_only?: boolean;
      cap_drop?: string[];
      security_opt?: string[];
    }
  >;
};

describe('consumer Deployments', () => {
  const { one, s } = rendered();

  it.each(STAGES.map((st) => [st.name]))('%s: non-root, read-only root filesystem, no privilege escalation, no service account token', (name) => {
    const pod = spec(one('Deployment', name)).template.spec;
    const [c] = pod.containers;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: CONSUMER_POD.uid, runAsGroup: CONSUMER_POD.gid });
    expect(c.securityContext).toEqual({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(pod.automountServiceAccountToken).toBe(false);
    // nothing writable mounted: secrets only, read-only
    for (const v of pod.volumes) expect(Object.keys(v).sort()).toEqual(['name', 'secret']);
    for (const m of c.volumeMounts) expect(m.readOnly).toBe(true);
  });

  it.each(STAGES.map((st) => [st.name]))('%s: probes on its health server at HTTP_PORT, set explicitly, and the grace period of compose', (name) => {
    const pod = spec(one('Deployment', name)).template.spec;
    const [c] = pod.containers;
    const env = Object.fromEntries((c.env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    expect(env.HTTP_PORT).toBe(String(CONSUMER_POD.httpPort));
    expect(c.ports).toEqual([{ name: 'http', containerPort: CONSUMER_POD.httpPort, protocol: 'TCP' }]);
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(pod.terminationGracePeriodSeconds).toBe(CONSUMER_POD.terminationGraceSeconds);
    const service = compose.services[name];
    expect(String(service?.environment?.HTTP_PORT)).toBe(String(CONSUMER_POD.httpPort));
    expect(service?.stop_grace_period).toBe(`${CONSUMER_POD.terminationGraceSeconds}s`);
    expect(service?.healthcheck?.test.join(' ')).toContain(`127.0.0.1:${CONSUMER_POD.httpPort}/healthz`);
    // compose runs them as locked down as the manifests and the container test do
    expect({ read_only: service?.read_only, cap_drop: service?.cap_drop, security_opt: service?.security_opt }).toEqual({
      read_only: true,
      cap_drop: ['ALL'],
      security_opt: ['no-new-privileges:true'],
    });
    // and the container test runs the image the same way (podman's flags for each compose setting)
    const flags = LOCKDOWN_FLAGS.join(' ');
    expect(flags).toContain('--read-only --read-only-tmpfs=false');
    expect(flags).toContain(`--cap-drop ${service?.cap_drop?.join(',')}`);
    expect(flags).toContain(`--security-opt ${service?.security_opt?.[0]?.replace(/:true$/, '')}`);
  });

  it('runs as the user the image has: USER node in the Dockerfile, uid/gid 1000 in the base image made here', () => {
    expect(read('Dockerfile')).toMatch(/^USER node$/m);
    expect(read('Dockerfile')).toContain(`process.env.HTTP_PORT||${CONSUMER_POD.httpPort}`);
    expect(read('test/containers/images.sh')).toMatch(new RegExp(`useradd --uid ${CONSUMER_POD.uid} --gid node`));
    expect(read('test/containers/images.sh')).toMatch(new RegExp(`groupadd --gid ${CONSUMER_POD.gid} node`));
  });

  it('scales each stage on its consumer group lag, up to its input topic partitions, never below one', () => {
    for (const stage of STAGES) {
      const so = spec(one('ScaledObject', stage.name));
      expect(so.scaleTargetRef).toEqual({ name: stage.name });
      expect(so.maxReplicaCount).toBe(s.partitions);
      expect(so.minReplicaCount).toBeGreaterThanOrEqual(stage.timer ? 1 : 0);
      expect(so.triggers[0].metadata).toMatchObject({
        consumerGroup: s.groups[stage.group],
        topic: s.topics[stage.input],
        lagThreshold: String(lagThreshold(s.designSignupsPerSecond)),
      });
      expect(so.triggers[0].authenticationRef).toEqual({ name: 'welcome-kafka-keda' });
      // the ScaledObject owns the replica count
      expect(spec(one('Deployment', stage.name)).replicas).toBeUndefined();
      expect(spec(one('PodDisruptionBudget', stage.name))).toMatchObject({ maxUnavailable: 1 });
    }
  });

  it('sizes CPU from the bench cost line in docs/performance.md and the design rate', () => {
    const line = read('docs/performance.md')
      .split('\n')
      .find((l) => l.startsWith('CPU seconds per 1,000 Welcomes'));
    for (const [name, cost] of Object.entries(STAGE_COSTS)) expect(line).toContain(`${name} ${cost.cpuSecondsPer1000.toFixed(2)} (`);
    for (const stage of STAGES)
      expect(spec(one('Deployment', stage.name)).template.spec.containers[0].resources).toEqual(
        stageResources(STAGE_COSTS[stage.name], s.designSignupsPerSecond),
      );
    // 200/s: the augmenter's 0.59 s per 1,000 is 0.118 of a core; doubled for bursts
    // and 112 MiB resident, doubled, rounded up to 32 MiB
    expect(stageResources({ cpuSecondsPer1000: 0.59, rssMiB: 112 }, 200)).toEqual({
      requests: { cpu: '240m', memory: '224Mi' },
      limits: { memory: '224Mi' },
    });
    expect(stageResources({ cpuSecondsPer1000: 0.14, rssMiB: 100 }, 10).requests.cpu).toBe('50m');
  });
});

describe('NetworkPolicies', () => {
  const { of, one, s } = rendered();
  const policy = (name: string) => spec(one('NetworkPolicy', name));

  it('deny everything to every pod of ours (consumers, registry, Connect), but not to the Kafka brokers', () => {
    const deny = policy('default-deny');
    expect(deny.podSelector).toEqual({ matchExpressions: [{ key: COMPONENT_LABEL, operator: 'Exists' }] });
    expect(deny.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny.ingress).toEqual([]);
    for (const d of of('Deployment')) expect(spec(d).template.metadata.labels[COMPONENT_LABEL]).toBeDefined();
    expect(spec(one('KafkaConnect', s.connectName)).template.pod.metadata.labels[COMPONENT_LABEL]).toBeDefined();
    expect(spec(of('KafkaNodePool')[0] as never).template.pod.metadata.labels[COMPONENT_LABEL]).toBeUndefined();
    // DNS only, for every pod it selects
    expect(deny.egress).toEqual([
      expect.objectContaining({
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      }),
    ]);
  });

  it("open Connect's REST API to the operator's namespace and Connect's own workers only", () => {
    const rest = (policy('connect').ingress as { from: Record<string, unknown>[]; ports: { port: number }[] }[]).filter((r) =>
      r.ports.some((p) => p.port === 8083),
    );
    expect(rest).toHaveLength(1);
    expect(rest[0]?.from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': s.operatorNamespace } },
        podSelector: { matchLabels: { 'strimzi.io/kind': 'cluster-operator' } },
      },
      { podSelector: { matchLabels: { 'strimzi.io/cluster': s.connectName, 'strimzi.io/kind': 'KafkaConnect' } } },
    ]);
    for (const p of of('NetworkPolicy').filter((x) => x.metadata.name !== 'connect'))
      expect({ policy: p.metadata.name, opens8083: JSON.stringify(spec(p).ingress ?? []).includes('8083') }).toEqual({
        policy: p.metadata.name,
        opens8083: false,
      });
  });

  it('let each stage out only to Kafka, the registry, and by port to what it calls: HTTPS for SFMC/the warehouse, the database port', () => {
    for (const stage of STAGES) {
      const egress = policy(stage.name).egress as { ports: { port: number }[] }[];
      const ports = egress.flatMap((r) => r.ports.map((p) => p.port)).sort((a, b) => a - b);
      const expected = [9093, 8080, ...(stage.egress.includes('database') ? [s.dbPort] : []), ...(stage.egress.length > 0 ? [s.httpsPort] : [])].sort(
        (a, b) => a - b,
      );
      expect({ stage: stage.name, ports }).toEqual({ stage: stage.name, ports: [...new Set(expected)] });
      expect(policy(stage.name).ingress).toEqual([
        {
          from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': s.monitoringNamespace } } }],
          ports: [{ port: CONSUMER_POD.httpPort, protocol: 'TCP' }],
        },
      ]);
    }
  });
});
