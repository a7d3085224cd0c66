/**
 * Issue 10, faults 2 and 3: Connect heals by itself. Nothing in these tests restarts a
 * connector or runs `make connectors`; they break a dependency, wait, and check.
 *  - the registry is down while the source task needs a schema it has not cached: the task
 *    FAILS, and the connect-watchdog brings it back RUNNING once the registry is back, with
 *    the member written meanwhile delivered;
 *  - MariaDB restarts while members sign up: the source resumes, the audit sink's own retry
 *    budget rides out the outage (a commit cut off mid-flight fails the task once, and the
 *    watchdog restarts it), every audit row arrives, no task stays FAILED.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { memberKey } from '../../consumers/shared/member';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { insertMembers, query, rootDb, type MemberRow } from '../support/db';
import { runId, connectRest } from '../support/env';
import { stackAsync } from '../faults/stack-control';
import { stack } from '../support/pipeline';
import { acceptedSends } from '../support/standins';
import { waitFor } from '../support/wait';

jest.setTimeout(420_000);

const watchdogUrl = `http://127.0.0.1:${process.env.WATCHDOG_HTTP_PORT ?? '9466'}`;

interface TaskStatus {
  id: number;
  state: string;
  trace?: string;
}
interface Status {
  connector: { state: string };
  tasks: TaskStatus[];
}

async function status(name: string): Promise<Status | undefined> {
  try {
    const res = await connectRest.fetch(`/connectors/${name}/status`, { signal: AbortSignal.timeout(5_000) });
    return res.ok ? ((await res.json()) as Status) : undefined;
  } catch {
    return undefined;
  }
}
const running = (s: Status | undefined): boolean =>
  s !== undefined && s.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING');

/** One series of the watchdog's /metrics, e.g. restarts('welcome_connect_watchdog_restarts_total', 'members-source'). */
async function watchdogMetric(name: string, connector: string): Promise<number> {
  const text = await (await fetch(`${watchdogUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{connector="${connector}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const members = (prefix: string, n: number): MemberRow[] =>
  Array.from({ length: n }, (_, i) => ({
    org_id: i % 2 === 0 ? 'UA' : 'AA',
    org_member_id: `${prefix}${String(i).padStart(4, '0')}`,
    email: `${prefix}${i}@example.com`,
    last_name: `Last${i}`,
  }));

async function sentOnce(rows: MemberRow[], prefix: string): Promise<{ missing: string[]; twice: string[] }> {
  const sends = await acceptedSends(prefix);
  const count = new Map<string, number>();
  for (const s of sends) count.set(s.messageKey, (count.get(s.messageKey) ?? 0) + 1);
  const keys = rows.map((r) => welcomeMessageKey(r.org_id, r.org_member_id));
  return { missing: keys.filter((k) => !count.has(k)), twice: keys.filter((k) => (count.get(k) ?? 0) > 1) };
}

let db: Connection | undefined;

beforeAll(() => {
  // a service that is down would make these tests wait out their deadlines for nothing
  const down = stack('status')
    .split('\n')
    .filter((l) => / down\b/.test(l))
    .map((l) => l.split(/\s+/)[0]);
  if (down.length > 0) throw new Error(`services down before the test: ${down.join(', ')} (make up)`);
});
const openDb = async (): Promise<Connection> => (db ??= await rootDb());

afterAll(async () => {
  // never leave the stack broken for the next test: both are no-ops when already up
  stack('up', 'registry');
  stack('up', 'mariadb');
  await db?.end().catch(() => undefined);
});

test('fault 2: the source task FAILED by a registry outage on an uncached schema is RUNNING again by the watchdog, nothing lost', async () => {
  expect(running(await status('members-source'))).toBe(true);
  const prefix = `heal2-${runId}-`;
  const restartsBefore = await watchdogMetric('welcome_connect_watchdog_restarts_total', 'members-source');

  stack('down', 'registry');
  // A restarted task has a new converter with an empty schema cache: the next record needs the
  // registry (what a freshly restarted Connect worker meets; the fault suite does that one).
  const restart = await connectRest.fetch(`/connectors/members-source/tasks/0/restart`, { method: 'POST' });
  expect(restart.status).toBeLessThan(300);
  const rows = members(prefix, 4);
  await insertMembers(await openDb(), rows);
  const failed = await waitFor(
    'members-source task 0 FAILED while the registry is down',
    async () => {
      const s = await status('members-source');
      return s?.tasks.find((t) => t.state === 'FAILED');
    },
    180_000,
    500,
  );
  process.stdout.write(`source task failed as expected: ${failed.trace?.split('\n')[0]}\n`);

  stack('up', 'registry');
  // The watchdog (not this test) restarts the task, with backoff, until it runs.
  await waitFor('members-source RUNNING again', async () => running(await status('members-source')), 240_000, 1_000);
  expect(await watchdogMetric('welcome_connect_watchdog_restarts_total', 'members-source')).toBeGreaterThan(restartsBefore);
  expect(await watchdogMetric('welcome_connect_watchdog_gave_up', 'members-source')).toBe(0);
  // …and the members written while it was FAILED get their Welcome, once.
  const outcome = await waitFor(
    'every member written during the outage sent',
    async () => {
      const o = await sentOnce(rows, prefix);
      return o.missing.length === 0 ? o : undefined;
    },
    120_000,
    1_000,
  );
  expect(outcome.twice).toEqual([]);
});

test('fault 3: MariaDB restarts while members sign up: every audit row arrives, no task stays FAILED', async () => {
  for (const name of ['members-source', 'welcome-audit']) expect({ name, running: running(await status(name)) }).toEqual({ name, running: true });
  const prefix = `heal3-${runId}-`;
  const rows = members(prefix, 120);
  const sinkRestartsBefore = await watchdogMetric('welcome_connect_watchdog_restarts_total', 'welcome-audit');

  // Signups at ~40/s in transactions of 10; the database restarts after the first third. A
  // signup that meets the restart is retried on a new connection (a duplicate key means it
  // had committed), as the application writing members would do.
  let restarted: Promise<number> | undefined;
  for (let i = 0; i < rows.length; i += 10) {
    if (i === 40) {
      restarted = (async () => {
        const t0 = Date.now();
        await stackAsync('restart', 'mariadb'); // asynchronous: the signups keep coming meanwhile
        return (Date.now() - t0) / 1000;
      })();
    }
    const chunk = rows.slice(i, i + 10);
    await waitFor(
      `signups ${i}..${i + 9} committed`,
      async () => {
        try {
          await insertMembers(await openDb(), chunk);
          return true;
        } catch (err) {
          if ((err as { code?: string }).code === 'ER_DUP_ENTRY') return true;
          await db?.end().catch(() => undefined);
          db = undefined;
          throw err;
        }
      },
      120_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 250)); // the pace of the signups, not a wait for an outcome
  }
  const restartS = await restarted;
  process.stdout.write(`stack restart mariadb took ${restartS?.toFixed(1)} s\n`);
  // the signups may all have gone in before the old server stopped (a slow `stack restart`
  // under load): the cached connection then belongs to a server that is gone
  await db?.end().catch(() => undefined);
  db = undefined;

  const outcome = await waitFor(
    'every member sent',
    async () => {
      const o = await sentOnce(rows, prefix);
      return o.missing.length === 0 ? o : undefined;
    },
    180_000,
    1_000,
  );
  expect(outcome.twice).toEqual([]);
  const audit = await waitFor(
    'an audit row for every member',
    async () => {
      const got = await query<RowDataPacket>(
        await openDb(),
        'SELECT org_id, org_member_id FROM new_members_sent_to_salesforce WHERE org_member_id LIKE ?',
        [`${prefix}%`],
      );
      return got.length === rows.length ? got : undefined;
    },
    120_000,
    1_000,
  );
  expect(new Set(audit.map((r) => memberKey(String(r.org_id), String(r.org_member_id)))).size).toBe(rows.length);
  for (const name of ['members-source', 'welcome-audit']) {
    const s = await status(name);
    expect({ name, failed: s?.tasks.filter((t) => t.state === 'FAILED').map((t) => t.trace?.split('\n')[0]) }).toEqual({ name, failed: [] });
  }
  // The sink's own retries (connection.restart.on.errors, flush.max.retries) cover a database
  // that is not there when a flush starts. A commit that was in flight when the server went
  // away fails as a TransactionException, which Debezium 3.5 does not retry: the task FAILS
  // and the watchdog restarts it (the upsert makes the re-written batch harmless). Either way
  // it must not have needed the watchdog to give up, nor more than a couple of restarts.
  const sinkRestarts = (await watchdogMetric('welcome_connect_watchdog_restarts_total', 'welcome-audit')) - sinkRestartsBefore;
  process.stdout.write(`audit sink restarts by the watchdog during the database restart: ${sinkRestarts}\n`);
  expect(sinkRestarts).toBeLessThanOrEqual(2);
  expect(await watchdogMetric('welcome_connect_watchdog_gave_up', 'welcome-audit')).toBe(0);
});
