/**
 * Issue 10 on the real stack: the consumers heal by themselves.
 * - Fault 1 of the issue: SFMC answers 429 with Retry-After: 12 three times in a row. Before,
 *   the retries outlasted the session, the member was evicted, the commit crashed kafkajs for
 *   good and /healthz still said ok. Now the partition pauses for each Retry-After while the
 *   member keeps its session; the Welcome goes out once, by the same process, with /healthz 200
 *   throughout, and the pipeline keeps flowing afterwards.
 * - SIGTERM mid-stream (both stages, an SFMC call in flight): the in-flight chunk is finished
 *   and committed before the group is left, so no output record is written twice.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { memberKey } from '../../consumers/shared/member';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { insertMembers, rootDb, type MemberRow } from '../support/db';
import { runId, STATE_DIR, stackEnv } from '../support/env';
import { pidOf, stack } from '../support/pipeline';
import { acceptedSends, sfmcFaults } from '../support/standins';
import { waitFor } from '../support/wait';
import { asAugmented, readRange, startOffsets, type Offsets } from '../faults/topics';

jest.setTimeout(240_000);

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
  await sfmcFaults(null);
});
afterAll(async () => {
  await sfmcFaults(null).catch(() => undefined);
  await db.end();
});

const rows = (prefix: string, n: number): MemberRow[] =>
  Array.from({ length: n }, (_, i) => ({
    org_id: i % 2 === 0 ? 'UA' : 'AA',
    org_member_id: `${prefix}${String(i).padStart(4, '0')}`,
    email: `${prefix}${i}@example.com`,
    last_name: `L${i}`,
  }));

async function injected429(): Promise<number> {
  return ((await (await fetch(`${stackEnv.sfmcUrl}/__standin/stats`)).json()) as { injected: { fail429: number } }).injected.fail429;
}

/** Log lines of a consumer written since `since` (ms), as parsed JSON. */
function logSince(service: 'augmenter' | 'emailer', since: number): { msg?: string; level?: number }[] {
  return readFileSync(join(STATE_DIR, 'logs', `${service}.log`), 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        const e = JSON.parse(line) as { time?: string; msg?: string; level?: number };
        return Date.parse(String(e.time)) >= since ? [e] : [];
      } catch {
        return [];
      }
    });
}

test('fault 1: SFMC 429 with Retry-After: 12, three times in a row, heals by itself (same process, /healthz 200 throughout)', async () => {
  const prefix = `heal429-${runId}-`;
  const pid = pidOf('emailer');
  const t0 = Date.now();
  const before = await injected429();
  await sfmcFaults({ fail429: 3, retryAfterS: 12 });
  // One member: one partition, so the three 429s hit the same chunk one after the other.
  const [first] = rows(prefix, 1);
  await insertMembers(db, [first as MemberRow]);

  const health: number[] = [];
  const probe = setInterval(() => {
    fetch(`${stackEnv.emailerMetrics}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => health.push(r.status),
      () => health.push(0),
    );
  }, 1_000);
  let sentAt: number;
  try {
    await waitFor('the Welcome after three 429s', async () => (await acceptedSends(prefix)).length > 0, 120_000, 500);
    sentAt = Date.now();
  } finally {
    clearInterval(probe);
  }
  expect((await injected429()) - before).toBe(3);
  // Three Retry-After waits of 12 s: paused each time, not retried inside the chunk (budget 4 s), not evicted.
  expect(sentAt - t0).toBeGreaterThanOrEqual(30_000);
  expect(pidOf('emailer')).toBe(pid);
  expect(health.length).toBeGreaterThan(25);
  expect(health.every((s) => s === 200)).toBe(true);
  const log = logSince('emailer', t0);
  expect(log.filter((e) => /Crash|liveness failed|not aware of this member|re-joining/.test(e.msg ?? ''))).toEqual([]);
  expect(log.filter((e) => e.msg?.startsWith('dependency asked us to wait')).length).toBe(3);

  // ...and the pipeline still flows: ten more members, each sent once, promptly.
  const more = rows(prefix, 11).slice(1);
  await insertMembers(db, more);
  const sends = await waitFor(
    '10 more Welcomes',
    async () => {
      const s = await acceptedSends(prefix);
      return s.length >= 11 ? s : undefined;
    },
    30_000,
    300,
  );
  expect(new Set(sends.map((s) => s.messageKey)).size).toBe(11);
  expect(sends).toHaveLength(11);
});

test('SIGTERM of both stages mid-stream (an SFMC call in flight): no augmented record and no WelcomeSent written twice', async () => {
  const prefix = `healterm-${runId}-`;
  const members = rows(prefix, 80);
  const starts = new Map<string, Offsets>();
  for (const t of [stackEnv.augmentedTopic, stackEnv.sentTopic]) starts.set(t, await startOffsets(t));
  await sfmcFaults({ latencyMs: 1_500 });
  const term = async (service: 'augmenter' | 'emailer'): Promise<number> => {
    const pid = pidOf(service);
    const t = Date.now();
    process.kill(pid, 'SIGTERM');
    await waitFor(
      `${service} to exit`,
      async () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      15_000,
      50,
    );
    return Date.now() - t;
  };
  const exits: number[] = [];
  for (let i = 0; i < members.length; i += 5) {
    await insertMembers(db, members.slice(i, i + 5));
    if (i === 30) exits.push(await term('augmenter'));
    if (i === 50) exits.push(await term('emailer'));
    await new Promise((r) => setTimeout(r, 100)); // a steady stream
  }
  await sfmcFaults(null);
  // As a supervisor would: start the built dist/ again, no TypeScript rebuild first.
  process.env.STACK_SKIP_BUILD = '1';
  try {
    stack('up', 'augmenter', 'emailer');
  } finally {
    delete process.env.STACK_SKIP_BUILD;
  }
  const sends = await waitFor(
    '80 Welcomes',
    async () => {
      const s = await acceptedSends(prefix);
      return new Set(s.map((x) => x.messageKey)).size >= 80 ? s : undefined;
    },
    120_000,
    500,
  );
  expect(sends).toHaveLength(80);
  expect(exits.every((ms) => ms < 10_000)).toBe(true);

  const count = (keys: string[]): Map<string, number> => keys.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>());
  const expected = new Set(members.map((m) => memberKey(m.org_id, m.org_member_id)));
  await waitFor(
    '80 WelcomeSent records',
    async () => {
      const sent = (await readRange(stackEnv.sentTopic, starts.get(stackEnv.sentTopic) ?? new Map())).filter((r) =>
        expected.has(r.key?.toString() ?? ''),
      );
      return new Set(sent.map((r) => r.key?.toString())).size >= 80;
    },
    60_000,
    1_000,
  );
  const augmented: string[] = [];
  for (const r of await readRange(stackEnv.augmentedTopic, starts.get(stackEnv.augmentedTopic) ?? new Map())) {
    const m = await asAugmented(r.value);
    if (m && expected.has(memberKey(m.org_id, m.org_member_id))) augmented.push(memberKey(m.org_id, m.org_member_id));
  }
  const welcomeSent = (await readRange(stackEnv.sentTopic, starts.get(stackEnv.sentTopic) ?? new Map()))
    .map((r) => r.key?.toString() ?? '')
    .filter((k) => expected.has(k));
  const twice = (m: Map<string, number>): string[] => [...m].filter(([, n]) => n > 1).map(([k]) => k);
  expect(new Set(augmented).size).toBe(80);
  expect(twice(count(augmented))).toEqual([]);
  expect(twice(count(welcomeSent))).toEqual([]);
  expect(new Set(sends.map((s) => s.messageKey))).toEqual(new Set(members.map((m) => welcomeMessageKey(m.org_id, m.org_member_id))));
});
