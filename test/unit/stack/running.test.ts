/**
 * stack/bin/lib.sh `running SERVICE`: what `stack up` asks before starting a service. A
 * kill -9'd process stays a zombie until its parent reaps it, and `kill -0` still answers for
 * it; a recorded pid may also have been reused by another process. Neither is "running".
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
const state = mkdtempSync(join(tmpdir(), 'stack-running-'));

/** `running NAME` (exit status 0 = running) with the stack's own lib.sh, against a scratch state dir. */
function running(name: string): boolean {
  const script = `ROOT=${JSON.stringify(ROOT)}; STATE_DIR=${JSON.stringify(state)}; source "$ROOT/stack/bin/lib.sh" >/dev/null; running ${name}`;
  return spawnSync('bash', ['-c', script], { env: { PATH: process.env.PATH ?? '', HOME: state, STATE_DIR: state }, stdio: 'ignore' }).status === 0;
}
const record = (name: string, pid: number, start?: string): void => {
  execFileSync('mkdir', ['-p', join(state, 'pids')]);
  writeFileSync(join(state, 'pids', `${name}.pid`), `${pid}\n`);
  if (start !== undefined) writeFileSync(join(state, 'pids', `${name}.start`), `${start}\n`);
};
const startTime = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const linux = process.platform === 'linux';

(linux ? test : test.skip)(
  'a live process with its recorded start time is running; a reused pid and a zombie are not',
  async () => {
    // sh starts a child, then execs into a process that never reaps it: once killed, that child is a zombie.
    const parent = spawn('sh', ['-c', 'sleep 60 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const child = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
      record('svc', child, startTime(child));
      expect(running('svc')).toBe(true);

      record('reused', child, String(Number(startTime(child)) + 1)); // same pid, another process's start time
      expect(running('reused')).toBe(false);

      process.kill(child, 'SIGKILL');
      for (let i = 0; i < 500 && !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z '); i++) await sleep(20);
      expect(readFileSync(`/proc/${child}/stat`, 'utf8')).toContain(') Z ');
      expect(spawnSync('kill', ['-0', String(child)]).status).toBe(0); // what the old check relied on
      expect(running('svc')).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
    // each check starts a bash that sources lib.sh: under a loaded machine that takes seconds, not ms
  },
  60_000,
);

test('no pid file, or a pid that is gone: not running', () => {
  expect(running('never-started')).toBe(false);
  const gone = spawnSync('true').pid ?? 999_999;
  record('gone', gone);
  expect(running('gone')).toBe(false);
});
