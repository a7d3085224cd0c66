/**
 * Issue 24: the Connect worker resolves only the ${env:...} names our connectors use and lets
 * them override only the client settings they override (stack/conf/worker.properties). A
 * connector file that needs another name or override fails here, before a worker quietly
 * leaves it unresolved or refuses it; a secret of another component never becomes readable.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
const worker = new Map(
  readFileSync(join(ROOT, 'stack', 'conf', 'worker.properties'), 'utf8')
    .split('\n')
    .map((l) => /^([a-z][a-z0-9.]*)=(.*)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1] ?? '', m[2] ?? '']),
);
// EnvVarConfigProvider matches the whole name (Matcher.matches)
const envAllowed = new RegExp(`^(?:${worker.get('config.providers.env.param.allowlist.pattern') ?? '(?!)'})$`);
const overridesAllowed = new Set((worker.get('connector.client.config.override.allowlist') ?? '').split(','));

function jsonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? jsonFiles(p) : p.endsWith('.json') ? [p] : [];
  });
}
const connectorConfigs = jsonFiles(join(ROOT, 'connect')).map((p) => ({
  file: p.slice(ROOT.length + 1),
  config: JSON.parse(readFileSync(p, 'utf8')) as Record<string, string>,
}));

test('the worker is locked: allowlist policy, restricted providers, REST basic auth', () => {
  expect(worker.get('connector.client.config.override.policy')).toBe('Allowlist');
  expect(worker.get('config.providers.file.param.allowed.paths')).toBe('${STATE_DIR}/connect/secrets');
  expect(worker.get('rest.extension.classes')).toBe('org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension');
  expect(connectorConfigs.length).toBeGreaterThan(5);
});

test('every ${env:NAME} in connect/ is one the worker resolves', () => {
  const names = new Set(
    connectorConfigs.flatMap(({ config }) => Object.values(config).flatMap((v) => [...v.matchAll(/\$\{env:([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))),
  );
  expect(names.size).toBeGreaterThan(10);
  expect([...names].filter((n) => !envAllowed.test(n ?? ''))).toEqual([]);
});

test("no other component's secret is readable through ${env:...}", () => {
  const secrets =
    readFileSync(join(ROOT, 'stack', 'bin', 'lib.sh'), 'utf8')
      .match(/SECRET_NAMES=\(([^)]*)\)/)?.[1]
      ?.split(/\s+/)
      .filter(Boolean) ?? [];
  expect(secrets).toContain('CONNECT_REST_PASSWORD');
  const connectorSecrets = ['CDC_DB_PASSWORD', 'SINK_DB_PASSWORD', 'DB_SSL_TRUSTSTORE_PASSWORD'];
  const others = [...secrets.filter((s) => !connectorSecrets.includes(s)), 'MYSQL_ROOT_PASSWORD', 'OPS_DB_PASSWORD', 'PATH', 'HOME'];
  expect(others.filter((n) => envAllowed.test(n))).toEqual([]);
  for (const n of connectorSecrets) expect({ n, allowed: envAllowed.test(n) }).toEqual({ n, allowed: true });
});

test('every client override in connect/ is allowed, and nothing else', () => {
  const overridden = new Set(
    connectorConfigs.flatMap(({ config }) =>
      Object.keys(config)
        .map((k) => /^(?:producer|consumer|admin)\.override\.(.+)$/.exec(k)?.[1])
        .filter((k): k is string => k !== undefined),
    ),
  );
  expect([...overridden].filter((k) => !overridesAllowed.has(k))).toEqual([]);
  expect([...overridesAllowed].filter((k) => !overridden.has(k))).toEqual([]);
});
