// Issue 12 item 8 and 7: SFMC answers the client must read right, and the business unit per call.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { createLogger } from '../../../consumers/shared/logger';
import { classify } from '../../../consumers/shared/answers';
import type { JsonResponse } from '../../../consumers/shared/http';
import { SEND_ANSWERS } from '../../../consumers/shared/sfmc-answers';
import { createSfmcClient, type SfmcClient, type SfmcRecipient, toAnswer, welcomeMessageKey } from '../../../consumers/shared/sfmc-client';
import { createSfmcStandin, type SfmcStandin } from '../../../standins/sfmc/server';

const agent = new Agent({ keepAliveTimeout: 1000 });
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(async () => agent.close());

const member = (n: number): SfmcRecipient => ({ contactKey: `SK-${n}`, to: `member${n}@example.com`, messageKey: welcomeMessageKey('UA', n) });
const answer = (status: number, json: unknown): JsonResponse => ({ status, headers: {}, json, isJson: true, text: JSON.stringify(json) });
/** Each key's row and verdict in SFMC's send table. */
const rows = (res: JsonResponse, keys: string[]): [string, string, string][] =>
  keys.map((k) => {
    const row = classify(SEND_ANSWERS, toAnswer(res, keys), k);
    return [k, row.id, row.verdict];
  });

async function standin(options: Parameters<typeof createSfmcStandin>[0] = {}): Promise<SfmcStandin> {
  const s = await createSfmcStandin({ port: 0, ...options });
  closers.push(() => s.close());
  return s;
}

function client(authBaseUrl: string, accountId?: number): SfmcClient {
  const c = createSfmcClient(
    {
      authBaseUrl,
      clientId: 'local-client',
      clientSecret: 'local-secret',
      requestTimeoutMs: 2_000,
      retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
      ...(accountId ? { accountId } : {}),
    },
    { logger: createLogger('test', 'silent') },
  );
  closers.push(() => c.close());
  return c;
}

async function raw(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${base}${path}`, {
    method,
    dispatcher: agent,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

describe('SFMC client reads recipient codes the way SFMC and other clients write them', () => {
  test('errorCode (camelCase) counts like errorcode, on items and at the top', () => {
    const res = answer(202, {
      requestId: 'r',
      errorCode: 109001,
      responses: [{ messageKey: 'a' }, { messageKey: 'b', errorCode: 109121, message: 'bad to' }],
    });
    expect(rows(res, ['a', 'b'])).toEqual([
      ['a', 'send.item-queued', 'ok'],
      ['b', 'send.item-recipient', 'member'],
    ]);
  });

  test('an item without any code under a top-level error other than 109001 is not counted as queued', () => {
    const res = answer(202, { requestId: 'r', errorcode: 109111, message: 'InvalidDefinitionKey', responses: [{ messageKey: 'a' }] });
    expect(rows(res, ['a'])).toEqual([['a', 'send.item-uncoded-under-error', 'unknown']]);
  });

  test('a whole-request 109110 is "already sent" for one recipient, unsettled for several', () => {
    const dup = answer(400, { errorcode: 109110, message: 'MCMS_UTM_Validation_DuplicateMessageKey' });
    expect(rows(dup, ['a'])).toEqual([['a', 'send.single-duplicate', 'ok']]);
    expect(rows(dup, ['a', 'b']).map((r) => r[1])).toEqual(['send.whole-duplicate', 'send.whole-duplicate']);
  });

  test('a 2xx whose items do not name a recipient leaves it unknown, never queued', () => {
    expect(rows(answer(202, { requestId: 'r' }), ['a', 'b']).map((r) => r[2])).toEqual(['unknown', 'unknown']);
    expect(rows(answer(202, { requestId: 'r', errorcode: 0, responses: [{ messageKey: 'a' }] }), ['a', 'b'])).toEqual([
      ['a', 'send.item-queued', 'ok'],
      ['b', 'send.2xx-no-item', 'unknown'],
    ]);
    // two items without a messageKey cannot be matched by position
    expect(rows(answer(202, { requestId: 'r', responses: [{}, {}] }), ['a', 'b']).map((r) => r[1])).toEqual(['send.2xx-no-item', 'send.2xx-no-item']);
  });
});

describe('SFMC client resolves an unsettled batch recipient by sending it alone', () => {
  // A scripted SFMC: the batch URL always answers a whole-request 109110; single sends of
  // keys in `alreadySent` answer 109110 (400), others are queued.
  async function scripted(alreadySent: Set<string>): Promise<{ url: string; singles: string[] }> {
    const singles: string[] = [];
    const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const send = (status: number, body: unknown): void =>
          void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        const path = req.url ?? '';
        if (path === '/v2/token') return send(200, { access_token: 't', expires_in: 1080, rest_instance_url: `http://${req.headers.host}/` });
        if (path === '/messaging/v1/email/messages/') return send(400, { errorcode: 109110, message: 'DuplicateMessageKey' });
        const key = decodeURIComponent(path.slice('/messaging/v1/email/messages/'.length));
        singles.push(key);
        if (alreadySent.has(key)) return send(400, { errorcode: 109110, message: 'DuplicateMessageKey' });
        return send(202, { requestId: `single-${key}`, errorcode: 0, responses: [{ messageKey: key }] });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, singles };
  }

  test('a whole-request 109110 on three recipients: only the one SFMC really had counts as duplicate', async () => {
    const [a, b, c] = [member(1), member(2), member(3)];
    const sfmc = await scripted(new Set([b.messageKey]));
    const outcomes = await client(sfmc.url).sendBatch('welcome-ua', [a, b, c]);
    expect(outcomes.map((o) => o.status)).toEqual(['queued', 'duplicate', 'queued']);
    expect(outcomes[0]?.requestId).toBe(`single-${a.messageKey}`);
    expect(sfmc.singles).toEqual([a.messageKey, b.messageKey, c.messageKey]);
  });
});

describe('SFMC stand-in follows SFMC on paths and optional fields', () => {
  test('answers //v2/token, /v2/token/ and //messaging/... like the plain paths', async () => {
    const s = await standin();
    const creds = { grant_type: 'client_credentials', client_id: 'local-client', client_secret: 'local-secret' };
    for (const path of ['//v2/token', '/v2/token/']) expect((await raw(s.url, 'POST', path, creds)).status).toBe(200);
    const token = (await raw(s.url, 'POST', '/v2/token', creds)).json.access_token as string;
    const sent = await raw(
      s.url,
      'POST',
      '//messaging/v1/email/messages/',
      { definitionKey: 'welcome-ua', recipients: [{ contactKey: 'c', to: 'a@example.com', messageKey: 'k1' }] },
      token,
    );
    expect(sent).toMatchObject({ status: 202, json: { errorcode: 0 } });
    expect((await raw(s.url, 'GET', '//messaging/v1/email/messages/k1', undefined, token)).json.eventCategoryType).toBe(
      'TransactionalSendEvents.EmailSent',
    );
    expect((await raw(s.url, 'POST', '/v2/tokens', creds)).status).toBe(404);
  });

  test('records the business unit of the token that sent, and refuses a non-numeric account_id', async () => {
    const s = await standin();
    const creds = { grant_type: 'client_credentials', client_id: 'local-client', client_secret: 'local-secret' };
    expect((await raw(s.url, 'POST', '/v2/token', { ...creds, account_id: 'MID-1' })).status).toBe(400);
    const token = (await raw(s.url, 'POST', '/v2/token', { ...creds, account_id: '5100' })).json.access_token as string;
    await raw(
      s.url,
      'POST',
      '/messaging/v1/email/messages/',
      { definitionKey: 'welcome-ua', recipients: [{ contactKey: 'c', to: 'a@example.com', messageKey: 'k1' }] },
      token,
    );
    expect(s.state.listSends()).toEqual([expect.objectContaining({ messageKey: 'k1', accountId: 5100 })]);
  });
});

describe('SFMC client: one token per business unit', () => {
  test('requests and caches a token per accountId, and sends each call with its own', async () => {
    const s = await standin();
    const c = client(s.url, 7000);
    await c.sendBatch('welcome-ua', [member(1)]); // client default BU
    await c.sendBatch('welcome-ua', [member(2)], 5100);
    await c.sendBatch('welcome-ua', [member(3)], 5100);
    await c.sendOne('welcome-ua', member(4), 5200);
    expect(s.state.stats.tokenRequests).toBe(3);
    expect(s.state.listSends().map((x) => x.accountId)).toEqual([7000, 5100, 5100, 5200]);
    expect(await c.getStatus(member(2).messageKey, 5100)).toMatchObject({ eventCategoryType: 'TransactionalSendEvents.EmailSent' });
    expect(s.state.stats.tokenRequests).toBe(3);
    expect(await c.getStatus(member(2).messageKey, 5200)).toBeUndefined(); // another BU does not see it
  });
});

describe('SFMC stand-in: delivery status', () => {
  test('EmailQueued first, then EmailSent — or EmailNotSent with a reason for unsubscribed and held addresses; forgotten after 3 days', async () => {
    let clock = Date.parse('2026-05-01T12:00:00Z');
    const s = await standin({ now: () => clock, queuedMs: 1_000 });
    const c = client(s.url);
    const [plain, unsub, held] = [member(1), { ...member(2), to: 'x@unsubscribed.example' }, { ...member(3), to: 'Y@Held.Example' }];
    await c.sendBatch('welcome-ua', [plain, unsub, held]);
    expect((await c.getStatus(plain.messageKey))?.eventCategoryType).toBe('TransactionalSendEvents.EmailQueued');
    clock += 1_000;
    expect(await c.getStatus(plain.messageKey)).toMatchObject({ eventCategoryType: 'TransactionalSendEvents.EmailSent' });
    expect(await c.getStatus(unsub.messageKey)).toMatchObject({
      eventCategoryType: 'TransactionalSendEvents.EmailNotSent',
      statusCode: 1,
      statusMessage: 'Unsubscribed',
    });
    expect(await c.getStatus(held.messageKey)).toMatchObject({
      eventCategoryType: 'TransactionalSendEvents.EmailNotSent',
      statusCode: 2,
      statusMessage: 'Held',
    });
    clock += 3 * 24 * 3600_000;
    expect(await c.getStatus(plain.messageKey)).toBeUndefined();
  });
});

describe('SFMC stand-in: not-sent lists from the environment', () => {
  test('SFMC_STANDIN_UNSUBSCRIBED (comma list) and SFMC_STANDIN_HELD_FILE (one per line) replace the defaults', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { main } = await import('../../../standins/sfmc/server');
    const dir = mkdtempSync(join(tmpdir(), 'sfmc-lists-'));
    try {
      writeFileSync(join(dir, 'held.txt'), '# held by compliance\nheld.one@example.com\n@quarantine.example\n');
      const s = await main({
        SFMC_STANDIN_PORT: '0',
        SFMC_STANDIN_HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        SFMC_STANDIN_QUEUED_MS: '0',
        SFMC_STANDIN_UNSUBSCRIBED: 'gone@example.com, @optout.example',
        SFMC_STANDIN_HELD_FILE: join(dir, 'held.txt'),
      });
      closers.push(() => s.close());
      const reason = (to: string) => s.state.notSentReason(to)?.statusMessage;
      expect([reason('gone@example.com'), reason('a@OPTOUT.example'), reason('held.one@example.com'), reason('b@quarantine.example')]).toEqual([
        'Unsubscribed',
        'Unsubscribed',
        'Held',
        'Held',
      ]);
      expect([reason('x@unsubscribed.example'), reason('someone@example.com')]).toEqual([undefined, undefined]); // defaults replaced
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
