/**
 * Stages started from their real entry points (dist/…/main.js) by a stack test, with their own
 * environment and log file, stopped by their pid: the secured-Kafka tests (SASL_SSL, mutual TLS)
 * each run stages this way.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, STATE_DIR } from './env';
import { waitFor } from './wait';

export type StageName = 'augmenter' | 'emailer' | 'delivery-status';

export interface StartedStage {
  child: ChildProcess;
  log: string;
}

const started: ChildProcess[] = [];

/** One stage's process; its stdout and stderr go to $STATE_DIR/logs/<logName>.log. */
export function startStage(stage: StageName, env: NodeJS.ProcessEnv, logName: string): StartedStage {
  const log = join(STATE_DIR, 'logs', `${logName}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'consumers', stage, 'main.js')], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  started.push(child);
  return { child, log };
}

/** Until its /readyz answers 200; fails at once when it exits first (with where its log is). */
export async function waitReady({ child, log }: StartedStage, port: string, what: string): Promise<void> {
  await waitFor(
    `${what} ready`,
    async () => {
      if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: see ${log}`);
      return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok === true;
    },
    180_000,
    500,
  );
}

/** SIGTERM to every stage started here that still runs, and wait for each to exit. */
export async function stopStages(): Promise<void> {
  const running = started.filter((c) => c.pid !== undefined && c.exitCode === null && c.signalCode === null);
  const exited = running.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of running) process.kill(c.pid as number, 'SIGTERM');
  await Promise.all(exited);
}

/** tools/kafka-acls.ts apply: the topics, groups and ACLs of a path, by the admin. */
export function applyAcls(env: NodeJS.ProcessEnv): void {
  const acl = spawnSync(process.execPath, [join(ROOT, 'dist', 'tools', 'kafka-acls.js'), 'apply'], { env, encoding: 'utf8', timeout: 120_000 });
  if (acl.status !== 0) throw new Error(`kafka-acls apply failed: ${acl.stderr}`);
}
