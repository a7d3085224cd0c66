import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from 'undici';
import { candidateKey } from '../../../standins/dw-key-api/key-store';
import { createDwKeyApiStandin, type DwKeyApiStandin } from '../../../standins/dw-key-api/server';

const TOKEN = 'test-dw-token';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => unknown;
}

async function call(
  standin: DwKeyApiStandin,
  method: 'GET' | 'POST' | 'DELETE',
  urlPath: string,
  body?: unknown,
  token: string | null = TOKEN,
): Promise<Answer> {
  const res = await request(standin.url + urlPath, {
    method,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

const lookup = (standin: DwKeyApiStandin, members: unknown[], token: string | null = TOKEN): Promise<Answer> =>
  call(standin, 'POST', '/v1/subscriber-keys:lookup', { members }, token);

function keysOf(answer: Answer): Map<string, string> {
  const body = answer.json() as { keys: Array<{ orgId: string; memberId: string; subscriberKey: string }> };
  return new Map(body.keys.map((k) => [`${k.orgId}/${k.memberId}`, k.subscriberKey]));
}

describe('DW Subscriber Key API stand-in', () => {
  let standin: DwKeyApiStandin;
  let dir: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-standin-'));
    standin = await createDwKeyApiStandin({ token: TOKEN, dataFile: path.join(dir, 'keys.jsonl') });
  });

  afterEach(async () => {
    await standin.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives stable keys: the same member twice gets the same key, different members differ', async () => {
    const members = [
      { orgId: 'UA', memberId: '00123456' },
      { orgId: 'UA', memberId: '00123457' },
      { orgId: 'AA', memberId: '00123456' },
    ];
    const first = await lookup(standin, members);
    const second = await lookup(standin, [...members].reverse());
    expect(first.status).toBe(200);
    const a = keysOf(first);
    expect(keysOf(second)).toEqual(a);
    expect(new Set(a.values()).size).toBe(3);
    for (const [ref, key] of a) {
      expect(key.startsWith(`${ref.split('/')[0]}-`)).toBe(true);
      expect(key.length).toBeLessThanOrEqual(254);
    }
    expect(standin.stats()).toMatchObject({ lookups: 2, membersLooked: 6, keysCreated: 3, keysStored: 3 });
  });

  it('keeps keys across a restart on the same data file, and tolerates a torn last line', async () => {
    const members = [
      { orgId: 'DL', memberId: 'm-1' },
      { orgId: 'DL', memberId: 'm-2' },
    ];
    const before = keysOf(await lookup(standin, members));
    await standin.close();
    fs.appendFileSync(path.join(dir, 'keys.jsonl'), '{"orgId":"DL","memb'); // a crash mid-append

    standin = await createDwKeyApiStandin({ token: TOKEN, dataFile: path.join(dir, 'keys.jsonl') });
    expect(standin.stats().keysStored).toBe(2);
    const after = keysOf(await lookup(standin, members));
    expect(after).toEqual(before);
    expect(standin.stats().keysCreated).toBe(0);

    await lookup(standin, [{ orgId: 'DL', memberId: 'm-3' }]); // appends cleanly after the dropped fragment
    await standin.close();
    standin = await createDwKeyApiStandin({ token: TOKEN, dataFile: path.join(dir, 'keys.jsonl') });
    expect(standin.stats().keysStored).toBe(3);
  });

  it('never hands one key to two members: a taken candidate key moves to the next salt', async () => {
    await standin.close();
    const file = path.join(dir, 'keys.jsonl');
    const taken = candidateKey('UA', 'new', 0);
    fs.writeFileSync(file, JSON.stringify({ orgId: 'UA', memberId: 'squatter', subscriberKey: taken }) + '\n');
    standin = await createDwKeyApiStandin({ token: TOKEN, dataFile: file });
    const keys = keysOf(
      await lookup(standin, [
        { orgId: 'UA', memberId: 'new' },
        { orgId: 'UA', memberId: 'squatter' },
      ]),
    );
    expect(keys.get('UA/squatter')).toBe(taken);
    expect(keys.get('UA/new')).toBe(candidateKey('UA', 'new', 1));
  });

  it('answers every requested member exactly once, with UNKNOWN_ORG and INVALID_MEMBER_ID per member', async () => {
    const answer = await lookup(standin, [
      { orgId: 'UA', memberId: 'ok-1' },
      { orgId: 'UA', memberId: 'ok-1' }, // asked twice, answered once
      { orgId: 'ZZ', memberId: '1' },
      { orgId: 'UA', memberId: '' },
      { orgId: 'UA', memberId: 'x'.repeat(65) },
      { orgId: 'UA', memberId: 'bad\nid' },
    ]);
    expect(answer.status).toBe(200);
    const body = answer.json() as { keys: unknown[]; errors: Array<{ orgId: string; memberId: string; code: string; message: string }> };
    expect(body.keys).toHaveLength(1);
    expect(body.errors.map((e) => [e.orgId, e.memberId.slice(0, 6), e.code])).toEqual([
      ['ZZ', '1', 'UNKNOWN_ORG'],
      ['UA', '', 'INVALID_MEMBER_ID'],
      ['UA', 'xxxxxx', 'INVALID_MEMBER_ID'],
      ['UA', 'bad\nid', 'INVALID_MEMBER_ID'],
    ]);
    expect(body.errors.every((e) => e.message.length > 0)).toBe(true);
    expect(standin.stats().keysCreated).toBe(1);
  });

  it('answers 400 to more than 500 items, no items, non-JSON and items without string ids', async () => {
    const many = Array.from({ length: 501 }, (_, i) => ({ orgId: 'UA', memberId: String(i) }));
    const tooMany = await lookup(standin, many);
    expect(tooMany.status).toBe(400);
    expect(tooMany.json()).toMatchObject({ error: 'TOO_MANY_ITEMS' });
    expect((await lookup(standin, [])).status).toBe(400);
    expect((await call(standin, 'POST', '/v1/subscriber-keys:lookup', '{"members": [')).status).toBe(400);
    expect((await lookup(standin, [{ orgId: 'UA', memberId: 7 }])).status).toBe(400);
    expect(
      (
        await lookup(
          standin,
          Array.from({ length: 500 }, (_, i) => ({ orgId: 'UA', memberId: String(i) })),
        )
      ).status,
    ).toBe(200);
    expect(standin.stats().keysCreated).toBe(500);
  });

  it('answers 401 to a missing or wrong token, and serves /healthz without one', async () => {
    const members = [{ orgId: 'UA', memberId: '1' }];
    expect((await lookup(standin, members, null)).status).toBe(401);
    expect((await lookup(standin, members, 'wrong')).status).toBe(401);
    expect((await call(standin, 'GET', '/v1/subscriber-keys/UA/1', undefined, 'wrong')).status).toBe(401);
    expect((await call(standin, 'GET', '/healthz', undefined, null)).status).toBe(200);
    expect(standin.stats().keysCreated).toBe(0);
  });

  it('looks up one key by path: same key as the batch, 404 UNKNOWN_ORG for an unknown org', async () => {
    const batch = keysOf(await lookup(standin, [{ orgId: 'UA', memberId: 'a/b' }]));
    const one = await call(standin, 'GET', `/v1/subscriber-keys/UA/${encodeURIComponent('a/b')}`);
    expect(one.status).toBe(200);
    expect(one.json()).toEqual({ orgId: 'UA', memberId: 'a/b', subscriberKey: batch.get('UA/a/b') });
    const unknown = await call(standin, 'GET', '/v1/subscriber-keys/ZZ/1');
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'UNKNOWN_ORG' });
  });

  it('injects 429 with Retry-After and a burst of 503 for the next N requests, then serves again', async () => {
    const set = await call(standin, 'POST', '/__standin/faults', { fail429: 1, retryAfterS: 3, fail5xx: 2 });
    expect(set.json()).toMatchObject({ fail429: 1, retryAfterS: 3, fail5xx: 2 });
    const members = [{ orgId: 'UA', memberId: '1' }];
    const throttled = await lookup(standin, members);
    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('3');
    expect((await lookup(standin, members)).status).toBe(503);
    expect((await lookup(standin, members)).status).toBe(503);
    expect((await lookup(standin, members)).status).toBe(200);
    expect((await call(standin, 'GET', '/__standin/stats')).json()).toMatchObject({ byStatus: { '200': 1, '429': 1, '503': 2 } });
  });

  it('simulates an outage with down:true (healthz too) while the control routes keep working', async () => {
    await call(standin, 'POST', '/__standin/faults', { down: true });
    expect((await lookup(standin, [{ orgId: 'UA', memberId: '1' }])).status).toBe(503);
    expect((await call(standin, 'GET', '/healthz')).status).toBe(503);
    expect((await call(standin, 'GET', '/__standin/faults')).json()).toMatchObject({ down: true });
    await call(standin, 'POST', '/__standin/faults', { down: false });
    expect((await call(standin, 'GET', '/healthz')).status).toBe(200);
    expect((await lookup(standin, [{ orgId: 'UA', memberId: '1' }])).status).toBe(200);
  });

  it('answers 200 with a non-JSON body for the next N lookups when told to', async () => {
    await call(standin, 'POST', '/__standin/faults', { malformedJson: 1 });
    const garbage = await lookup(standin, [{ orgId: 'UA', memberId: '1' }]);
    expect(garbage.status).toBe(200);
    expect(() => garbage.json()).toThrow();
    expect((await lookup(standin, [{ orgId: 'UA', memberId: '1' }])).json()).toHaveProperty('keys');
  });

  it('fails a random share of requests and adds latency, both cleared by DELETE', async () => {
    standin.setFaults({ failShare: 1, latencyMs: 150 });
    const started = Date.now();
    expect((await lookup(standin, [{ orgId: 'UA', memberId: '1' }])).status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const cleared = await call(standin, 'DELETE', '/__standin/faults');
    expect(cleared.json()).toMatchObject({ failShare: 0, latencyMs: 0, down: false });
    expect((await lookup(standin, [{ orgId: 'UA', memberId: '1' }])).status).toBe(200);
  });

  it('rejects an unknown or ill-typed fault with 400 and leaves the faults unchanged', async () => {
    expect((await call(standin, 'POST', '/__standin/faults', { fail5xxx: 1 })).status).toBe(400);
    expect((await call(standin, 'POST', '/__standin/faults', { failShare: 2 })).status).toBe(400);
    expect((await call(standin, 'POST', '/__standin/faults', { down: 'yes' })).status).toBe(400);
    expect(standin.faults()).toMatchObject({ fail5xx: 0, failShare: 0, down: false });
  });

  it('close() does not wait for a request parked in injected latency', async () => {
    standin.setFaults({ latencyMs: 60_000 });
    // The stand-in parks the request synchronously inside its 'request' handler, which runs before ours.
    const arrived = new Promise((resolve) => standin.server.once('request', resolve));
    const parked = lookup(standin, [{ orgId: 'UA', memberId: '1' }]).catch((err: unknown) => err);
    await arrived;
    const started = Date.now();
    await standin.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await parked).toBeInstanceOf(Error); // the connection was cut, no answer
    standin = await createDwKeyApiStandin({ token: TOKEN }); // for afterEach
  });
});
