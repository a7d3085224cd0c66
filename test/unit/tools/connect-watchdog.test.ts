/**
 * The Connect watchdog's loop against a scripted Connect REST API (a throwaway node:http
 * server): one connector without a status must not stop the others' restarts, and a give-up
 * must survive a restart of the watchdog (issue 20, item 7).
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWatchdog, loadConfig, type WatchdogConfig } from '../../../tools/connect-watchdog';
import { createLogger } from '../../../consumers/shared/logger';

const FAILED = { status: { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'FAILED', trace: 'boom' }] } };

interface FakeConnect {
  url: string;
  restarts: string[];
  answer: Record<string, unknown>;
  close(): Promise<void>;
}

async function fakeConnect(answer: Record<string, unknown>): Promise<FakeConnect> {
  const fake = { restarts: [] as string[], answer };
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/connectors?expand=status')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(fake.answer));
    } else if (req.method === 'POST' && req.url?.includes('/restart')) {
      fake.restarts.push(decodeURIComponent(req.url.split('/')[2] ?? ''));
      res.writeHead(202).end();
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

const silent = createLogger('test', 'silent');
const config = (url: string, extra: Record<string, string> = {}): WatchdogConfig =>
  loadConfig({ CONNECT_URL: url, WATCHDOG_BACKOFF_INITIAL_MS: '0', WATCHDOG_MAX_RESTARTS: '2', ...extra });

test('a connector Connect answers without a status is skipped; the FAILED one beside it is still restarted', async () => {
  const connect = await fakeConnect({ 'members-source': FAILED, 'welcome-audit': {}, 'welcome-delivery-status': { status: null } });
  try {
    const watchdog = createWatchdog(config(connect.url), silent);
    await watchdog.pollOnce();
    expect(connect.restarts).toEqual(['members-source']);
    expect(await watchdog.metrics.connectUp.get()).toMatchObject({ values: [{ value: 1 }] });
  } finally {
    await connect.close();
  }
});

test('a give-up survives a restart of the watchdog: the new process does not restart the connector again', async () => {
  const connect = await fakeConnect({ 'members-source': FAILED });
  const stateFile = join(mkdtempSync(join(tmpdir(), 'watchdog-')), 'memory.json');
  try {
    let t = 0;
    const first = createWatchdog(config(connect.url, { WATCHDOG_STATE_FILE: stateFile }), silent, () => t);
    for (; t < 5; t++) await first.pollOnce();
    expect(connect.restarts).toHaveLength(2);
    expect((await first.metrics.gaveUp.get()).values).toEqual([{ labels: { connector: 'members-source' }, value: 1 }]);

    // The watchdog's process is restarted (a deploy, a crash): it still knows it gave up.
    const second = createWatchdog(config(connect.url, { WATCHDOG_STATE_FILE: stateFile }), silent, () => t);
    for (; t < 10; t++) await second.pollOnce();
    expect(connect.restarts).toHaveLength(2);
    expect((await second.metrics.gaveUp.get()).values).toEqual([{ labels: { connector: 'members-source' }, value: 1 }]);

    // Fixed by someone: RUNNING again, the give-up is over, also for the next process.
    connect.answer = { 'members-source': { status: { connector: { state: 'RUNNING' }, tasks: [{ id: 0, state: 'RUNNING' }] } } };
    await second.pollOnce();
    const third = createWatchdog(config(connect.url, { WATCHDOG_STATE_FILE: stateFile }), silent, () => t);
    await third.pollOnce();
    expect((await third.metrics.gaveUp.get()).values).toEqual([{ labels: { connector: 'members-source' }, value: 0 }]);
  } finally {
    await connect.close();
  }
});
