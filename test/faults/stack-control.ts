/**
 * Control of the running stack for the fault suite, without blocking the event loop (the
 * signup stream keeps flowing while a service restarts), plus the "supervisor" that brings
 * the stack back to healthy after a fault, as a process supervisor (Kubernetes, systemd,
 * compose's restart policy) would: a process that is gone is started again. Nothing here
 * touches a connector: a FAILED task is the connect-watchdog's to restart, and the suite
 * only waits for it (no `make connectors`, no restart call: no operator step).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, STATE_DIR, stackEnv, connectRest } from '../support/env';
import { dwFaults, sfmcFaults } from '../support/standins';
import { waitFor } from '../support/wait';

const run = promisify(execFile);

/** KAFKA_NODES=3 (`make test-cluster`): nodes 2 and 3 of the local Kafka cluster are services too. */
export const KAFKA_NODES = Number(process.env.KAFKA_NODES ?? '1');
const ALL_SERVICES = [
  'mariadb',
  'kafka',
  'kafka-2',
  'kafka-3',
  'registry',
  'connect',
  'connect-watchdog',
  'dw-standin',
  'sfmc-standin',
  'augmenter',
  'emailer',
  // its liveness exits it while Kafka is away (as it should): without a restart here the suites
  // after a Kafka restart ran without it, and the stack tests after them failed (seen in issue 21's run)
  'delivery-status',
] as const;
export type Service = (typeof ALL_SERVICES)[number];
/** The services of this stack, each started again by the supervisor when gone. */
export const SERVICES: readonly Service[] = ALL_SERVICES.filter((s) => KAFKA_NODES >= 3 || (s !== 'kafka-2' && s !== 'kafka-3'));
/** The connectors this pipeline owns (others on the worker belong to other tests). */
export const CONNECTORS = ['members-source', 'welcome-audit'] as const;

/** `stack/bin/stack ARGS...` asynchronously; resolves with its output, rejects with it. */
export async function stackAsync(...args: string[]): Promise<string> {
  return stackWithEnv({}, ...args);
}

async function stackWithEnv(extraEnv: Record<string, string>, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(join(ROOT, 'stack/bin/stack'), args, {
      env: { ...process.env, ...extraEnv },
      maxBuffer: 16 << 20,
      timeout: 300_000,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`stack ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

export function recordedPid(service: Service): number | undefined {
  const file = join(STATE_DIR, 'pids', `${service}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const isUp = (service: Service): boolean => alive(recordedPid(service));

const HEALTH: Partial<Record<Service, string>> = {
  augmenter: `${stackEnv.augmenterMetrics}/healthz`,
  emailer: `${stackEnv.emailerMetrics}/healthz`,
  'dw-standin': `${stackEnv.dwUrl}/healthz`,
  'sfmc-standin': `${stackEnv.sfmcUrl}/healthz`,
};

async function healthy(service: Service): Promise<boolean> {
  if (!isUp(service)) return false;
  const url = HEALTH[service];
  if (!url) return true;
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(3_000) })).ok;
  } catch {
    return false;
  }
}

/**
 * `stack up SERVICE`. Other engineers restart services of the same stack: when their start
 * races ours (both write the pid file, one of the two processes loses), the service is up
 * all the same — that is a note, not a failure. Returns the note, if any.
 */
export async function bringUp(service: Service): Promise<string | undefined> {
  try {
    // No TypeScript rebuild (dist/ is built by `make test-faults`): a supervisor restarts a
    // crashed process at once; a 60 s tsc on the loaded CI machine is not part of the fault.
    await stackWithEnv({ STACK_SKIP_BUILD: '1' }, 'up', service);
    return undefined;
  } catch (err) {
    await waitFor(`${service} to be up (after: ${String(err).split('\n')[0]})`, () => healthy(service), 90_000, 500);
    return `stack up ${service} raced with another start; ${service} is up (pid ${recordedPid(service)})`;
  }
}

/** kill -9 by the recorded pid (never by name). Returns the pid killed. */
export function kill9(service: Service): number {
  const pid = recordedPid(service);
  if (pid === undefined || !alive(pid)) throw new Error(`${service} is not running (no live recorded pid)`);
  process.kill(pid, 'SIGKILL');
  return pid;
}

interface TaskStatus {
  id: number;
  state: string;
  trace?: string;
}
export interface ConnectorStatus {
  name: string;
  connector: { state: string; trace?: string };
  tasks: TaskStatus[];
}

export async function connectorStatus(name: string): Promise<ConnectorStatus | undefined> {
  try {
    const res = await connectRest.fetch(`/connectors/${encodeURIComponent(name)}/status`, { signal: AbortSignal.timeout(5_000) });
    return res.status === 200 ? ((await res.json()) as ConnectorStatus) : undefined;
  } catch {
    return undefined; // the worker is not answering (restarting)
  }
}

export const connectorRunning = (s: ConnectorStatus | undefined): boolean =>
  s !== undefined && s.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING');

export const connectorFailed = (s: ConnectorStatus | undefined): boolean =>
  s !== undefined && (s.connector.state === 'FAILED' || s.tasks.some((t) => t.state === 'FAILED'));

/** One series of the watchdog's /metrics (0 when absent or the watchdog does not answer). */
export async function watchdogMetric(name: string, connector: string): Promise<number> {
  try {
    const text = await (
      await fetch(`http://127.0.0.1:${process.env.WATCHDOG_HTTP_PORT ?? '9466'}/metrics`, { signal: AbortSignal.timeout(3_000) })
    ).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{connector="${connector}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  } catch {
    return 0;
  }
}

/** Restarts the watchdog made so far, per connector (for "what healed it" notes). */
export async function watchdogRestarts(): Promise<Map<string, number>> {
  return new Map(
    await Promise.all(CONNECTORS.map(async (c) => [c, await watchdogMetric('welcome_connect_watchdog_restarts_total', c)] as [string, number])),
  );
}

/**
 * One supervision pass, as production's process supervisor does it: a service process that
 * is gone is started again. A FAILED connector or task is only noted: the connect-watchdog
 * restarts it. Each action or observation is returned as a note for the summary table.
 */
export async function superviseOnce(): Promise<string[]> {
  const notes: string[] = [];
  for (const service of SERVICES) {
    if (!isUp(service)) {
      notes.push(`${service} was down → stack up ${service}`);
      const raced = await bringUp(service);
      if (raced) notes.push(raced);
    }
  }
  for (const name of CONNECTORS) {
    const s = await connectorStatus(name);
    if (connectorFailed(s))
      notes.push(
        `${name} FAILED (${
          s?.tasks
            .find((t) => t.state === 'FAILED')
            ?.trace?.split('\n')[0]
            ?.slice(0, 120) ?? s?.connector.state
        }); left to the watchdog`,
      );
  }
  return notes;
}

/** Leaves the stack as the suite found it: no injected faults, every service up, connectors RUNNING. */
export async function restoreStack(): Promise<string[]> {
  const notes: string[] = [];
  await sfmcFaults(null).catch((err: unknown) => notes.push(`SFMC faults reset failed: ${String(err)}`));
  await dwFaults(null).catch((err: unknown) => notes.push(`warehouse faults reset failed: ${String(err)}`));
  notes.push(...(await superviseOnce()));
  // The watchdog brings FAILED connectors back (its backoff is at most 60 s a step).
  for (const name of CONNECTORS) {
    await waitFor(
      `${name} RUNNING (restarted by the connect-watchdog if it FAILED)`,
      async () => {
        notes.push(...(await superviseOnce()));
        return connectorRunning(await connectorStatus(name));
      },
      300_000,
      1_000,
    );
  }
  // Faults again: a restarted stand-in starts clean, but one that stayed up may have been re-faulted meanwhile.
  await sfmcFaults(null).catch(() => undefined);
  await dwFaults(null).catch(() => undefined);
  return [...new Set(notes)];
}
