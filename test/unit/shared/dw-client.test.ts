import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AnswerError, classify, toAnswer } from '../../../consumers/shared/answers';
import { LOOKUP_ANSWERS } from '../../../consumers/shared/dw-answers';
import { isTransient } from '../../../consumers/shared/errors';
import { createLogger } from '../../../consumers/shared/logger';
import type { RetryPolicy } from '../../../consumers/shared/retry';
import { createDwKeyClient, memberRef, type DwKeyClient, type DwKeyClientConfig, type Member } from '../../../consumers/shared/dw-client';
import { createDwKeyApiStandin, type DwKeyApiStandin } from '../../../standins/dw-key-api/server';

const TOKEN = 'sekret-dw-token-123';
const FAST_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 5, maxDelayMs: 500 };

describe('DW Subscriber Key client', () => {
  let standin: DwKeyApiStandin;
  let client: DwKeyClient | undefined;
  let logLines: string[];
  let httpCalls: Array<{ route: string; status: number | 'error' }>;

  beforeAll(async () => {
    standin = await createDwKeyApiStandin({ token: TOKEN });
  });
  afterAll(() => standin.close());

  beforeEach(() => {
    standin.resetFaults();
    logLines = [];
    httpCalls = [];
  });

  afterEach(async () => {
    await client?.close();
    client = undefined;
    // The token travels only in the Authorization header: never in any log line.
    expect(logLines.join('\n')).not.toContain(TOKEN);
  });

  function makeClient(overrides: Partial<DwKeyClientConfig> = {}, baseUrl = standin.url): DwKeyClient {
    client = createDwKeyClient(
      { baseUrl, apiToken: TOKEN, requestTimeoutMs: 2_000, retry: FAST_RETRY, ...overrides },
      {
        logger: createLogger('dw-client-test', 'debug', { write: (line: string) => void logLines.push(line) }),
        onHttp: (route, status) => httpCalls.push({ route, status }),
      },
    );
    return client;
  }

  async function rejection(promise: Promise<unknown>): Promise<AnswerError> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AnswerError);
    return err as AnswerError;
  }

  const members = (n: number, orgId = 'UA', prefix = 'm'): Member[] => Array.from({ length: n }, (_, i) => ({ orgId, memberId: `${prefix}-${i}` }));

  it('returns one result per distinct member, keyed by memberRef, with per-member errors', async () => {
    const dw = makeClient();
    const results = await dw.lookup([
      { orgId: 'UA', memberId: '1' },
      { orgId: 'UA', memberId: '1' },
      { orgId: 'AA', memberId: '1' },
      { orgId: 'ZZ', memberId: '1' },
      { orgId: 'UA', memberId: '' },
    ]);
    expect([...results.keys()]).toEqual([memberRef('UA', '1'), memberRef('AA', '1'), memberRef('ZZ', '1'), memberRef('UA', '')]);
    const ua = results.get(memberRef('UA', '1'));
    const aa = results.get(memberRef('AA', '1'));
    expect(ua).toMatchObject({ ok: true });
    expect(aa).toMatchObject({ ok: true });
    expect(ua).not.toEqual(aa);
    expect(results.get(memberRef('ZZ', '1'))).toMatchObject({ ok: false, code: 'UNKNOWN_ORG' });
    expect(results.get(memberRef('UA', ''))).toMatchObject({ ok: false, code: 'INVALID_MEMBER_ID' });
    expect(httpCalls).toEqual([{ route: 'lookup', status: 200 }]);
  });

  it('gets the same keys from a fresh client (stable keys)', async () => {
    const first = await makeClient().lookup(members(3));
    await client?.close();
    expect(await makeClient({ cacheSize: 0 }).lookup(members(3))).toEqual(first);
  });

  it('serves repeated successful members from its cache without an HTTP request, but not failures', async () => {
    const dw = makeClient();
    const batch = [...members(5, 'DL', 'cached'), { orgId: 'ZZ', memberId: '9' }];
    const first = await dw.lookup(batch);
    const before = standin.stats();
    const again = await dw.lookup(members(5, 'DL', 'cached'));
    expect(standin.stats().lookups).toBe(before.lookups);
    expect([...again]).toEqual([...first].slice(0, 5));

    await dw.lookup([{ orgId: 'ZZ', memberId: '9' }]); // failures are asked again
    expect(standin.stats().lookups).toBe(before.lookups + 1);
  });

  it('splits more than 500 uncached members into requests of at most 500', async () => {
    const before = standin.stats();
    const results = await makeClient().lookup(members(501, 'AA', 'chunk'));
    expect(results.size).toBe(501);
    expect([...results.values()].every((r) => r.ok)).toBe(true);
    expect(standin.stats().lookups - before.lookups).toBe(2);
    expect(standin.stats().membersLooked - before.membersLooked).toBe(501);
  });

  it('a wrong token (401) is our setup: not retried, scope warehouse, the token in no message', async () => {
    client = createDwKeyClient(
      { baseUrl: standin.url, apiToken: 'wrong-token-456', requestTimeoutMs: 2_000, retry: FAST_RETRY },
      { logger: createLogger('dw-client-test', 'debug', { write: (line: string) => void logLines.push(line) }) },
    );
    const before = standin.stats();
    const err = await rejection(client.lookup(members(2)));
    expect(err).toMatchObject({ row: 'dw-lookup.401', verdict: 'setup', scope: 'warehouse', transient: false });
    expect(err.message).not.toContain('wrong-token-456');
    expect(JSON.stringify(err)).not.toContain('wrong-token-456');
    expect(standin.stats().lookups - before.lookups).toBe(0);
    expect(standin.stats().byStatus['401']! - (before.byStatus['401'] ?? 0)).toBe(1);
    expect(logLines.join('\n')).not.toContain('wrong-token-456');
  });

  it('waits at least the Retry-After of a 429 before retrying, then succeeds', async () => {
    standin.setFaults({ fail429: 1, retryAfterS: 1 });
    const started = Date.now();
    const results = await makeClient().lookup(members(1, 'UA', 'throttled'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(990); // timers may fire a millisecond early
    expect(results.get(memberRef('UA', 'throttled-0'))).toMatchObject({ ok: true });
    expect(httpCalls.map((c) => c.status)).toEqual([429, 200]);
  });

  it('retries a burst of 5xx and then succeeds', async () => {
    standin.setFaults({ fail5xx: 2 });
    const results = await makeClient().lookup(members(2, 'UA', 'burst'));
    expect([...results.values()].every((r) => r.ok)).toBe(true);
    expect(httpCalls.map((c) => c.status)).toEqual([503, 503, 200]);
    expect(logLines.filter((l) => l.includes('retrying'))).toHaveLength(2);
  });

  it('throws a slow-down after its retries during an outage, and works again once the API is back', async () => {
    const dw = makeClient();
    standin.setFaults({ down: true });
    expect(await dw.health()).toBe(false);
    const err = await rejection(dw.lookup(members(3, 'DL', 'outage')));
    expect(err).toMatchObject({ row: 'dw-lookup.5xx', verdict: 'slow-down', transient: true });
    expect(httpCalls.filter((c) => c.route === 'lookup')).toHaveLength(FAST_RETRY.attempts);

    standin.setFaults({ down: false });
    expect(await dw.health()).toBe(true);
    const results = await dw.lookup(members(3, 'DL', 'outage'));
    expect([...results.values()].every((r) => r.ok)).toBe(true);
  });

  it('treats a non-JSON 200 as unknown: retried, never per-member errors', async () => {
    standin.setFaults({ malformedJson: 10 });
    const err = await rejection(makeClient().lookup(members(2, 'UA', 'garbled')));
    expect(err).toMatchObject({ row: 'dw-lookup.other', verdict: 'unknown', transient: true });
    expect(isTransient(err)).toBe(true);
    expect(httpCalls).toHaveLength(FAST_RETRY.attempts);

    standin.setFaults({ malformedJson: 1 });
    const results = await makeClient().lookup(members(2, 'UA', 'garbled'));
    expect([...results.values()].every((r) => r.ok)).toBe(true);
  });

  it('keeps to its deadline when the API is slower: no answer, a slow-down, no hang', async () => {
    standin.setFaults({ latencyMs: 30_000 });
    const started = Date.now();
    const err = await rejection(makeClient({ requestTimeoutMs: 150, retry: { ...FAST_RETRY, attempts: 2 } }).lookup(members(1)));
    expect(err).toMatchObject({ row: 'dw-key.no-answer', verdict: 'slow-down', transient: true });
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(httpCalls.map((c) => c.status)).toEqual(['error', 'error']);
  });

  it('reports an unreachable API as a transient DW_UNAVAILABLE', async () => {
    const closed = await listen(createServer());
    await new Promise((resolve) => closed.server.close(resolve));
    const dw = makeClient({ retry: { ...FAST_RETRY, attempts: 2 } }, closed.url);
    expect(await rejection(dw.lookup(members(2)))).toMatchObject({ row: 'dw-lookup.no-answer', verdict: 'slow-down' });
    expect(await dw.health()).toBe(false);
  });

  it('a 400 names no member: an unknown refusal, bisected by the stage, not retried here', async () => {
    let requests = 0;
    const scripted = await listen(
      createServer((req, res) => {
        requests += 1;
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"TOO_MANY_ITEMS","message":"no"}');
      }),
    );
    try {
      const err = await rejection(makeClient({}, scripted.url).lookup(members(2)));
      expect(err).toMatchObject({ row: 'dw-lookup.refused', verdict: 'unknown', bisect: true, transient: false });
      expect(requests).toBe(1);
    } finally {
      await client?.close();
      client = undefined;
      await new Promise((resolve) => scripted.server.close(resolve));
    }
  });

  it('keeps a path prefix of the base URL (the real endpoint may live under one)', async () => {
    let seenPath = '';
    const scripted = await listen(
      createServer((req, res) => {
        seenPath = req.url ?? '';
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"keys":[{"orgId":"UA","memberId":"1","subscriberKey":"K"},{"orgId":"UA","memberId":"2","subscriberKey":"L"}],"errors":[]}');
      }),
    );
    try {
      const results = await makeClient({}, `${scripted.url}/dw/api/`).lookup([
        { orgId: 'UA', memberId: '1' },
        { orgId: 'UA', memberId: '2' },
      ]);
      expect(seenPath).toBe('/dw/api/v1/subscriber-keys:lookup');
      expect(results.get(memberRef('UA', '1'))).toEqual({ ok: true, subscriberKey: 'K' });
    } finally {
      await client?.close();
      client = undefined;
      await new Promise((resolve) => scripted.server.close(resolve));
    }
  });
});

describe('the batch lookup answer, member by member', () => {
  const asked = [memberRef('UA', '1'), memberRef('UA', '2')];
  const key = (memberId: string, subscriberKey: string) => ({ orgId: 'UA', memberId, subscriberKey });
  const rowsOf = (body: unknown): string[] =>
    asked.map(
      (ref) =>
        classify(LOOKUP_ANSWERS, toAnswer({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, asked), ref)
          .id,
    );

  it.each([
    ['a missing member', { keys: [key('1', 'K1')], errors: [] }],
    ['a member twice', { keys: [key('1', 'K1'), key('2', 'K2')], errors: [{ orgId: 'UA', memberId: '1', code: 'X', message: '' }] }],
    ['a member not asked for', { keys: [key('1', 'K1'), key('2', 'K2'), key('3', 'K3')] }],
    ['a key that is not a string', { keys: [key('1', 'K1'), { orgId: 'UA', memberId: '2', subscriberKey: 42 }] }],
    ['keys that is not an array', { keys: {} }],
    ['a JSON array', []],
  ])('%s makes the whole answer unknown (no member is blamed)', (_why, body) => {
    expect(rowsOf(body)).toEqual(['dw-lookup.other', 'dw-lookup.other']);
  });

  it('a key longer than 254 characters is that member’s INVALID_SUBSCRIBER_KEY', () => {
    expect(rowsOf({ keys: [key('1', 'K'.repeat(254)), key('2', 'K'.repeat(255))] })).toEqual(['dw-lookup.key', 'dw-lookup.bad-key']);
  });
});

async function listen(server: Server): Promise<{ server: Server; url: string }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
