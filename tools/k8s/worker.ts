/**
 * stack/conf/worker.properties (the native worker's settings) as a KafkaConnect spec: the keys
 * Strimzi manages itself are dropped, the ones it takes as spec fields move there, the rest go
 * to spec.config. The rule is Strimzi 1.2.0's own (KafkaConnectSpec.FORBIDDEN_PREFIXES and
 * FORBIDDEN_PREFIX_EXCEPTIONS, also in the generated CRD's description of `config`).
 */
export const STRIMZI_FORBIDDEN_PREFIXES = [
  'group.id',
  'config.storage.topic',
  'offset.storage.topic',
  'status.storage.topic',
  'ssl.',
  'sasl.',
  'security.',
  'listeners',
  'plugin.path',
  'rest.',
  'bootstrap.servers',
  'consumer.interceptor.classes',
  'producer.interceptor.classes',
  'prometheus.metrics.reporter.',
] as const;
export const STRIMZI_FORBIDDEN_EXCEPTIONS = [
  'ssl.endpoint.identification.algorithm',
  'ssl.cipher.suites',
  'ssl.protocol',
  'ssl.enabled.protocols',
] as const;

/** Worker keys that become KafkaConnect spec fields instead of config. */
export const SPEC_FIELDS = {
  'group.id': 'groupId',
  'config.storage.topic': 'configStorageTopic',
  'offset.storage.topic': 'offsetStorageTopic',
  'status.storage.topic': 'statusStorageTopic',
} as const;

/**
 * Keys the native worker sets that have another owner on Kubernetes: config providers (Strimzi
 * adds its own; the connectors' ${env:…} become Secret/ConfigMap references, see connectors.ts)
 * and the native-only plugin discovery mode (the image Strimzi builds has no manifests scan cost
 * worth a setting). Listed, so a new key in worker.properties is a decision, not a silent copy.
 */
export const REPLACED_ON_KUBERNETES: Record<string, string> = {
  'config.providers': 'connectors read Kubernetes Secrets/ConfigMaps (secrets, configmaps providers), not the worker environment or files',
};
const replacedBy = (key: string): string | undefined =>
  Object.entries(REPLACED_ON_KUBERNETES).find(([prefix]) => key === prefix || key.startsWith(`${prefix}.`))?.[1];

export function isStrimziManaged(key: string): boolean {
  if ((STRIMZI_FORBIDDEN_EXCEPTIONS as readonly string[]).includes(key)) return false;
  return STRIMZI_FORBIDDEN_PREFIXES.some((p) => (p.endsWith('.') ? key.startsWith(p) : key === p || key.startsWith(`${p}.`)));
}

/** A .properties file as ordered key → value (comments and blank lines dropped). */
export function parseProperties(text: string): [string, string][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'))
    .map((l) => {
      const i = l.search(/[=:]/);
      if (i < 0) throw new Error(`worker.properties: not a key=value line: ${l}`);
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()];
    });
}

export interface WorkerSpec {
  fields: Partial<Record<(typeof SPEC_FIELDS)[keyof typeof SPEC_FIELDS], string>>;
  config: Record<string, string | number | boolean>;
  /** key → why it is not in config (Strimzi manages it, or another owner on Kubernetes). */
  dropped: Record<string, string>;
}

const typed = (v: string): string | number | boolean => (/^-?\d+$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v);

export function workerSpec(properties: [string, string][]): WorkerSpec {
  const out: WorkerSpec = { fields: {}, config: {}, dropped: {} };
  for (const [key, value] of properties) {
    if (key in SPEC_FIELDS) out.fields[SPEC_FIELDS[key as keyof typeof SPEC_FIELDS]] = value;
    else if (isStrimziManaged(key)) out.dropped[key] = 'managed by Strimzi';
    else if (replacedBy(key)) out.dropped[key] = replacedBy(key) as string;
    else if (value.includes('${')) throw new Error(`worker.properties: ${key}=${value} holds a local-stack placeholder and no Kubernetes value`);
    else out.config[key] = typed(value);
  }
  return out;
}
