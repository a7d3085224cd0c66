/**
 * `make k8s`: plain Kubernetes YAML rendered from the files the local stack runs on, into
 * dist/k8s/ (K8S_OUT), one file per step of docs/deploying.md's path, applied in name order.
 *   node dist/tools/k8s/render.js [OUT_DIR]
 * Settings: tools/k8s/settings.ts (K8S_* variables). Validation: tools/k8s/validate.ts.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { projectRoot } from '../../consumers/shared/schemas';
import { pipelineGrants, pipelineTopics } from '../kafka-access';
import { prometheusRule, rulesForPromtool } from './alerts';
import { connectConfigProviderRbac, connectMetricsConfigMap, connectPodMonitor, kafkaConnect } from './connect';
import { connectorDefs, connectorSources, kafkaConnectors } from './connectors';
import { consumerManifests } from './consumers';
import { kafkaCluster, kafkaMetricsConfigMap, kafkaPodMonitor, kafkaTopics, kafkaUsers } from './kafka';
import type { Manifest } from './meta';
import { networkPolicies } from './network';
import type { PluginLock } from './plugin-lock';
import { registryManifests, schemasJob } from './registry';
import { loadK8sSettings, type K8sSettings } from './settings';
import { connectKafkaVersion, readVersions } from './versions';
import { parseProperties, workerSpec } from './worker';

export interface RenderedFile {
  file: string;
  /** What the step is, for the file's header. */
  about: string;
  manifests: Manifest[];
}

export const PROMTOOL_DIR = 'promtool';

export function renderAll(root: string, s: K8sSettings, env: Readonly<Record<string, string | undefined>>): RenderedFile[] {
  const read = (path: string): string => readFileSync(join(root, path), 'utf8');
  const versions = readVersions(root);
  const kafkaVersion = connectKafkaVersion(versions);
  // the same environment kafka-acls.ts sees: the table's names, with the K8s partition count and DLQ retention
  const accessEnv = { ...env, TOPIC_PARTITIONS: String(s.partitions), DLQ_RETENTION_MS: String(s.dlqRetentionMs) };
  const defs = connectorDefs(join(root, 'connect'), s);
  const sources = connectorSources(defs, s);
  const lock = JSON.parse(read('deploy/k8s/connect-plugins.lock.json')) as PluginLock;
  return [
    {
      file: '00-kafka-cluster.yaml',
      about: 'A KRaft Kafka cluster for a namespace without one (skip it when the platform provides the cluster)',
      manifests: [kafkaMetricsConfigMap(s, read('monitoring/jmx/kafka.yml')), ...kafkaCluster(s, kafkaVersion), kafkaPodMonitor(s)],
    },
    {
      file: '01-kafka-access.yaml',
      about: 'Topics and users with their ACLs, from config/kafka-access.json',
      manifests: [...kafkaTopics(pipelineTopics(accessEnv), s), ...kafkaUsers(pipelineGrants(accessEnv), s)],
    },
    {
      file: '02-registry.yaml',
      about: 'The Apicurio registry (kafkasql storage) and the schema registration one-shot',
      manifests: [...registryManifests(s, versions.apicurioRegistry), schemasJob(s)],
    },
    {
      file: '03-connect.yaml',
      about: 'Kafka Connect: plugins built from Maven Central, the native worker settings, metrics, config-provider access',
      manifests: [
        connectMetricsConfigMap(s, read('monitoring/jmx/connect.yml')),
        sources.configMap,
        ...connectConfigProviderRbac(s, sources.secrets, sources.configMaps),
        kafkaConnect(s, workerSpec(parseProperties(read('stack/conf/worker.properties'))), lock, kafkaVersion),
        connectPodMonitor(s),
      ],
    },
    {
      file: '04-connectors.yaml',
      about: `connect/*.json (mysql flavour, overlays: ${s.connectOverlays.join(', ') || 'none'})`,
      manifests: kafkaConnectors(defs, s),
    },
    { file: '05-consumers.yaml', about: 'The augmenter, emailer and delivery-status stage, scaled on lag by KEDA', manifests: consumerManifests(s) },
    { file: '06-network.yaml', about: 'NetworkPolicies: deny all, then the flows the pipeline needs', manifests: networkPolicies(s) },
    { file: '07-alerts.yaml', about: 'monitoring/alerts.yml as a PrometheusRule', manifests: [prometheusRule(s, read('monitoring/alerts.yml'))] },
  ];
}

export function toYaml(file: RenderedFile): string {
  const header = `# ${file.about}\n# Rendered by \`make k8s\` (tools/k8s/render.ts): edit the sources, not this file.\n`;
  return header + file.manifests.map((m) => `---\n${stringify(m, { lineWidth: 0 })}`).join('');
}

export function writeRendered(root: string, out: string, env: Readonly<Record<string, string | undefined>>): RenderedFile[] {
  const files = renderAll(root, loadK8sSettings(env), env);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, PROMTOOL_DIR), { recursive: true });
  for (const f of files) writeFileSync(join(out, f.file), toYaml(f));
  const rule = files.flatMap((f) => f.manifests).find((m) => m.kind === 'PrometheusRule') as Manifest;
  const promtool = rulesForPromtool(rule, readFileSync(join(root, 'monitoring', 'tests', 'alerts.test.yml'), 'utf8'), 'alerts.rules.yml');
  writeFileSync(join(out, PROMTOOL_DIR, 'alerts.rules.yml'), promtool.rules);
  writeFileSync(join(out, PROMTOOL_DIR, 'alerts.test.yml'), promtool.tests);
  return files;
}

if (require.main === module) {
  const root = projectRoot(__dirname);
  const out = process.argv[2] ?? join(root, 'dist', 'k8s');
  try {
    const files = writeRendered(root, out, process.env);
    for (const f of files) process.stdout.write(`  ${f.file.padEnd(24)} ${String(f.manifests.length).padStart(3)} object(s)  ${f.about}\n`);
    process.stdout.write(`k8s: ${files.reduce((n, f) => n + f.manifests.length, 0)} objects in ${out}\n`);
  } catch (err) {
    process.stderr.write(`k8s: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
