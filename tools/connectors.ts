/**
 * `make connectors`: PUTs every connector in connect/ to Kafka Connect, idempotently, then
 * waits until each connector and all its tasks are RUNNING. A FAILED task gets its trace
 * printed and one restart (Connect never restarts failed tasks by itself; in a running
 * stack the connect-watchdog does that); if it fails again the command fails. First it
 * creates the sinks' dead-letter topics, or sets their retention (DLQ_RETENTION_MS).
 *   node dist/tools/connectors.js register | status | validate
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { int, retentionMs } from '../consumers/shared/env';
import { createKafka, createTopicsWithLeaders, dlqTopicConfigs, ensureTopicConfigs } from '../consumers/shared/kafka';
import { createLogger } from '../consumers/shared/logger';
import { kafkaFromEnv } from '../consumers/shared/kafka-security';
import { createConnectClient, type ConnectClient } from './connect-client';
import { loadConnectorDefs, literalSecrets, type ConnectorDef, type Flavour } from './connect-defs';

// created at the first call, so a bad CONNECT_URL is reported like every other error (below)
let connectApi: ConnectClient | undefined;
const flavour = (process.env.CONNECT_FLAVOUR ?? 'mariadb') as Flavour;
const connectDir = process.env.CONNECT_DIR ?? join(__dirname, '..', '..', 'connect');
const waitSeconds = Number(process.env.CONNECT_WAIT_S ?? '90');
// e.g. CONNECT_OVERLAYS=kafka-secured,registry-basic (folders of connect/overlays/)
const overlays = (process.env.CONNECT_OVERLAYS ?? '')
  .split(',')
  .map((o) => o.trim())
  .filter(Boolean);

interface TaskStatus {
  id: number;
  state: string;
  trace?: string;
}
interface ConnectorStatus {
  name: string;
  connector: { state: string; trace?: string };
  tasks: TaskStatus[];
}

async function connect(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  connectApi ??= createConnectClient();
  const res = await connectApi.fetch(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const log = (msg: string): void => void process.stdout.write(`${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sameConfig(current: Record<string, string>, desired: Record<string, string>): boolean {
  const { name: _ignored, ...rest } = current;
  const keys = new Set([...Object.keys(rest), ...Object.keys(desired)]);
  return [...keys].every((k) => rest[k] === desired[k]);
}

async function put(def: ConnectorDef): Promise<'created' | 'updated' | 'unchanged'> {
  const secrets = literalSecrets(def.config);
  if (secrets.length > 0) throw new Error(`${def.name}: literal secret in ${secrets.join(', ')}; use \${env:...} or \${file:...}`);
  const current = await connect('GET', `/connectors/${encodeURIComponent(def.name)}/config`);
  // PUT of an identical config would still reconfigure (and restart) the tasks: skip it.
  if (current.status === 200 && sameConfig(current.json as Record<string, string>, def.config)) return 'unchanged';
  const res = await connect('PUT', `/connectors/${encodeURIComponent(def.name)}/config`, def.config);
  if (res.status !== 200 && res.status !== 201) throw new Error(`${def.name}: PUT answered ${res.status} ${JSON.stringify(res.json)}`);
  return res.status === 201 ? 'created' : 'updated';
}

async function status(name: string): Promise<ConnectorStatus | undefined> {
  const res = await connect('GET', `/connectors/${encodeURIComponent(name)}/status`);
  return res.status === 200 ? (res.json as ConnectorStatus) : undefined;
}

/** The first line of a Java trace and every "Caused by:" line: the reason, without 200 frames. */
function summariseTrace(trace: string | undefined): string {
  if (!trace) return '(no trace)';
  const lines = trace.split('\n');
  return [lines[0], ...lines.filter((l) => l.startsWith('Caused by:'))].join('\n    ');
}

function failedTraces(s: ConnectorStatus): string[] {
  const out: string[] = [];
  if (s.connector.state === 'FAILED') out.push(`connector: ${summariseTrace(s.connector.trace)}`);
  for (const t of s.tasks) if (t.state === 'FAILED') out.push(`task ${t.id}: ${summariseTrace(t.trace)}`);
  return out;
}

const isRunning = (s: ConnectorStatus | undefined): boolean =>
  s !== undefined && s.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING');

async function waitRunning(name: string): Promise<void> {
  const deadline = Date.now() + waitSeconds * 1000;
  let restarted = false;
  for (;;) {
    const s = await status(name);
    if (isRunning(s)) return;
    const traces = s ? failedTraces(s) : [];
    if (traces.length > 0) {
      log(`${name}: FAILED\n  ${traces.join('\n  ')}`);
      if (restarted) throw new Error(`${name} failed again after a restart`);
      log(`${name}: restarting failed connector/tasks`);
      await connect('POST', `/connectors/${encodeURIComponent(name)}/restart?includeTasks=true&onlyFailed=true`);
      restarted = true;
    }
    if (Date.now() > deadline) throw new Error(`${name} not RUNNING after ${waitSeconds} s: ${JSON.stringify(s)}`);
    await sleep(500);
  }
}

/**
 * The dead-letter topic a sink names (errors.deadletterqueue.topic.name) keeps its records
 * until replayed: Connect would create it with the broker's default retention (7 days) and
 * no way to set another, so it is created here first, or its retention set if it exists.
 */
async function ensureDeadLetterTopics(defs: ConnectorDef[]): Promise<void> {
  const topics = defs.map((d) => d.config['errors.deadletterqueue.topic.name']).filter((t): t is string => Boolean(t));
  if (topics.length === 0) return;
  const retention = retentionMs(process.env, 'DLQ_RETENTION_MS', -1);
  const replicas = int(process.env, 'DLQ_REPLICATION_FACTOR', -1, -1, 32);
  const { brokers, security } = kafkaFromEnv(process.env, (p) => readFileSync(p, 'utf8'));
  const admin = createKafka({ brokers, clientId: 'welcome-connectors', security }, createLogger('connectors', 'warn')).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    for (const topic of topics) {
      if (!existing.has(topic)) {
        // one partition, as Connect's own DeadLetterQueueReporter would create it
        await createTopicsWithLeaders(admin, [
          {
            topic,
            numPartitions: 1,
            replicationFactor: replicas,
            configEntries: Object.entries(dlqTopicConfigs(retention)).map(([name, value]) => ({ name, value })),
          },
        ]);
        log(`${topic}: created (retention.ms=${retention})`);
      } else {
        const changed = await ensureTopicConfigs(admin, topic, dlqTopicConfigs(retention));
        log(`${topic}: retention.ms=${retention}${changed.length ? ` (set ${changed.join(', ')})` : ' (unchanged)'}`);
      }
    }
  } finally {
    await admin.disconnect();
  }
}

async function register(): Promise<void> {
  const defs = loadConnectorDefs(connectDir, flavour, overlays);
  await ensureDeadLetterTopics(defs);
  for (const def of defs) {
    const outcome = await put(def);
    log(`${def.name} (${flavour}): ${outcome}`);
    await waitRunning(def.name);
    log(`${def.name}: RUNNING`);
  }
}

async function printStatus(): Promise<void> {
  const res = await connect('GET', '/connectors?expand=status');
  const all = (res.json ?? {}) as Record<string, { status: ConnectorStatus }>;
  if (Object.keys(all).length === 0) log('  (no connectors registered: run make connectors)');
  for (const [name, { status: s }] of Object.entries(all)) {
    log(`  ${name.padEnd(18)} ${s.connector.state.padEnd(8)} tasks: ${s.tasks.map((t) => `${t.id}=${t.state}`).join(' ') || '(none)'}`);
    for (const trace of failedTraces(s)) log(`    ${trace}`);
  }
}

async function validate(): Promise<void> {
  let bad = 0;
  for (const def of loadConnectorDefs(connectDir, flavour, overlays)) {
    const cls = def.config['connector.class'] ?? '';
    const res = await connect('PUT', `/connector-plugins/${encodeURIComponent(cls)}/config/validate`, { ...def.config, name: def.name });
    const body = res.json as { error_count: number; configs: { value: { name: string; errors: string[] } }[] };
    const errors = body.configs.flatMap((c) => c.value.errors.map((e) => `${c.value.name}: ${e}`));
    log(`${def.name}: ${body.error_count} error(s)${errors.length ? `\n  ${errors.join('\n  ')}` : ''}`);
    bad += body.error_count;
  }
  if (bad > 0) throw new Error(`${bad} validation error(s)`);
}

const commands: Record<string, () => Promise<void>> = { register, status: printStatus, validate };
const command = commands[process.argv[2] ?? 'register'];
if (!command) {
  process.stderr.write(`usage: connectors ${Object.keys(commands).join('|')}\n`);
  process.exit(2);
}
command().catch((err: unknown) => {
  process.stderr.write(`connectors: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
