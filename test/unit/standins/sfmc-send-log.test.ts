import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileLog, MemoryLog } from '../../../standins/sfmc/send-log';
import { SfmcStandinState, type AcceptedSend } from '../../../standins/sfmc/state';

/**
 * The stand-in keeps its sends in a log and only a compact index in memory: these pin down
 * that the log gives back exactly what the old all-in-memory Map did (latest send per key,
 * in the order received, `since` inclusive, clear, restart), and that a send survives a
 * kill -9 of the stand-in though nothing is fsynced.
 */
const ROOT = join(__dirname, '..', '..', '..');
let dir: string;
let clock: number;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sfmc-log-'));
  clock = Date.parse('2026-05-01T12:00:00Z');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const DAY = 24 * 3600_000;
function stateOn(dataFile?: string): SfmcStandinState {
  return new SfmcStandinState({
    clientId: 'c',
    clientSecret: 's',
    definitionKeys: ['welcome-ua'],
    tokenTtlS: 60,
    dedupWindowMs: 2 * DAY,
    ...(dataFile ? { dataFile } : {}),
    now: () => clock,
  });
}
const send = (key: string, extra: Partial<AcceptedSend> = {}): AcceptedSend => ({
  messageKey: key,
  contactKey: `ck-${key}`,
  to: `${key}@example.com`,
  definitionKey: 'welcome-ua',
  attributes: { Name: 'Zoë ✓' }, // multi-byte UTF-8: byte offsets must not be character offsets
  receivedAt: new Date(clock).toISOString(),
  requestId: 'r',
  ...extra,
});
const keys = (s: SfmcStandinState, since?: number): string[] => s.listSends(since).map((x) => x.messageKey);

describe.each([
  ['file', () => join(dir, 'sends.jsonl')],
  ['memory', () => undefined],
])('send log (%s)', (_name, file) => {
  test('latest send per key in the order received; since is inclusive; status reads the latest', () => {
    const s = stateOn(file());
    s.accept(send('a'));
    clock += 10;
    s.accept(send('b'));
    s.commit();
    clock += 2 * DAY + 1;
    expect(s.sentRecently('a')).toBe(false);
    s.accept(send('a', { to: 'again@example.com' })); // re-sent after the window
    s.commit();
    expect(keys(s)).toEqual(['b', 'a']);
    expect(keys(s, clock)).toEqual(['a']);
    expect(keys(s, clock + 1)).toEqual([]);
    expect(keys(s, clock - 2 * DAY - 1)).toEqual(['b', 'a']);
    expect(s.find('a')?.to).toBe('again@example.com');
    expect(s.find('b')?.attributes).toEqual({ Name: 'Zoë ✓' });
    expect(s.sentRecently('a')).toBe(true);
    expect(s.sendCount).toBe(2);
    s.clearSends();
    expect(keys(s)).toEqual([]);
    expect(s.find('a')).toBeUndefined();
    s.accept(send('c'));
    s.commit();
    expect(keys(s)).toEqual(['c']);
    s.close();
  });

  test('an injected clock that goes backwards still lists by time, not by position', () => {
    const s = stateOn(file());
    s.accept(send('late'));
    clock -= 1000;
    s.accept(send('early'));
    s.commit();
    expect(keys(s, clock)).toEqual(['late', 'early']);
    expect(keys(s, clock + 1)).toEqual(['late']);
    s.close();
  });
});

test('a restart reloads the file: dedup, listing, status and re-sends as before it', () => {
  const file = join(dir, 'sends.jsonl');
  const first = stateOn(file);
  for (let i = 0; i < 5000; i++) first.accept(send(`k${i}`));
  first.commit();
  clock += 2 * DAY + 1;
  first.accept(send('k1', { to: 'second@example.com' }));
  first.commit();
  first.close();

  const second = stateOn(file);
  expect(second.sendCount).toBe(5000);
  expect(second.sentRecently('k1')).toBe(true);
  expect(second.sentRecently('k2')).toBe(false); // its window is over
  expect(second.find('k1')?.to).toBe('second@example.com');
  const all = keys(second);
  expect(all).toHaveLength(5000);
  expect(all[0]).toBe('k0');
  expect(all[all.length - 1]).toBe('k1');
  expect(keys(second, clock)).toEqual(['k1']);
  second.close();
});

test('a torn last line (crash mid-write) is cut off, so the next send gets a line of its own', () => {
  const file = join(dir, 'sends.jsonl');
  const first = stateOn(file);
  first.accept(send('kept'));
  first.commit();
  first.close();
  appendFileSync(file, '{"messageKey":"torn","rece');

  const second = stateOn(file);
  expect(keys(second)).toEqual(['kept']);
  second.accept(send('after'));
  second.commit();
  second.close();
  expect(
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as AcceptedSend).messageKey),
  ).toEqual(['kept', 'after']);
  expect(keys(stateOn(file))).toEqual(['kept', 'after']);
});

test('reads across the 4-MiB chunks of a large file give every line back whole', () => {
  const file = join(dir, 'big.jsonl');
  const seen: string[] = [];
  const log = new FileLog(file, () => undefined);
  const big = 'x'.repeat(300_000); // ~14 lines per chunk
  const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ i, big }));
  log.append(lines.slice(0, 20));
  log.append(lines.slice(20));
  log.close();
  const reopened = new FileLog(file, (entry, line) => seen.push(`${entry}:${(JSON.parse(line) as { i: number }).i}`));
  expect(seen).toEqual(lines.map((_, i) => `${i}:${i}`));
  expect([...reopened.read(0, 40)]).toEqual(lines);
  expect([...reopened.read(13, 15)]).toEqual(lines.slice(13, 15));
  reopened.close();
  const mem = new MemoryLog();
  mem.append(lines);
  expect([...mem.read(38, 99)]).toEqual(lines.slice(38));
});

test('a send answered 202 survives kill -9 of the stand-in (no fsync: the page cache has it)', async () => {
  const file = join(dir, 'sends.jsonl');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', join(ROOT, 'standins', 'sfmc', 'server.ts')], {
    env: { ...process.env, SFMC_STANDIN_PORT: String(port), SFMC_STANDIN_HOST: '127.0.0.1', SFMC_STANDIN_DATA_FILE: file, LOG_LEVEL: 'silent' },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; !(await fetch(`${base}/healthz`).catch(() => undefined))?.ok; i++) {
      if (i > 200) throw new Error('stand-in did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const token = (await (
      await fetch(`${base}/v2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'local-client', client_secret: 'local-secret' }),
      })
    ).json()) as { access_token: string };
    const res = await fetch(`${base}/messaging/v1/email/messages/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.access_token}` },
      body: JSON.stringify({ definitionKey: 'welcome-ua', recipients: [{ contactKey: 'ck', to: 'a@example.com', messageKey: 'survivor' }] }),
    });
    expect(res.status).toBe(202);
    child.kill('SIGKILL');
    await exited;
    const after = new SfmcStandinState({
      clientId: 'c',
      clientSecret: 's',
      definitionKeys: [],
      tokenTtlS: 60,
      dedupWindowMs: 2 * DAY,
      dataFile: file,
      now: Date.now,
    });
    expect(after.sentRecently('survivor')).toBe(true);
    after.close();
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}, 30_000);
