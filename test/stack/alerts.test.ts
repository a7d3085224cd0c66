/**
 * Issue 14: the alert rules, loaded by the stack's own Prometheus, fire on real faults and
 * clear after recovery. The local Prometheus runs the production rules with every duration
 * divided by ALERT_TIME_SCALE (20): `for: 2m` is 6 s here. Each step prints the time from
 * the fault to the alert firing, read from Prometheus' API (polled every 500 ms).
 */
import type { Connection } from 'mysql2/promise';
import { bringUp, connectorRunning, connectorStatus, kill9 } from '../faults/stack-control';
import { insertMembers, rootDb } from '../support/db';
import { runId, connectRest } from '../support/env';
import { acceptedSends } from '../support/standins';
import { waitFor } from '../support/wait';
import type { PromAlert } from '../../tools/alerts-status';

jest.setTimeout(150_000);

const PROMETHEUS = `http://127.0.0.1:${process.env.PROMETHEUS_PORT ?? '9490'}`;

async function promApi<T>(path: string): Promise<T> {
  const res = await fetch(`${PROMETHEUS}${path}`, { signal: AbortSignal.timeout(3_000) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return ((await res.json()) as { data: T }).data;
}

const matching = (alerts: PromAlert[], name: string, labels: Record<string, string>): PromAlert[] =>
  alerts.filter((a) => a.labels['alertname'] === name && Object.entries(labels).every(([k, v]) => a.labels[k] === v));

async function activeAlerts(name: string, labels: Record<string, string>): Promise<PromAlert[]> {
  return matching((await promApi<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts, name, labels);
}

/** Waits for the alert to fire; returns ms from `since` to the first poll that saw it firing. */
async function firesAfter(name: string, labels: Record<string, string>, since: number, timeoutMs = 45_000): Promise<number> {
  await waitFor(
    `${name} ${JSON.stringify(labels)} firing`,
    async () => (await activeAlerts(name, labels)).some((a) => a.state === 'firing'),
    timeoutMs,
    500,
  );
  return Date.now() - since;
}

async function clearsAfter(name: string, labels: Record<string, string>, since: number, timeoutMs = 45_000): Promise<number> {
  await waitFor(`${name} ${JSON.stringify(labels)} to clear`, async () => (await activeAlerts(name, labels)).length === 0, timeoutMs, 500);
  return Date.now() - since;
}

const connectPut = async (path: string): Promise<void> => {
  const res = await connectRest.fetch(path, { method: 'PUT', signal: AbortSignal.timeout(10_000) });
  if (res.status >= 300) throw new Error(`PUT ${path}: HTTP ${res.status} ${await res.text()}`);
};

const report: string[] = [];
const note = (line: string): void => {
  report.push(line);
};

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
  // Prometheus runs, scrapes every target of the pipeline, and loaded the rules
  await waitFor(
    'Prometheus to scrape augmenter, emailer, kafka and connect',
    async () => {
      const { activeTargets } = await promApi<{ activeTargets: { labels: Record<string, string>; health: string }[] }>(
        '/api/v1/targets?state=active',
      );
      const up = new Set(activeTargets.filter((t) => t.health === 'up').map((t) => t.labels['job']));
      return ['augmenter', 'emailer', 'kafka', 'connect'].every((j) => up.has(j));
    },
    60_000,
    500,
  );
  const { groups } = await promApi<{ groups: { rules: { name: string }[] }[] }>('/api/v1/rules');
  expect(groups.flatMap((g) => g.rules.map((r) => r.name))).toEqual(
    expect.arrayContaining(['ConnectorNotRunning', 'ConsumerDown', 'WelcomeSilentStop']),
  );
  await waitFor('members-source RUNNING', async () => connectorRunning(await connectorStatus('members-source')), 60_000, 500);
});
afterAll(async () => {
  await db.end();
  process.stdout.write(
    `\nalert timings (fault → firing, recovery → cleared; ALERT_TIME_SCALE=${process.env.ALERT_TIME_SCALE ?? '20'}):\n${report.map((l) => `  ${l}`).join('\n')}\n`,
  );
});

test('pausing the source connector fires ConnectorNotRunning and ConnectorTaskNotRunning; resuming clears both', async () => {
  await clearsAfter('ConnectorNotRunning', { connector: 'members-source' }, Date.now());
  const paused = Date.now();
  try {
    await connectPut('/connectors/members-source/pause');
    const [connectorMs, taskMs] = await Promise.all([
      firesAfter('ConnectorNotRunning', { connector: 'members-source', status: 'paused' }, paused),
      firesAfter('ConnectorTaskNotRunning', { connector: 'members-source', state: 'paused' }, paused),
    ]);
    note(`ConnectorNotRunning      PUT members-source/pause → firing in ${(connectorMs / 1000).toFixed(1)} s`);
    note(`ConnectorTaskNotRunning  PUT members-source/pause → firing in ${(taskMs / 1000).toFixed(1)} s`);
  } finally {
    await connectPut('/connectors/members-source/resume');
  }
  const resumed = Date.now();
  await waitFor('members-source RUNNING again', async () => connectorRunning(await connectorStatus('members-source')), 60_000, 500);
  const [c, t] = await Promise.all([
    clearsAfter('ConnectorNotRunning', { connector: 'members-source' }, resumed),
    clearsAfter('ConnectorTaskNotRunning', { connector: 'members-source' }, resumed),
  ]);
  note(`ConnectorNotRunning / ConnectorTaskNotRunning  resume → cleared in ${(c / 1000).toFixed(1)} / ${(t / 1000).toFixed(1)} s`);
});

test('killing the emailer while members sign up fires ConsumerDown and WelcomeSilentStop; restarting it clears both and every member gets a Welcome', async () => {
  const prefix = `alert-${runId}-`;
  await clearsAfter('WelcomeSilentStop', {}, Date.now());
  const killed = Date.now();
  kill9('emailer');
  let n = 0;
  // signups keep arriving while the emailer is gone, as they would in production
  const signups = setInterval(() => {
    const i = n++;
    insertMembers(db, [
      { org_id: 'UA', org_member_id: `${prefix}${i}`, email: `${prefix}${i}@example.com`, first_name: 'Alert', last_name: 'Test', locale: 'en-US' },
    ]).catch((err: unknown) => note(`insert ${i} failed: ${String(err)}`));
  }, 2_000);
  try {
    const [downMs, silentMs] = await Promise.all([
      firesAfter('ConsumerDown', { job: 'emailer' }, killed),
      // Welcomes sent just before the kill stay in the (scaled, 30-s) window: up to 30 s + for
      firesAfter('WelcomeSilentStop', {}, killed, 60_000),
    ]);
    note(`ConsumerDown             kill -9 emailer → firing in ${(downMs / 1000).toFixed(1)} s`);
    note(`WelcomeSilentStop        kill -9 emailer, a signup every 2 s → firing in ${(silentMs / 1000).toFixed(1)} s`);
  } finally {
    clearInterval(signups);
    await bringUp('emailer');
  }
  const restarted = Date.now();
  const [d, s] = await Promise.all([clearsAfter('ConsumerDown', { job: 'emailer' }, restarted), clearsAfter('WelcomeSilentStop', {}, restarted)]);
  note(`ConsumerDown / WelcomeSilentStop  emailer restarted → cleared in ${(d / 1000).toFixed(1)} / ${(s / 1000).toFixed(1)} s`);
  const inserted = n;
  const sends = await waitFor(
    `${inserted} Welcomes after the restart`,
    async () => {
      const got = await acceptedSends(prefix);
      return got.length >= inserted ? got : undefined;
    },
    60_000,
    500,
  );
  expect(sends).toHaveLength(inserted);
  expect(new Set(sends.map((x) => x.messageKey)).size).toBe(inserted);
});
