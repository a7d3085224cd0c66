import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { AnswerError } from '../../../consumers/shared/answers';
import { createLogger } from '../../../consumers/shared/logger';
import {
  createSfmcClient,
  joinUrl,
  normaliseInstanceUrl,
  type SfmcClient,
  type SfmcClientConfig,
  type SfmcClientDeps,
  type SfmcRecipient,
  type SfmcTarget,
  welcomeMessageKey,
} from '../../../consumers/shared/sfmc-client';
import { createSfmcStandin, type SfmcStandin, type SfmcStandinOptions } from '../../../standins/sfmc/server';

const SECRET = 'sEcReT-9f1c2b7e-never-logged';
let standin: SfmcStandin;
const clients: SfmcClient[] = [];
let httpLog: { target: SfmcTarget; status: number }[] = [];

async function startStandin(options: SfmcStandinOptions = {}): Promise<SfmcStandin> {
  standin = await createSfmcStandin({ port: 0, clientSecret: SECRET, ...options });
  return standin;
}

function client(config: Partial<SfmcClientConfig> = {}, deps: Partial<SfmcClientDeps> = {}): SfmcClient {
  const c = createSfmcClient(
    {
      authBaseUrl: standin.url,
      clientId: 'local-client',
      clientSecret: SECRET,
      requestTimeoutMs: 2_000,
      retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 500 },
      ...config,
    },
    { logger: createLogger('sfmc-client-test', 'silent'), onHttp: (target, status) => httpLog.push({ target, status }), ...deps },
  );
  clients.push(c);
  return c;
}

const member = (n: number, extra: Partial<SfmcRecipient> = {}): SfmcRecipient => ({
  contactKey: `SK-${n}`,
  to: `member${n}@example.com`,
  messageKey: welcomeMessageKey('org-1', n),
  attributes: { firstName: `Member${n}` },
  ...extra,
});

beforeEach(async () => {
  httpLog = [];
  await startStandin();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await standin.close();
});

describe('SFMC client: token handling', () => {
  test('fetches one token for many concurrent sends', async () => {
    const c = client();
    const outcomes = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => c.sendOne('welcome-ua', member(i))),
      c.sendBatch('welcome-aa', [member(20), member(21)]),
    ]);
    expect(outcomes.flat().every((o) => o.status === 'queued')).toBe(true);
    expect(standin.state.stats.tokenRequests).toBe(1);
    expect(standin.state.listSends()).toHaveLength(12);
  });

  test('renews the token ahead of its expiry without waiting for a 401', async () => {
    let clientClock = Date.now();
    const c = client({}, { now: () => clientClock });
    await c.sendOne('welcome-ua', member(1));
    clientClock += 1080_000 - 60_000; // inside the last two minutes of the token's life
    await c.sendOne('welcome-ua', member(2));
    expect(standin.state.stats.tokenRequests).toBe(2);
    expect(standin.state.stats.unauthorized).toBe(0);
  });

  test('on a token expired mid-run, refreshes exactly once and retries the send', async () => {
    const c = client();
    await c.sendBatch('welcome-ua', [member(1)]);
    standin.state.expireAllTokens();
    const [again] = await Promise.all([c.sendBatch('welcome-ua', [member(2)]), c.sendOne('welcome-ua', member(3))]);
    expect(again[0]?.status).toBe('queued');
    expect(standin.state.stats.tokenRequests).toBe(2);
    expect(standin.state.stats.unauthorized).toBe(2);
    expect(standin.state.listSends()).toHaveLength(3);
  });

  test('a fresh token refused too: our setup (send.401), not retried further', async () => {
    await standin.close();
    let standinClock = Date.now();
    await startStandin({ now: () => (standinClock += 2_000_000) }); // every token is expired by the time it is used
    const outcome = await client().sendOne('welcome-ua', member(1));
    expect(outcome).toMatchObject({ status: 'failed', answer: 'send.401' });
    expect(outcome.error).toBeInstanceOf(AnswerError);
    expect(outcome.error).toMatchObject({ verdict: 'setup', transient: false });
    expect(standin.state.stats.tokenRequests).toBe(2);
  });

  test('bad client credentials: our setup (token.refused), not retried, and not asked again for 30 s', async () => {
    const c = client({ clientSecret: 'wrong' });
    const [outcome] = await c.sendBatch('welcome-ua', [member(1)], undefined, undefined, 'org:UA');
    expect(outcome).toMatchObject({
      status: 'failed',
      answer: 'token.refused',
      error: expect.objectContaining({ verdict: 'setup', scope: 'org:UA' }),
    });
    expect(outcome?.error?.message).toContain('invalid_client');
    await c.sendBatch('welcome-ua', [member(2)]);
    expect(standin.state.stats.tokenRequests).toBe(1); // SFMC throttles token requests: the refusal is remembered
    expect(standin.state.stats.sendRequests).toBe(0);
  });
});

describe('SFMC client: transient failures', () => {
  test('waits at least the Retry-After of a 429 before retrying', async () => {
    const c = client();
    await c.sendOne('welcome-ua', member(0)); // token fetched outside the measurement
    standin.state.setFaults({ fail429: 1, retryAfterS: 1 });
    const started = performance.now();
    const [outcome] = await c.sendBatch('welcome-ua', [member(1)]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    expect(outcome?.status).toBe('queued');
    expect(httpLog.filter((h) => h.target === 'send').map((h) => h.status)).toEqual([202, 429, 202]);
  });

  test('backs off and retries a 429 50200 that has no Retry-After', async () => {
    standin.state.setFaults({ fail429: 2, throttleCode: 50200 });
    expect((await client().sendOne('welcome-ua', member(1))).status).toBe('queued');
    expect(standin.state.stats.injected.fail429).toBe(2);
  });

  test('retries a burst of 503s and 500s', async () => {
    standin.state.setFaults({ fail5xx: 2, retryAfterS: 0 });
    const c = client();
    expect((await c.sendBatch('welcome-ua', [member(1)]))[0]?.status).toBe('queued');
    standin.state.setFaults({ fail5xx: 1, fail5xxStatus: 500 });
    expect((await c.sendBatch('welcome-ua', [member(2)]))[0]?.status).toBe('queued');
    expect(standin.state.stats.sendRequests).toBe(5);
    expect(standin.state.listSends()).toHaveLength(2);
  });

  test('a slow-down once the retries are used up, so the caller pauses and retries later', async () => {
    standin.state.setFaults({ fail5xx: 10, retryAfterS: 0 });
    const [outcome] = await client().sendBatch('welcome-ua', [member(1)]);
    expect(outcome).toMatchObject({
      status: 'failed',
      answer: 'send.5xx',
      error: expect.objectContaining({ verdict: 'slow-down', transient: true }),
    });
    expect(standin.state.stats.sendRequests).toBe(4);
  });

  test('retries dropped connections', async () => {
    standin.state.setFaults({ dropConnections: 2 });
    expect((await client().sendBatch('welcome-ua', [member(1)]))[0]?.status).toBe('queued');
    expect(httpLog.filter((h) => h.target === 'send').map((h) => h.status)).toEqual([0, 0, 202]);
  });

  test('turns a slow answer into no answer: a slow-down', async () => {
    const c = client({ requestTimeoutMs: 100, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    await c.sendOne('welcome-ua', member(0));
    standin.state.setFaults({ latencyMs: 400 });
    expect(await c.sendOne('welcome-ua', member(1))).toMatchObject({
      status: 'failed',
      answer: 'send.no-answer',
      error: expect.objectContaining({ verdict: 'slow-down' }),
    });
  });
});

describe('SFMC client: per-recipient outcomes', () => {
  test('reads every item of a partial failure: queued, rejected with its code, and duplicate', async () => {
    const c = client();
    await c.sendOne('welcome-ua', member(4));
    const outcomes = await c.sendBatch('welcome-ua', [member(1), member(2, { to: 'no-at-sign' }), member(3, { contactKey: '' }), member(4)]);
    expect(outcomes.map((o) => [o.status, o.errorcode])).toEqual([
      ['queued', undefined],
      ['rejected', 109121],
      ['rejected', 109105],
      ['duplicate', 109110],
    ]);
    expect(outcomes.every((o) => typeof o.requestId === 'string')).toBe(true);
  });

  test('a request refused whole for its definitionKey is our setup for each recipient, never a member fault, not retried', async () => {
    const outcomes = await client().sendBatch('not-a-definition', [member(1), member(2)]);
    expect(outcomes).toEqual([
      expect.objectContaining({ messageKey: member(1).messageKey, status: 'failed', answer: 'send.definition', errorcode: 109111 }),
      expect.objectContaining({ messageKey: member(2).messageKey, status: 'failed', answer: 'send.definition', errorcode: 109111 }),
    ]);
    expect(outcomes.map((o) => o.error?.message)).toEqual([expect.stringContaining('setup'), expect.stringContaining('setup')]);
    expect(standin.state.stats.sendRequests).toBe(1);
  });

  test('splits large batches into chunks and sends a repeated messageKey once', async () => {
    const c = client({ batchSize: 2 });
    const outcomes = await c.sendBatch('welcome-ua', [member(1), member(2), member(3), member(1), member(4), member(5)]);
    expect(outcomes.map((o) => o.status)).toEqual(Array(6).fill('queued'));
    expect(outcomes[3]?.messageKey).toBe(member(1).messageKey);
    expect(standin.state.stats.sendRequests).toBe(3);
    expect(standin.state.listSends()).toHaveLength(5);
  });

  test('single send handles both the 400 form (duplicate, bad definitionKey) and the 202-with-codes form', async () => {
    const c = client();
    expect((await c.sendOne('welcome-ua', member(1))).status).toBe('queued');
    expect(await c.sendOne('welcome-ua', member(1))).toMatchObject({ status: 'duplicate', errorcode: 109110 });
    expect(await c.sendOne('nope', member(2))).toMatchObject({ status: 'failed', answer: 'send.definition', errorcode: 109111 });
    expect(await c.sendOne('welcome-ua', member(3, { to: 'a@b' }))).toMatchObject({ status: 'rejected', errorcode: 109121 });
  });

  test('URL-encodes the messageKey and reads the status back', async () => {
    const c = client();
    const odd = member(1, { messageKey: 'welcome/odd key?#ü' });
    expect((await c.sendOne('welcome-ua', odd)).status).toBe('queued');
    expect(standin.state.listSends()[0]?.messageKey).toBe('welcome/odd key?#ü');
    expect(await c.getStatus(odd.messageKey)).toMatchObject({ messageKey: odd.messageKey, eventCategoryType: 'TransactionalSendEvents.EmailSent' });
    expect(await c.getStatus('never-sent')).toBeUndefined();
  });

  test('rejects an over-long messageKey locally, without a request', async () => {
    const c = client();
    const outcome = await c.sendOne('welcome-ua', member(1, { messageKey: 'k'.repeat(101) }));
    expect(outcome).toMatchObject({ status: 'rejected', errorcode: 109108 });
    expect(standin.state.stats.tokenRequests + standin.state.stats.sendRequests).toBe(0);
  });
});

describe('SFMC client: answers the stand-in serves on demand', () => {
  test('a 2xx without an item for the key is never "sent": retried (the stand-in had queued it: 109110 next time)', async () => {
    await fetch(`${standin.url}/__standin/faults`, {
      method: 'POST',
      body: JSON.stringify({ answer: 'send.2xx-no-item', answerCount: 1, answerAfterAccepting: true }),
    });
    const [outcome] = await client().sendBatch('welcome-ua', [member(1)]);
    expect(outcome).toMatchObject({ status: 'duplicate', answer: 'send.item-duplicate' });
    expect(standin.state.listSends()).toHaveLength(1);
  });

  test('a 2xx without items every time: failed as unknown after the retries, not one send accepted twice', async () => {
    await fetch(`${standin.url}/__standin/faults`, {
      method: 'POST',
      body: JSON.stringify({ answer: 'send.2xx-no-item', answerAfterAccepting: true }),
    });
    const outcomes = await client().sendBatch('welcome-ua', [member(1), member(2)]);
    expect(outcomes.map((o) => [o.status, o.answer, o.error instanceof AnswerError && o.error.verdict])).toEqual([
      ['failed', 'send.2xx-no-item', 'unknown'],
      ['failed', 'send.2xx-no-item', 'unknown'],
    ]);
    expect(standin.state.listSends()).toHaveLength(2);
  });

  test("a proxy's HTML 400 names nobody: an unknown refusal to bisect, not retried, no member rejected", async () => {
    await fetch(`${standin.url}/__standin/faults`, { method: 'POST', body: JSON.stringify({ answer: 'send.refused' }) });
    const outcomes = await client().sendBatch('welcome-ua', [member(1), member(2)]);
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'failed']);
    expect(outcomes[0]?.error).toMatchObject({ verdict: 'unknown', bisect: true, transient: false });
    expect(standin.state.stats.sendRequests).toBe(1);
  });

  test('403 20002: our setup; 50200: a slow-down that halves the concurrency, which grows back', async () => {
    const limits: number[] = [];
    const c = client({ maxInFlight: 8 }, { onConcurrency: (n) => limits.push(n) });
    await fetch(`${standin.url}/__standin/faults`, { method: 'POST', body: JSON.stringify({ answer: 'send.403' }) });
    expect((await c.sendOne('welcome-ua', member(1))).error).toMatchObject({ verdict: 'setup', row: 'send.403' });
    await fetch(`${standin.url}/__standin/faults`, { method: 'POST', body: JSON.stringify({ answer: 'send.429-50200', answerCount: 2 }) });
    expect((await c.sendOne('welcome-ua', member(2))).status).toBe('queued');
    expect(limits).toEqual([8, 4, 2]);
    for (let i = 0; i < 40; i++) await c.sendOne('welcome-ua', member(10 + i));
    expect(limits.at(-1)).toBe(4);
  });

  test('the status call: found, not found (404 JSON), and a 404 without JSON is our setup', async () => {
    const c = client();
    await c.sendOne('welcome-ua', member(1));
    expect(await c.getStatus(member(1).messageKey)).toMatchObject({ eventCategoryType: expect.stringContaining('Email') });
    expect(await c.getStatus('never-sent')).toBeUndefined();
    await fetch(`${standin.url}/__standin/faults`, { method: 'POST', body: JSON.stringify({ answer: 'status.path' }) });
    await expect(c.getStatus(member(1).messageKey)).rejects.toMatchObject({ verdict: 'setup', row: 'status.path' });
  });
});

describe('SFMC client: URLs and message keys', () => {
  test('normalises rest_instance_url whether it comes as a bare host or with a scheme, with or without a slash', () => {
    expect(normaliseInstanceUrl('mc123.rest.marketingcloudapis.com')).toBe('https://mc123.rest.marketingcloudapis.com/');
    expect(normaliseInstanceUrl('mc123.rest.marketingcloudapis.com/')).toBe('https://mc123.rest.marketingcloudapis.com/');
    expect(normaliseInstanceUrl('https://mc123.rest.marketingcloudapis.com')).toBe('https://mc123.rest.marketingcloudapis.com/');
    expect(normaliseInstanceUrl(' https://mc123.rest.marketingcloudapis.com// ')).toBe('https://mc123.rest.marketingcloudapis.com/');
    expect(normaliseInstanceUrl('http://127.0.0.1:8090/')).toBe('http://127.0.0.1:8090/');
    expect(() => normaliseInstanceUrl('ftp://example.com')).toThrow();
    expect(joinUrl('https://h/', '/messaging/v1/email/messages/')).toBe('https://h/messaging/v1/email/messages/');
    expect(joinUrl('https://h', 'v2/token')).toBe('https://h/v2/token');
  });

  test('welcomeMessageKey is stable per member, distinct across members, URL-safe and short', () => {
    expect(welcomeMessageKey('org-1', '42')).toBe(welcomeMessageKey('org-1', 42));
    expect(welcomeMessageKey(7, 42n)).toBe(welcomeMessageKey('7', '42'));
    expect(welcomeMessageKey('1', '23')).not.toBe(welcomeMessageKey('12', '3'));
    const keys = new Set<string>();
    for (let org = 0; org < 20; org++) for (let m = 0; m < 500; m++) keys.add(welcomeMessageKey(org, m));
    expect(keys.size).toBe(10_000);
    const key = welcomeMessageKey('org-1', '42');
    expect(key).toMatch(/^welcome-[A-Za-z0-9_-]{32}$/); // 32 base64url chars = 192 bits
    expect(encodeURIComponent(key)).toBe(key);
    expect(key.length).toBeLessThanOrEqual(100);
    expect(() => welcomeMessageKey('', '1')).toThrow();
  });
});

describe('SFMC client: logging', () => {
  test('never logs the client secret, a token or an e-mail address, even at trace level', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const tokens: string[] = [];
    standin.server.on('request', (req) => req.headers.authorization && tokens.push(req.headers.authorization.replace('Bearer ', '')));
    const logger = createLogger('sfmc-client-test', 'trace', sink);
    const c = client({}, { logger });
    await c.sendBatch('welcome-ua', [member(1)]);
    standin.state.expireAllTokens();
    standin.state.setFaults({ fail429: 1, retryAfterS: 0 });
    await c.sendBatch('welcome-ua', [member(2), member(3, { to: 'broken-address' })]);
    await client({ clientSecret: `${SECRET}-wrong` }, { logger })
      .sendOne('welcome-ua', member(4))
      .catch(() => undefined);
    const log = lines.join('');
    expect(log).toContain('SFMC token obtained');
    expect(log).toContain('retrying');
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    for (const forbidden of [SECRET, ...tokens, 'member1@example.com', 'member2@example.com', 'broken-address']) expect(log).not.toContain(forbidden);
  });
});
