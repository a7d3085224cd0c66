import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConnectorDefs } from '../../../tools/connect-defs';
import { connectorEnv, toEnvRefs } from '../../../tools/k8s/connectors';
import type { PluginLock } from '../../../tools/k8s/plugin-lock';
import { pomProperties } from '../../../tools/k8s/versions';
import { isStrimziManaged, parseProperties, REPLACED_ON_KUBERNETES, SPEC_FIELDS, workerSpec } from '../../../tools/k8s/worker';
import { rendered, ROOT, spec } from './k8s-render';

const workerProps = parseProperties(readFileSync(join(ROOT, 'stack/conf/worker.properties'), 'utf8'));
const lock = JSON.parse(readFileSync(join(ROOT, 'deploy/k8s/connect-plugins.lock.json'), 'utf8')) as PluginLock;
const pom = pomProperties(readFileSync(join(ROOT, 'stack/pom.xml'), 'utf8'));

describe('KafkaConnect worker settings from stack/conf/worker.properties', () => {
  const { one, s } = rendered();
  const connect = spec(one('KafkaConnect', s.connectName));

  it('drops exactly the keys Strimzi manages (rest.*, listeners, plugin.path, bootstrap.servers, ssl/sasl/security) and no other', () => {
    for (const key of [
      'rest.advertised.host.name',
      'rest.port',
      'listeners',
      'plugin.path',
      'bootstrap.servers',
      'ssl.keystore.location',
      'sasl.jaas.config',
      'security.protocol',
    ])
      expect({ key, managed: isStrimziManaged(key) }).toEqual({ key, managed: true });
    for (const key of ['ssl.endpoint.identification.algorithm', 'producer.linger.ms', 'offset.flush.interval.ms', 'restart.x', 'listenersx'])
      expect({ key, managed: isStrimziManaged(key) }).toEqual({ key, managed: false });
  });

  it('carries every other key: into spec.config, or a spec field (group.id, storage topics), or dropped with a reason', () => {
    const w = workerSpec(workerProps);
    for (const [key, value] of workerProps) {
      const field = SPEC_FIELDS[key as keyof typeof SPEC_FIELDS];
      if (field) expect(connect[field]).toBe(value);
      else if (isStrimziManaged(key)) expect(connect.config[key]).toBeUndefined();
      else if (Object.keys(REPLACED_ON_KUBERNETES).some((p) => key === p || key.startsWith(`${p}.`))) expect(w.dropped[key]).toBeDefined();
      else if (/\.replication\.factor$/.test(key)) expect(connect.config[key]).toBe(s.replicas);
      else expect({ key, value: String(connect.config[key]) }).toEqual({ key, value });
    }
    for (const key of Object.keys(connect.config)) expect({ key, managed: isStrimziManaged(key) }).toEqual({ key, managed: false });
  });

  it('refuses a worker setting that only makes sense locally (a placeholder with no Kubernetes value)', () => {
    expect(() => workerSpec([['some.path', '${STATE_DIR}/x']])).toThrow('some.path=${STATE_DIR}/x holds a local-stack placeholder');
  });

  it('builds each plugin folder from the Debezium archive at stack/pom.xml versions plus every converter jar, checked by SHA-512', () => {
    const [mysql, jdbc] = connect.build.plugins as { name: string; artifacts: { type: string; url: string; sha512sum: string }[] }[];
    expect(mysql?.artifacts[0]?.url).toContain(`/debezium-connector-mysql/${pom['debezium.version']}/`);
    expect(jdbc?.artifacts[0]?.url).toContain(`/debezium-connector-jdbc/${pom['debezium.jdbc.version']}/`);
    for (const plugin of [mysql, jdbc]) {
      expect(plugin?.artifacts[0]?.type).toBe('tgz');
      expect(plugin?.artifacts.slice(1).map((a) => a.url.split('/').at(-1))).toEqual(lock.converter.map((j) => j.file));
      for (const a of plugin?.artifacts ?? []) expect(a.sha512sum).toMatch(/^[0-9a-f]{128}$/);
    }
  });

  it('locks the converter the native build resolves: apicurio.converter.version, without Kafka, Jackson core or SLF4J jars', () => {
    expect(lock.converter.map((j) => j.file)).toContain(`apicurio-registry-utils-converter-${pom['apicurio.converter.version']}.jar`);
    const excluded = lock.converter.filter((j) => /^(kafka-|connect-|jackson-(core|databind|annotations)-|slf4j-)/.test(j.file));
    expect(excluded).toEqual([]);
    for (const j of lock.converter) expect(j.url).toMatch(new RegExp(`^https://repo1\\.maven\\.org/maven2/.+/${j.file.replace(/\./g, '\\.')}$`));
  });

  it('runs on a Kafka version the pinned Strimzi supports, not newer than the native brokers', () => {
    const [maj, min] = String(connect.version).split('.').map(Number);
    const [bMaj, bMin] = String(pom['kafka.version']).split('.').map(Number);
    expect((maj as number) * 100 + (min as number)).toBeLessThanOrEqual((bMaj as number) * 100 + (bMin as number));
  });
});

describe('KafkaConnectors equal what make connectors PUTs', () => {
  const overlaySets = [[], ['kafka-secured'], ['kafka-secured', 'db-tls'], ['kafka-secured', 'registry-basic', 'db-tls']];

  it.each(overlaySets.map((o) => [o.join(',') || '(none)', o] as const))(
    'overlays %s: each connector maps back to the mysql-flavour definition',
    (_label, overlays) => {
      const env = { K8S_CONNECT_OVERLAYS: overlays.join(',') || 'none' };
      const { of, s } = rendered(env);
      const defs = loadConnectorDefs(join(ROOT, 'connect'), 'mysql', overlays);
      const connectors = of('KafkaConnector');
      expect(connectors.map((c) => c.metadata.name)).toEqual(defs.map((d) => d.name));
      for (const def of defs) {
        const c = spec(connectors.find((x) => x.metadata.name === def.name) as never);
        const back = { 'connector.class': c.class, 'tasks.max': String(c.tasksMax), ...toEnvRefs(c.config, connectorEnv(s), s.namespace) };
        expect(back).toEqual(def.config);
        // nothing left for the worker's environment: every ${env:…} became a Secret or ConfigMap reference
        expect(JSON.stringify(c.config)).not.toContain('${env:');
      }
    },
  );

  it('maps each variable to its own Secret or ConfigMap key (one to one), passwords and JAAS lines only to Secrets', () => {
    const { s } = rendered();
    const env = connectorEnv(s);
    const targets = Object.values(env).map((src) => ('secret' in src ? `secret/${src.secret}/${src.key}` : `configmap/${src.configMap}/${src.key}`));
    expect(new Set(targets).size).toBe(targets.length);
    for (const [name, src] of Object.entries(env))
      if (/PASSWORD|JAAS/.test(name)) expect({ name, secret: 'secret' in src }).toEqual({ name, secret: true });
  });

  it('lets the worker read exactly the Secrets and ConfigMap the connectors name', () => {
    const { one, of, s } = rendered();
    const refs = JSON.stringify(of('KafkaConnector').map((c) => spec(c).config));
    const named = (kind: string): string[] =>
      [...new Set([...refs.matchAll(new RegExp(`\\$\\{${kind}:${s.namespace}/([^:]+):`, 'g'))].map((m) => m[1] as string))].sort();
    const role = one('Role', `${s.connectName}-config-providers`) as unknown as {
      rules: { resources: string[]; resourceNames: string[]; verbs: string[] }[];
    };
    expect(role.rules.find((r) => r.resources.includes('secrets'))?.resourceNames).toEqual(named('secrets'));
    expect(role.rules.find((r) => r.resources.includes('configmaps'))?.resourceNames).toEqual(named('configmaps'));
    for (const r of role.rules) expect(r.verbs).toEqual(['get']);
  });
});
