/**
 * Extra consumer instances for the scale-out run: the same entry points and groups as the
 * stack's own, on their own metrics ports. Started and stopped by the pid we got from
 * spawn — never by name — and stopped with SIGTERM so they commit and leave the group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './stats';

export interface Instance {
  name: string;
  pid: number;
  port: number;
  child: ChildProcess;
}

export function startInstance(root: string, logsDir: string, stage: 'augmenter' | 'emailer', index: number, port: number): Instance {
  const name = `bench-${stage}-${index}`;
  const log = openSync(join(logsDir, `${name}.log`), 'a');
  const child = spawn(process.execPath, [join(root, 'dist', 'consumers', stage, 'main.js')], {
    cwd: root,
    env: { ...process.env, HTTP_PORT: String(port) },
    stdio: ['ignore', log, log],
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  return { name, pid: child.pid, port, child };
}

export async function waitReady(i: Instance, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (i.child.exitCode !== null) throw new Error(`${i.name} (pid ${i.pid}) exited with ${i.child.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${i.port}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${i.name} (pid ${i.pid}) not ready after ${timeoutMs} ms`);
    await sleep(250);
  }
}

export async function stopInstance(i: Instance, timeoutMs = 30_000): Promise<void> {
  if (i.child.exitCode !== null || i.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => i.child.once('exit', () => resolve()));
  process.kill(i.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (i.child.exitCode === null) process.kill(i.pid, 'SIGKILL');
  }, timeoutMs);
  await exited;
  clearTimeout(timer);
}
