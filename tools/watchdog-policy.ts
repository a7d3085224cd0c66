/**
 * What the Connect watchdog decides, without I/O: given what GET /connectors?expand=status
 * answered and what it remembers per connector, which connectors to restart now, which to
 * give up on, which have recovered. Kafka Connect never restarts a FAILED task by itself;
 * this is the rule that does it, with backoff and a limit, unit-tested with plain objects.
 *
 * Backoff: the first restart of a failure happens at once (the cause, e.g. a registry that
 * was restarting, is usually gone by the time the task failed); each further restart waits
 * twice as long as the one before (initial, 2×initial, … capped at max), counted from the
 * previous restart. A connector that has run for stableMs without failing starts the backoff
 * afresh: its next failure is restarted at once again.
 *
 * Limit: more than maxRestarts restarts of one connector within windowMs (24 h by default),
 * however long it ran in between: give up — no more restarts, loudly, until the connector runs
 * again (an operator fixed the cause and restarted it). A stable run does not forget them, or a
 * connector that fails after every run of stableMs would be restarted for ever, each failure
 * replaying and delaying what it was doing.
 */

export interface TaskState {
  id: number;
  state: string;
  trace?: string;
}
export interface ConnectorState {
  name: string;
  connector: { state: string; trace?: string };
  tasks: TaskState[];
}

export interface WatchdogPolicy {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Restarts of one connector allowed within windowMs; the next failure gives up. */
  maxRestarts: number;
  windowMs: number;
  /** RUNNING this long without a failure: its earlier restarts are forgotten (a new incident starts afresh). */
  stableMs: number;
}

/** What the watchdog remembers about one connector between polls. */
export interface Memory {
  /** Times of the restarts within the window (oldest first): the limit. */
  restarts: number[];
  /** Restarts since the connector last ran stableMs without failing: the backoff. */
  burst?: number;
  gaveUp: boolean;
  /** The connector was seen failing since it last ran (so a RUNNING state is a recovery). */
  failing: boolean;
  /** Since when it has been RUNNING without interruption (undefined: not running). */
  runningSince?: number;
}

export type Decision =
  | { kind: 'restart'; connector: string; attempt: number; traces: string[] }
  | { kind: 'wait'; connector: string; untilMs: number }
  | { kind: 'give-up'; connector: string; restarts: number; traces: string[] }
  | { kind: 'recovered'; connector: string; restarts: number; gaveUp: boolean };

export const emptyMemory = (): Memory => ({ restarts: [], burst: 0, gaveUp: false, failing: false });

export const isFailed = (s: ConnectorState): boolean => s.connector.state === 'FAILED' || s.tasks.some((t) => t.state === 'FAILED');

export const isRunning = (s: ConnectorState): boolean =>
  s.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING');

/** The first line of a Java trace and its "Caused by:" lines (at most `max`): the reason, not 200 frames. */
export function traceHead(trace: string | undefined, max = 4): string {
  if (!trace) return '(no trace)';
  const lines = trace.split('\n').map((l) => l.trim());
  return [lines[0] ?? '', ...lines.filter((l) => l.startsWith('Caused by:'))].slice(0, max).join(' | ');
}

export function failedTraces(s: ConnectorState): string[] {
  const out: string[] = [];
  if (s.connector.state === 'FAILED') out.push(`connector: ${traceHead(s.connector.trace)}`);
  for (const t of s.tasks) if (t.state === 'FAILED') out.push(`task ${t.id}: ${traceHead(t.trace)}`);
  return out;
}

/** Delay before the restart that would follow `done` restarts within the window. */
export function backoffMs(policy: WatchdogPolicy, done: number): number {
  if (done <= 0) return 0;
  return Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (done - 1));
}

/**
 * One decision for one connector; returns the memory to keep. A decision of `restart` is a
 * promise to POST the restart: the caller records it with `recordRestart` only when Connect
 * accepted it (a 409 during a rebalance is simply tried again at the next poll).
 */
export function decide(policy: WatchdogPolicy, s: ConnectorState, before: Memory, now: number): { decision?: Decision; memory: Memory } {
  const restarts = before.restarts.filter((t) => now - t < policy.windowMs);
  const memory: Memory = { ...before, restarts };
  if (isRunning(s)) {
    const runningSince = before.runningSince ?? now;
    // After stableMs of running a later failure is restarted at once again (the backoff starts
    // afresh), but its restarts stay counted within the window: a connector that flaps, or
    // that fails after every long run, still reaches the limit.
    const burst = now - runningSince >= policy.stableMs ? 0 : (before.burst ?? 0);
    if (!before.failing && !before.gaveUp) return { memory: { ...memory, burst, runningSince } };
    return {
      decision: { kind: 'recovered', connector: s.name, restarts: restarts.length, gaveUp: before.gaveUp },
      memory: { restarts, burst, gaveUp: false, failing: false, runningSince },
    };
  }
  delete memory.runningSince;
  if (!isFailed(s)) return { memory }; // UNASSIGNED, RESTARTING, PAUSED, STOPPED: not ours to touch
  memory.failing = true;
  if (before.gaveUp) return { memory };
  const traces = failedTraces(s);
  if (restarts.length >= policy.maxRestarts) {
    return { decision: { kind: 'give-up', connector: s.name, restarts: restarts.length, traces }, memory: { ...memory, gaveUp: true } };
  }
  const last = restarts[restarts.length - 1];
  const due = last === undefined ? now : last + backoffMs(policy, Math.min(memory.burst ?? 0, restarts.length));
  if (now < due) return { decision: { kind: 'wait', connector: s.name, untilMs: due }, memory };
  return { decision: { kind: 'restart', connector: s.name, attempt: restarts.length + 1, traces }, memory };
}

export const recordRestart = (m: Memory, now: number): Memory => ({ ...m, restarts: [...m.restarts, now], burst: (m.burst ?? 0) + 1 });
