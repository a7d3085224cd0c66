/**
 * The Connect watchdog: Kafka Connect leaves a FAILED connector or task FAILED for good, so
 * this small process polls GET /connectors?expand=status and restarts what FAILED
 * (POST /connectors/{name}/restart?includeTasks=true&onlyFailed=true), with backoff, logging
 * each restart with the task's trace and counting it; after too many restarts of one
 * connector within a window it gives up loudly (an error log line, a gauge at 1) until the
 * connector runs again. The rules are in watchdog-policy.ts. What it remembers per connector
 * (restarts, a give-up) is written to WATCHDOG_STATE_FILE after every change and read at
 * start, so a restart of the watchdog neither forgets a give-up nor resets the limit. A
 * connector Connect lists without a readable status is skipped (and logged), never the others.
 *
 * Serves /healthz (the poll loop is alive: it ran within three intervals, whatever Connect
 * answered) and /metrics on HTTP_HOST (default 127.0.0.1) port WATCHDOG_HTTP_PORT (default 9466):
 *   welcome_connect_watchdog_restarts_total{connector}   restarts Connect accepted
 *   welcome_connect_watchdog_gave_up{connector}          1 while the watchdog has given up
 *   welcome_connect_connector_running{connector}         1 when the connector and all its tasks run
 *   welcome_connect_task_running{connector,task}         1 per RUNNING task, 0 otherwise
 *   welcome_connect_watchdog_connect_up                  1 when the last poll got an answer
 *   welcome_connect_watchdog_poll_errors_total           polls that failed (Connect down, bad answer)
 *
 *   node dist/tools/connect-watchdog.js
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname } from 'node:path';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { type Env, int, optionalStr, str } from '../consumers/shared/env';
import { createLogger, type Logger } from '../consumers/shared/logger';
import { createConnectClient, type ConnectClient } from './connect-client';
import { decide, emptyMemory, isRunning, recordRestart, type ConnectorState, type Memory, type WatchdogPolicy } from './watchdog-policy';

export interface WatchdogConfig {
  /** Kafka Connect's REST API with an operator's credentials (CONNECT_URL, CONNECT_REST_*). */
  connect: ConnectClient;
  /** HTTP_HOST: 127.0.0.1 unless a container needs its probes to reach it (the image sets 0.0.0.0). */
  httpHost: string;
  httpPort: number;
  pollIntervalMs: number;
  /** Only these connectors (all on the worker when undefined). */
  connectors: string[] | undefined;
  /** Where what it remembers survives its restarts (undefined: memory only, a restart forgets). */
  stateFile: string | undefined;
  policy: WatchdogPolicy;
  logLevel: string;
}

export function loadConfig(env: Env, readFile?: (p: string) => string): WatchdogConfig {
  const list = optionalStr(env, 'WATCHDOG_CONNECTORS');
  return {
    connect: createConnectClient(env, readFile),
    httpHost: str(env, 'HTTP_HOST', '127.0.0.1'),
    httpPort: int(env, 'WATCHDOG_HTTP_PORT', 9466, 1, 65535),
    pollIntervalMs: int(env, 'WATCHDOG_POLL_INTERVAL_MS', 5_000, 200, 600_000),
    connectors: list
      ? list
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined,
    stateFile: optionalStr(env, 'WATCHDOG_STATE_FILE'),
    policy: {
      initialBackoffMs: int(env, 'WATCHDOG_BACKOFF_INITIAL_MS', 5_000, 0, 3_600_000),
      maxBackoffMs: int(env, 'WATCHDOG_BACKOFF_MAX_MS', 60_000, 0, 3_600_000),
      maxRestarts: int(env, 'WATCHDOG_MAX_RESTARTS', 10, 1, 1_000),
      windowMs: int(env, 'WATCHDOG_WINDOW_MS', 86_400_000, 1_000, 7 * 86_400_000),
      stableMs: int(env, 'WATCHDOG_STABLE_MS', 300_000, 0, 86_400_000),
    },
    logLevel: optionalStr(env, 'LOG_LEVEL') ?? 'info',
  };
}

function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    restarts: new Counter({
      name: 'welcome_connect_watchdog_restarts_total',
      help: 'Restarts of FAILED connectors/tasks the watchdog asked for and Connect accepted',
      labelNames: ['connector'],
      registers: [registry],
    }),
    gaveUp: new Gauge({
      name: 'welcome_connect_watchdog_gave_up',
      help: '1 while the watchdog has given up restarting the connector (too many failures within the window)',
      labelNames: ['connector'],
      registers: [registry],
    }),
    running: new Gauge({
      name: 'welcome_connect_connector_running',
      help: '1 when the connector and all its tasks are RUNNING',
      labelNames: ['connector'],
      registers: [registry],
    }),
    taskRunning: new Gauge({
      name: 'welcome_connect_task_running',
      help: '1 when the task is RUNNING',
      labelNames: ['connector', 'task'],
      registers: [registry],
    }),
    connectUp: new Gauge({
      name: 'welcome_connect_watchdog_connect_up',
      help: '1 when the last poll of the Connect REST API got a valid answer',
      registers: [registry],
    }),
    pollErrors: new Counter({
      name: 'welcome_connect_watchdog_poll_errors_total',
      help: 'Polls of the Connect REST API that failed',
      registers: [registry],
    }),
  };
}
type Metrics = ReturnType<typeof createMetrics>;

/** The connectors whose status is readable, and the names of those whose status is not (skipped this poll). */
export function asStatuses(json: unknown): { statuses: ConnectorState[]; unreadable: string[] } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('GET /connectors?expand=status: not an object');
  const statuses: ConnectorState[] = [];
  const unreadable: string[] = [];
  for (const [name, v] of Object.entries(json as Record<string, { status?: ConnectorState } | null>)) {
    const s = v?.status;
    if (!s || typeof s.connector?.state !== 'string' || !Array.isArray(s.tasks)) unreadable.push(name);
    else statuses.push({ name, connector: s.connector, tasks: s.tasks });
  }
  return { statuses, unreadable };
}

/** What the watchdog remembers, read at start; a missing or unreadable file is an empty memory (said in the log). */
function loadMemory(file: string | undefined, log: Logger): Map<string, Memory> {
  if (!file) return new Map();
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Memory>;
    return new Map(Object.entries(parsed).filter(([, m]) => Array.isArray(m?.restarts) && typeof m.gaveUp === 'boolean'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      log.warn({ file, err: (err as Error).message }, 'watchdog state unreadable: starting with none');
    return new Map();
  }
}

function saveMemory(file: string | undefined, memory: Map<string, Memory>, log: Logger): void {
  if (!file) return;
  try {
    mkdirSync(dirname(file), { recursive: true });
    // Written then renamed: a crash mid-write never leaves half a file.
    writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(memory)));
    renameSync(`${file}.tmp`, file);
  } catch (err) {
    log.error({ file, err: (err as Error).message }, 'watchdog state not saved: a restart of the watchdog would forget it');
  }
}

export interface Watchdog {
  pollOnce(): Promise<void>;
  /** When the poll loop last finished a pass (ms since epoch). */
  lastPollAt(): number;
  metrics: Metrics;
}

export function createWatchdog(config: WatchdogConfig, log: Logger, now: () => number = Date.now): Watchdog {
  const metrics = createMetrics();
  const memory = loadMemory(config.stateFile, log);
  let saved = JSON.stringify(Object.fromEntries(memory));
  const unreadableSeen = new Set<string>();
  const seenTasks = new Map<string, Set<string>>();
  let lastPoll = now();

  const call = async (method: 'GET' | 'POST', path: string): Promise<{ status: number; text: string; json: unknown }> => {
    const res = await config.connect.fetch(path, { method, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text) as unknown;
    } catch {
      json = undefined; // not JSON: asStatuses and the restart log say so
    }
    return { status: res.status, text, json };
  };

  async function restart(name: string, attempt: number, traces: string[]): Promise<boolean> {
    const res = await call('POST', `/connectors/${encodeURIComponent(name)}/restart?includeTasks=true&onlyFailed=true`);
    if (res.status === 202 || res.status === 204 || res.status === 200) {
      metrics.restarts.inc({ connector: name });
      log.warn(
        { connector: name, attempt, traces },
        `restarted FAILED ${name} (restart ${attempt} of at most ${config.policy.maxRestarts} within ${config.policy.windowMs / 1000} s)`,
      );
      return true;
    }
    // 409: a rebalance is under way; 404: deleted meanwhile. Either way: look again next poll.
    log.info(
      { connector: name, status: res.status, body: res.text.slice(0, 300) },
      `restart of ${name} not accepted (${res.status}); trying again at the next poll`,
    );
    return false;
  }

  function observe(s: ConnectorState): void {
    metrics.restarts.inc({ connector: s.name }, 0); // the series exists (at 0) before the first restart, for rate() and alerts
    metrics.running.set({ connector: s.name }, isRunning(s) ? 1 : 0);
    const tasks = new Set(s.tasks.map((t) => String(t.id)));
    for (const t of s.tasks) metrics.taskRunning.set({ connector: s.name, task: String(t.id) }, t.state === 'RUNNING' ? 1 : 0);
    for (const old of seenTasks.get(s.name) ?? []) if (!tasks.has(old)) metrics.taskRunning.remove({ connector: s.name, task: old });
    seenTasks.set(s.name, tasks);
  }

  function forget(name: string): void {
    memory.delete(name);
    metrics.running.remove({ connector: name });
    metrics.restarts.remove({ connector: name });
    metrics.gaveUp.remove({ connector: name });
    for (const t of seenTasks.get(name) ?? []) metrics.taskRunning.remove({ connector: name, task: t });
    seenTasks.delete(name);
  }

  async function pollOnce(): Promise<void> {
    let statuses: ConnectorState[];
    try {
      const res = await call('GET', '/connectors?expand=status');
      if (res.status !== 200) throw new Error(`GET /connectors?expand=status answered ${res.status}: ${res.text.slice(0, 200)}`);
      const answer = asStatuses(res.json);
      const wanted = (name: string): boolean => !config.connectors || config.connectors.includes(name);
      statuses = answer.statuses.filter((s) => wanted(s.name));
      for (const name of answer.unreadable.filter(wanted)) {
        if (!unreadableSeen.has(name))
          log.warn({ connector: name }, `GET /connectors?expand=status: no status for ${name}; skipped until Connect gives one`);
        unreadableSeen.add(name);
      }
      for (const name of unreadableSeen) if (!answer.unreadable.includes(name)) unreadableSeen.delete(name);
      metrics.connectUp.set(1);
    } catch (err) {
      // Connect restarting or down: nothing to decide; its own supervisor restarts the worker.
      metrics.connectUp.set(0);
      metrics.pollErrors.inc();
      log.warn({ err: (err as Error).message }, 'Connect REST API not answering');
      return;
    } finally {
      lastPoll = now();
    }
    // A connector without a readable status this poll is still there: keep what we know of it.
    const present = new Set([...statuses.map((s) => s.name), ...unreadableSeen]);
    for (const name of [...memory.keys()]) if (!present.has(name)) forget(name);
    for (const s of statuses) {
      observe(s);
      const t = now();
      const { decision, memory: next } = decide(config.policy, s, memory.get(s.name) ?? emptyMemory(), t);
      memory.set(s.name, next);
      metrics.gaveUp.set({ connector: s.name }, next.gaveUp ? 1 : 0);
      if (!decision) continue;
      switch (decision.kind) {
        case 'restart':
          try {
            if (await restart(s.name, decision.attempt, decision.traces)) memory.set(s.name, recordRestart(next, t));
          } catch (err) {
            log.warn({ connector: s.name, err: (err as Error).message }, `restart of ${s.name} failed; trying again at the next poll`);
          }
          break;
        case 'give-up':
          log.error(
            { connector: s.name, restarts: decision.restarts, traces: decision.traces },
            `GAVE UP on ${s.name}: FAILED again after ${decision.restarts} restarts within ${config.policy.windowMs / 1000} s; fix the cause, then make connectors (runbook: "watchdog gave up")`,
          );
          break;
        case 'recovered':
          log.info({ connector: s.name, restarts: decision.restarts, gaveUp: decision.gaveUp }, `${s.name} RUNNING again`);
          break;
        case 'wait':
          log.debug({ connector: s.name, untilMs: decision.untilMs }, `${s.name} FAILED; next restart after backoff`);
          break;
      }
    }
    const current = JSON.stringify(Object.fromEntries(memory));
    if (current !== saved) {
      saveMemory(config.stateFile, memory, log);
      saved = current;
    }
  }

  return { pollOnce, lastPollAt: () => lastPoll, metrics };
}

function serve(host: string, port: number, watchdog: Watchdog, pollIntervalMs: number): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      const path = req.url?.split('?')[0];
      if (path === '/healthz') {
        const alive = Date.now() - watchdog.lastPollAt() < 3 * pollIntervalMs + 15_000;
        res.writeHead(alive ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: alive ? 'ok' : 'poll loop stalled' }));
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': watchdog.metrics.registry.contentType }).end(await watchdog.metrics.registry.metrics());
      } else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    })().catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

async function main(): Promise<void> {
  let config: WatchdogConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    process.stderr.write(`connect-watchdog: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger('connect-watchdog', config.logLevel);
  const watchdog = createWatchdog(config, log);
  const server = await serve(config.httpHost, config.httpPort, watchdog, config.pollIntervalMs);
  log.info(
    {
      connectUrl: config.connect.url,
      host: config.httpHost,
      port: config.httpPort,
      pollIntervalMs: config.pollIntervalMs,
      connectors: config.connectors ?? 'all',
      stateFile: config.stateFile ?? 'none',
      policy: config.policy,
    },
    'connect watchdog started',
  );
  if (!config.stateFile) log.warn('WATCHDOG_STATE_FILE is not set: a restart of the watchdog forgets its restarts and any give-up');
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    if (timer) clearTimeout(timer);
    wake?.();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  while (!stopping) {
    await watchdog.pollOnce().catch((err: unknown) => log.error({ err }, 'poll failed'));
    if (stopping) break;
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, config.pollIntervalMs);
    });
  }
  server.close();
  process.exit(0);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`connect-watchdog: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
