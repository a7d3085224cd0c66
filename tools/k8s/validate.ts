/**
 * Validates rendered manifests offline, each against the schema of its API:
 *   core, apps, batch, policy, networking, rbac  the npm kubernetes-models classes (.validate())
 *   keda.sh                                      @kubernetes-models/keda
 *   monitoring.coreos.com                        @kubernetes-models/prometheus-operator
 *   kafka.strimzi.io                             Strimzi's own CRDs, generated from io.strimzi:api by
 *                                                Strimzi's crd-generator (make strimzi-crds), with ajv
 * Strimzi's schemas are checked strictly (an unknown field is an error, as the API server's strict
 * field validation makes it); the model packages' schemas leave unknown fields open, so the
 * renderer writes typed objects and this adds a check of object names.
 *   node dist/tools/k8s/validate.js DIR CRD_DIR      exit 1 with every problem listed
 * The model packages are ES modules only: they are loaded by path (require of an ES module,
 * Node ≥ 20.19), which is why this runs as its own process and not inside jest.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { projectRoot } from '../../consumers/shared/schemas';
import type { Manifest } from './meta';

type Schema = Record<string, unknown>;

/** Where each API group's models live in node_modules, as package/dir. */
const MODEL_PACKAGES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'rbac.authorization.k8s.io/v1': 'kubernetes-models/rbac.authorization.k8s.io/v1',
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

/** Kubernetes' structural schemas prune unknown fields; strict validation rejects them: so do we. */
export function strictSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictSchema);
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = Object.fromEntries(
    Object.entries(node as Schema).map(([k, v]) => [
      k,
      k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, strictSchema(s)])) : strictSchema(v),
    ]),
  );
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true)
    out.additionalProperties = false;
  return out;
}

/**
 * The config keys a Strimzi resource refuses, as its CRD states them in the description of
 * spec.config: "…cannot be set: a, b. (with the exception of: c)" or "…cannot be set: a, b".
 */
export function forbiddenConfig(description: string): (key: string) => boolean {
  const m = /cannot be set: ([^()]+?)(?: \(with the exception of: ([^)]+)\))?\.?$/.exec(description.replace(/\s+/g, ' ').trim());
  if (!m) throw new Error(`no forbidden keys in: ${description}`);
  const list = (text: string | undefined): string[] =>
    (text ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
  const prefixes = list(m[1]);
  const exceptions = list(m[2]);
  return (key) => !exceptions.includes(key) && prefixes.some((p) => (p.endsWith('.') ? key.startsWith(p) : key === p || key.startsWith(`${p}.`)));
}

export interface StrimziSchema {
  validate: ValidateFunction;
  /** Keys of spec.config the CRD says cannot be set (undefined: no such rule). */
  forbidden?: (key: string) => boolean;
}

export function strimziValidators(crdDir: string): Map<string, StrimziSchema> {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const out = new Map<string, StrimziSchema>();
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
    const crd = parseAllDocuments(readFileSync(join(crdDir, file), 'utf8'))[0]?.toJS() as {
      spec: { group: string; names: { kind: string }; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
    };
    for (const v of crd.spec.versions) {
      const spec = (v.schema.openAPIV3Schema.properties as Record<string, Schema> | undefined)?.spec;
      const description = ((spec?.properties as Record<string, Schema> | undefined)?.config?.description as string | undefined) ?? '';
      out.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, {
        validate: ajv.compile(strictSchema(v.schema.openAPIV3Schema) as Schema),
        ...(/cannot be set/.test(description) ? { forbidden: forbiddenConfig(description) } : {}),
      });
    }
  }
  return out;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface Verdict {
  kind: string;
  name: string;
  file: string;
  against: string;
  errors: string[];
}

export function validateManifest(m: Manifest, file: string, root: string, strimzi: Map<string, StrimziSchema>): Verdict {
  const base = { kind: m.kind, name: m.metadata?.name, file };
  const errors: string[] = [];
  if (!m.metadata?.name || m.metadata.name.length > 253 || !DNS_SUBDOMAIN.test(m.metadata.name))
    errors.push(`metadata.name "${m.metadata?.name}" is not a DNS-1123 subdomain`);
  if (m.apiVersion.startsWith('kafka.strimzi.io/')) {
    const schema = strimzi.get(`${m.apiVersion}/${m.kind}`);
    if (!schema) return { ...base, against: 'none', errors: [`no Strimzi CRD for ${m.apiVersion} ${m.kind}`] };
    const { validate, forbidden } = schema;
    const config = (m.spec as { config?: Record<string, unknown> } | undefined)?.config ?? {};
    if (forbidden)
      for (const key of Object.keys(config))
        if (forbidden(key)) errors.push(`spec.config.${key}: the CRD says it cannot be set (Strimzi manages it)`);
    if (!validate(m))
      errors.push(
        ...(validate.errors ?? []).map(
          (e) =>
            `${e.instancePath || '/'} ${e.message ?? ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`,
        ),
      );
    return { ...base, against: `Strimzi CRD ${m.apiVersion}`, errors };
  }
  const pkg = MODEL_PACKAGES[m.apiVersion];
  if (!pkg) return { ...base, against: 'none', errors: [`no model package for ${m.apiVersion}`] };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(join(root, 'node_modules', pkg, `${m.kind}.js`)) as Record<string, new (d: unknown) => { validate(): void }>;
    const Model = mod[m.kind];
    if (!Model) throw new Error(`${pkg} has no ${m.kind}`);
    new Model(m).validate();
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err));
  }
  return {
    ...base,
    against: pkg
      .split('/')
      .slice(0, pkg.startsWith('@') ? 2 : 1)
      .join('/'),
    errors,
  };
}

export function validateDir(dir: string, crdDir: string, root: string): Verdict[] {
  const strimzi = strimziValidators(crdDir);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), 'utf8'))
        .map((d) => d.toJS() as Manifest | null)
        .filter((m): m is Manifest => m !== null)
        .map((m) => validateManifest(m, file, root, strimzi)),
    );
}

if (require.main === module) {
  const [dir, crdDir] = process.argv.slice(2);
  if (!dir || !crdDir) {
    process.stderr.write('usage: validate.js RENDERED_DIR STRIMZI_CRD_DIR\n');
    process.exit(2);
  }
  const verdicts = validateDir(dir, crdDir, projectRoot(__dirname));
  const byAgainst = new Map<string, number>();
  for (const v of verdicts) byAgainst.set(`${v.kind} (${v.against})`, (byAgainst.get(`${v.kind} (${v.against})`) ?? 0) + 1);
  for (const [what, n] of byAgainst) process.stdout.write(`  ${String(n).padStart(3)} × ${what}\n`);
  const bad = verdicts.filter((v) => v.errors.length > 0);
  for (const v of bad) process.stderr.write(`${v.file}: ${v.kind} ${v.name}:\n    ${v.errors.join('\n    ')}\n`);
  process.stdout.write(`validated ${verdicts.length} objects: ${bad.length === 0 ? 'all valid' : `${bad.length} invalid`}\n`);
  process.exit(bad.length === 0 ? 0 : 1);
}
