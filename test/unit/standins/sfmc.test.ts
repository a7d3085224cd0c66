import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { createSfmcStandin, main, type SfmcStandin, type SfmcStandinOptions } from '../../../standins/sfmc/server';
import { isPlausibleEmail } from '../../../standins/sfmc/validation';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const agent = new Agent({ keepAliveTimeout: 1000 });
const running: SfmcStandin[] = [];
let clock = Date.parse('2026-05-01T12:00:00Z');

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test assertions walk arbitrary JSON
}

async function call(base: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  const res = await request(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

async function start(options: SfmcStandinOptions = {}): Promise<SfmcStandin> {
  const standin = await createSfmcStandin({ port: 0, now: () => clock, ...options });
  running.push(standin);
  return standin;
}

async function tokenFor(s: SfmcStandin): Promise<string> {
  const res = await call(s.url, 'POST', '/v2/token', { grant_type: 'client_credentials', client_id: 'local-client', client_secret: 'local-secret' });
  return res.json.access_token as string;
}

const recipient = (n: number, extra: Record<string, unknown> = {}) => ({
  contactKey: `ck-${n}`,
  to: `member${n}@example.com`,
  messageKey: `mk-${n}`,
  attributes: { firstName: `M${n}` },
  ...extra,
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});
afterAll(async () => agent.close());

describe('SFMC stand-in: auth', () => {
  test('issues a bearer token with expires_in and a rest_instance_url that has a scheme and a trailing slash', async () => {
    const s = await start({ tokenTtlS: 600 });
    const res = await call(s.url, 'POST', '/v2/token', {
      grant_type: 'client_credentials',
      client_id: 'local-client',
      client_secret: 'local-secret',
      account_id: 123,
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ token_type: 'Bearer', expires_in: 600, rest_instance_url: `${s.url}/` });
    expect(res.json.rest_instance_url).toMatch(/^https?:\/\/[^/]+\/$/);
    expect(res.json.soap_instance_url).toMatch(/^http:\/\//);
    expect(res.json.access_token.length).toBeLessThanOrEqual(512);
  });

  test('refuses bad client credentials with 401 invalid_client', async () => {
    const s = await start();
    const res = await call(s.url, 'POST', '/v2/token', { grant_type: 'client_credentials', client_id: 'local-client', client_secret: 'wrong' });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  test('answers missing, unknown and expired tokens with the Not Authorized body', async () => {
    const s = await start({ tokenTtlS: 60 });
    const body = { definitionKey: 'welcome-ua', recipients: [recipient(1)] };
    const missing = await call(s.url, 'POST', '/messaging/v1/email/messages/', body);
    expect(missing.status).toBe(401);
    expect(missing.json).toEqual({ message: 'Not Authorized', errorcode: 0, documentation: expect.any(String) });
    expect((await call(s.url, 'POST', '/messaging/v1/email/messages/', body, 'made-up')).status).toBe(401);
    const token = await tokenFor(s);
    clock += 61_000;
    expect((await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token)).status).toBe(401);
    expect(s.state.stats.unauthorized).toBe(3);
    expect(s.state.listSends()).toHaveLength(0);
  });
});

describe('SFMC stand-in: batch send', () => {
  test('queues valid recipients and reports each invalid one inside a 202 + 109001', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const res = await call(
      s.url,
      'POST',
      '/messaging/v1/email/messages/',
      {
        definitionKey: 'welcome-aa',
        recipients: [
          recipient(1),
          recipient(2, { to: 'not-an-email' }),
          recipient(3, { contactKey: undefined }),
          recipient(4, { to: undefined }),
          recipient(5, { messageKey: undefined }),
        ],
      },
      token,
    );
    expect(res.status).toBe(202);
    expect(res.json.requestId).toMatch(UUID);
    expect(res.json.errorcode).toBe(109001);
    expect(res.json.message).toContain('3 subscribers failed to queue out of 5');
    expect(res.json.responses).toEqual([
      { messageKey: 'mk-1' },
      { messageKey: 'mk-2', errorcode: 109121, message: expect.any(String) },
      { messageKey: 'mk-3', errorcode: 109105, message: expect.any(String) },
      { messageKey: 'mk-4', errorcode: 109106, message: expect.any(String) },
      // SFMC generates a messageKey for a recipient without one, and answers with it.
      { messageKey: expect.stringMatching(UUID) },
    ]);
    const generated = res.json.responses[4].messageKey as string;
    expect(s.state.listSends().map((x) => x.messageKey)).toEqual(['mk-1', generated]);
  });

  test('rejects a messageKey accepted before with 109110, still as 202 + 109001 when every recipient fails', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const body = { definitionKey: 'welcome-ua', recipients: [recipient(1), recipient(2)] };
    expect((await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token)).json.errorcode).toBe(0);
    const again = await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token);
    expect(again.status).toBe(202);
    expect(again.json.errorcode).toBe(109001);
    expect(again.json.responses.map((r: { errorcode: number }) => r.errorcode)).toEqual([109110, 109110]);
    expect(s.state.stats.rejectedByCode['109110']).toBe(2);
  });

  test.each([
    ['singular recipient', { definitionKey: 'welcome-ua', recipient: recipient(1) }, 109122],
    ['unknown definitionKey', { definitionKey: 'nope', recipients: [recipient(1)] }, 109111],
    ['missing definitionKey', { recipients: [recipient(1)] }, 109107],
    ['no recipients', { definitionKey: 'welcome-ua', recipients: [] }, 109102],
    ['repeated messageKey in one request', { definitionKey: 'welcome-ua', recipients: [recipient(1), recipient(1)] }, 109108],
    ['more than 2000 recipients', { definitionKey: 'welcome-ua', recipients: Array.from({ length: 2001 }, (_, i) => recipient(i)) }, 109101],
  ])('refuses the whole request with HTTP 400 for %s', async (_name, body, errorcode) => {
    const s = await start();
    const res = await call(s.url, 'POST', '/messaging/v1/email/messages/', body, await tokenFor(s));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ message: expect.any(String), errorcode, documentation: expect.any(String) });
    expect(s.state.listSends()).toHaveLength(0);
  });
});

describe('SFMC stand-in: single send and status', () => {
  test('queues one message under a URL-encoded key, then answers a reuse with HTTP 400 109110', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const key = 'key with/odd?chars';
    const path = `/messaging/v1/email/messages/${encodeURIComponent(key)}`;
    const body = { definitionKey: 'welcome-dl', recipient: { contactKey: 'ck', to: 'ünïcode@example.de', attributes: { a: 1 } } };
    const first = await call(s.url, 'POST', path, body, token);
    expect(first.status).toBe(202);
    expect(first.json).toEqual({ requestId: expect.stringMatching(UUID), errorcode: 0, responses: [{ messageKey: key }] });
    const dup = await call(s.url, 'POST', path, body, token);
    expect(dup.status).toBe(400);
    expect(dup.json.errorcode).toBe(109110);
    const status = await call(s.url, 'GET', path, undefined, token);
    expect(status.status).toBe(200);
    expect(status.json.eventCategoryType).toBe('TransactionalSendEvents.EmailSent');
    expect(status.json.timestamp).not.toMatch(/Z$/);
    expect((await call(s.url, 'GET', '/messaging/v1/email/messages/unknown', undefined, token)).status).toBe(404);
  });

  test('answers a bad recipient field as 202 + 109001 and an unknown definitionKey as 400 109111', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const badTo = await call(
      s.url,
      'POST',
      '/messaging/v1/email/messages/k1',
      { definitionKey: 'welcome-ua', recipient: { contactKey: 'c', to: 'a b@example.com' } },
      token,
    );
    expect(badTo.status).toBe(202);
    expect(badTo.json.errorcode).toBe(109001);
    expect(badTo.json.responses).toEqual([{ messageKey: 'k1', errorcode: 109121, message: expect.any(String) }]);
    const badDef = await call(
      s.url,
      'POST',
      '/messaging/v1/email/messages/k1',
      { definitionKey: 'x', recipient: { contactKey: 'c', to: 'a@example.com' } },
      token,
    );
    expect(badDef.status).toBe(400);
    expect(badDef.json.errorcode).toBe(109111);
  });

  test('checks addresses RFC-ish', () => {
    for (const ok of ['a@example.com', 'first.last+tag@sub.example.co.uk', 'ünïcode@exämple.de']) expect(isPlausibleEmail(ok)).toBe(true);
    for (const bad of ['', 'plain', 'a@b', 'a@@b.com', 'a@b@c.com', '@example.com', 'a @example.com', 'a@example..com', `${'x'.repeat(250)}@e.com`]) {
      expect(isPlausibleEmail(bad)).toBe(false);
    }
  });
});

describe('SFMC stand-in: fault injection', () => {
  test('injects 429 with Retry-After, then 503, then answers normally; settings are readable and resettable', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const set = await call(s.url, 'POST', '/__standin/faults', { fail429: 1, fail5xx: 1, retryAfterS: 2 });
    expect(set.json).toMatchObject({ fail429: 1, fail5xx: 1, retryAfterS: 2 });
    const body = { definitionKey: 'welcome-ua', recipients: [recipient(1)] };
    const throttled = await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token);
    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('2');
    expect(throttled.json).toMatchObject({ errorcode: 50100, retryAfter: 2 });
    const unavailable = await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token);
    expect(unavailable.status).toBe(503);
    expect(unavailable.json.errorcode).toBe(50300);
    expect(unavailable.headers['retry-after']).toBe('2');
    expect((await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token)).status).toBe(202);
    expect((await call(s.url, 'GET', '/__standin/faults')).json).toMatchObject({ fail429: 0, fail5xx: 0 });
    await call(s.url, 'DELETE', '/__standin/faults');
    expect((await call(s.url, 'GET', '/__standin/faults')).json.retryAfterS).toBe(1);
    expect((await call(s.url, 'POST', '/__standin/faults', { bogus: 1 })).status).toBe(400);
  });

  test('blocks with 50200 without Retry-After, and 500 without Retry-After', async () => {
    const s = await start({ faults: { fail429: 1, throttleCode: 50200, fail5xx: 1, fail5xxStatus: 500 } });
    const token = await tokenFor(s);
    const body = { definitionKey: 'welcome-ua', recipients: [recipient(1)] };
    const blocked = await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token);
    expect([blocked.status, blocked.json.errorcode, blocked.headers['retry-after']]).toEqual([429, 50200, undefined]);
    const failed = await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token);
    expect([failed.status, failed.json.errorcode, failed.headers['retry-after']]).toEqual([500, 50300, undefined]);
  });

  test('drops the connection without answering, and expires every issued token on demand', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const body = { definitionKey: 'welcome-ua', recipients: [recipient(1)] };
    await call(s.url, 'POST', '/__standin/faults', { dropConnections: 1 });
    await expect(call(s.url, 'POST', '/messaging/v1/email/messages/', body, token)).rejects.toThrow();
    await call(s.url, 'POST', '/__standin/faults', { expireTokens: true });
    expect((await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token)).status).toBe(401);
    const stats = (await call(s.url, 'GET', '/__standin/stats')).json;
    expect(stats.injected).toMatchObject({ dropConnections: 1, expireTokens: 1 });
    expect(stats.sendRequests).toBe(2);
  });
});

describe('SFMC stand-in: inspection and persistence', () => {
  test('lists accepted sends with their details, counts requests, and resets on DELETE', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const res = await call(
      s.url,
      'POST',
      '/messaging/v1/email/messages/',
      { definitionKey: 'welcome-ua', recipients: [recipient(1), recipient(2, { to: 'bad' })] },
      token,
    );
    const sends = (await call(s.url, 'GET', '/__standin/sends')).json;
    expect(sends).toEqual([
      {
        messageKey: 'mk-1',
        contactKey: 'ck-1',
        to: 'member1@example.com',
        definitionKey: 'welcome-ua',
        attributes: { firstName: 'M1' },
        receivedAt: new Date(clock).toISOString(),
        requestId: res.json.requestId,
      },
    ]);
    expect((await call(s.url, 'GET', `/__standin/sends?since=${new Date(clock + 1).toISOString()}`)).json).toEqual([]);
    expect((await call(s.url, 'GET', '/__standin/stats')).json).toMatchObject({
      tokenRequests: 1,
      sendRequests: 1,
      accepted: 1,
      rejectedByCode: { '109121': 1 },
    });
    await call(s.url, 'DELETE', '/__standin/sends');
    expect((await call(s.url, 'GET', '/__standin/sends')).json).toEqual([]);
    expect((await call(s.url, 'GET', '/healthz')).status).toBe(200);
    expect(s.server.keepAliveTimeout).toBe(5000);
  });

  test('remembers accepted messageKeys across a restart through the data file, within the dedup window only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfmc-standin-'));
    try {
      const dataFile = join(dir, 'sends.jsonl');
      const body = { definitionKey: 'welcome-ua', recipients: [recipient(7)] };
      const first = await start({ dataFile });
      expect((await call(first.url, 'POST', '/messaging/v1/email/messages/', body, await tokenFor(first))).json.errorcode).toBe(0);
      await first.close();

      const second = await start({ dataFile });
      expect(second.state.listSends().map((x) => x.messageKey)).toEqual(['mk-7']);
      const replay = await call(second.url, 'POST', '/messaging/v1/email/messages/', body, await tokenFor(second));
      expect(replay.json.responses[0].errorcode).toBe(109110);
      clock += 2 * 24 * 3600_000 + 1;
      const token = await tokenFor(second);
      const afterWindow = await call(second.url, 'POST', '/messaging/v1/email/messages/', body, token);
      expect(afterWindow.json.errorcode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('main() reads its configuration from the environment', async () => {
    const s = await main({
      SFMC_STANDIN_PORT: '0',
      SFMC_STANDIN_HOST: '127.0.0.1',
      SFMC_STANDIN_CLIENT_ID: 'id-x',
      SFMC_STANDIN_CLIENT_SECRET: 'secret-x',
      SFMC_STANDIN_DEFINITION_KEYS: 'only-one',
      SFMC_STANDIN_TOKEN_TTL_S: '30',
      LOG_LEVEL: 'silent',
    });
    running.push(s);
    const res = await call(s.url, 'POST', '/v2/token', { grant_type: 'client_credentials', client_id: 'id-x', client_secret: 'secret-x' });
    expect(res.json.expires_in).toBe(30);
    expect([...s.state.definitionKeys]).toEqual(['only-one']);
  });
});

describe('SFMC stand-in: every send attempt recorded (issue 21)', () => {
  test('a repeated key stays 109110 for the sender, yet both POSTs are on /__standin/attempts, per messageKey and per address', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const body = { definitionKey: 'welcome-ua', recipients: [recipient(1, { attributes: { MemberId: 'm1' } })] };
    expect((await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token)).json.errorcode).toBe(0);
    clock += 1000;
    expect((await call(s.url, 'POST', '/messaging/v1/email/messages/', body, token)).json.responses[0].errorcode).toBe(109110);
    // the same address under a second key: a second email, which only this record can show
    clock += 1000;
    await call(
      s.url,
      'POST',
      '/messaging/v1/email/messages/mk-other',
      { definitionKey: 'welcome-ua', recipient: { contactKey: 'ck-1', to: 'Member1@example.com' } },
      token,
    );
    expect(s.state.listSends().map((x) => x.messageKey)).toEqual(['mk-1', 'mk-other']);
    const view = (await call(s.url, 'GET', '/__standin/attempts')).json;
    expect(view.byMessageKey['mk-1']).toEqual([
      {
        at: new Date(clock - 2000).toISOString(),
        messageKey: 'mk-1',
        contactKey: 'ck-1',
        to: 'member1@example.com',
        definitionKey: 'welcome-ua',
        memberId: 'm1',
        outcome: 'accepted',
      },
      {
        at: new Date(clock - 1000).toISOString(),
        messageKey: 'mk-1',
        contactKey: 'ck-1',
        to: 'member1@example.com',
        definitionKey: 'welcome-ua',
        memberId: 'm1',
        outcome: '109110',
      },
    ]);
    expect(view.byMessageKey['mk-other'][0].outcome).toBe('accepted');
    expect(view.byAddress).toEqual({ 'member1@example.com': ['mk-1', 'mk-other'] });
    // since: only the later attempts
    const later = (await call(s.url, 'GET', `/__standin/attempts?since=${new Date(clock - 1000).toISOString()}`)).json;
    expect(Object.values(later.byMessageKey).flat()).toHaveLength(2);
  });

  test('attempts that never became a send are recorded with the fault they met (429, 5xx, dropped, unauthorized)', async () => {
    const s = await start();
    const token = await tokenFor(s);
    const send = (n: number, t = token) =>
      call(s.url, 'POST', `/messaging/v1/email/messages/mk-${n}`, { definitionKey: 'welcome-ua', recipient: recipient(n) }, t).catch(() => undefined);
    await call(s.url, 'POST', '/__standin/faults', { fail429: 1, fail5xx: 1, dropConnections: 1 });
    await send(1); // dropped
    await send(2); // 429
    await send(3); // 503
    await send(4, 'not-a-token');
    const view = s.state.attemptsView();
    expect(['mk-1', 'mk-2', 'mk-3', 'mk-4'].map((k) => view.byMessageKey[k]?.map((a) => a.outcome))).toEqual([
      ['dropped'],
      ['429'],
      ['5xx:503'],
      ['unauthorized'],
    ]);
    expect(s.state.listSends()).toHaveLength(0);
  });

  test('the attempts file survives a restart next to the data file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfmc-standin-'));
    try {
      const dataFile = join(dir, 'sends.jsonl');
      const first = await start({ dataFile });
      await call(
        first.url,
        'POST',
        '/messaging/v1/email/messages/',
        { definitionKey: 'welcome-ua', recipients: [recipient(7)] },
        await tokenFor(first),
      );
      await first.close();
      const second = await start({ dataFile });
      expect(second.state.attemptsView().byMessageKey['mk-7']?.map((a) => a.outcome)).toEqual(['accepted']);
      expect(second.state.attemptsView(clock + 1).byMessageKey).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
