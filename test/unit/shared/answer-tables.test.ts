/**
 * The answer tables, row by row: each row's example answer is classified as that row (for
 * every key of the request) and no earlier row takes it; every table ends with a catch-all
 * unknown; ids are unique; the page docs/contracts/answers.md is the tables' rendering. Then
 * every SFMC send row and every warehouse row is served by its stand-in and read by the real
 * client, which must report that row.
 */
import { readFileSync } from 'node:fs';
import { type AnswerError, classify, toAnswer, VERDICTS, type AnswerRow } from '../../../consumers/shared/answers';
import { createDwKeyClient, memberRef } from '../../../consumers/shared/dw-client';
import { createLogger } from '../../../consumers/shared/logger';
import { createSfmcClient, welcomeMessageKey, type SfmcRecipient } from '../../../consumers/shared/sfmc-client';
import { createDwKeyApiStandin } from '../../../standins/dw-key-api/server';
import { createSfmcStandin } from '../../../standins/sfmc/server';
import { ANSWER_TABLES, PAGE, withRenderedTables } from '../../../tools/answer-tables';

const silent = createLogger('test', 'silent');
/** Keys a request asks about, as the call knows them. */
const keysFor = (row: AnswerRow): string[] =>
  row.call === 'sfmc-send'
    ? row.id.startsWith('send.single')
      ? ['welcome-k1']
      : ['welcome-k1', 'welcome-k2', 'welcome-k3']
    : row.call === 'dw-lookup'
      ? [memberRef('UA', '1'), memberRef('UA', '2')]
      : row.call === 'dw-key'
        ? [memberRef('UA', '1')]
        : row.call === 'sfmc-status'
          ? ['welcome-k1']
          : [];

describe.each(ANSWER_TABLES)('the answer table of $call', ({ rows }) => {
  test.each(rows.map((r) => [r.id, r] as const))('%s: its example answer is classified as this row, for every key', (_id, row) => {
    const keys = keysFor(row);
    const answer = toAnswer(row.example(keys), keys);
    for (const key of keys.length > 0 ? keys : [undefined]) expect(classify(rows, answer, key).id).toBe(row.id);
    expect(VERDICTS).toContain(row.verdict);
    expect(row.answer.length).toBeGreaterThan(10);
    expect(row.then.length).toBeGreaterThan(10);
    if (row.bisect) expect(row.verdict).toBe('unknown');
  });

  test('ends with a row that takes any answer, as unknown; ids are unique and name their call', () => {
    const last = rows[rows.length - 1] as AnswerRow;
    expect(last.verdict).toBe('unknown');
    expect(last.matches(toAnswer({ status: 418, body: 'teapot' }, []), undefined)).toBe(true);
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
  });
});

test('only SFMC naming the recipient is "sent": every ok row of the send table names the key or is a one-recipient duplicate', () => {
  const send = ANSWER_TABLES.find((t) => t.call === 'sfmc-send')?.rows ?? [];
  expect(send.filter((r) => r.verdict === 'ok').map((r) => r.id)).toEqual(['send.single-duplicate', 'send.item-duplicate', 'send.item-queued']);
  // a 2xx naming nobody is never ok
  const bare = toAnswer({ status: 202, headers: { 'content-type': 'application/json' }, body: '{"requestId":"r","errorcode":0}' }, ['a', 'b']);
  expect(classify(send, bare, 'a')).toMatchObject({ id: 'send.2xx-no-item', verdict: 'unknown' });
});

test('docs/contracts/answers.md holds the rendering of these tables (node dist/tools/answer-tables.js write)', () => {
  const page = readFileSync(PAGE, 'utf8');
  expect(page).toBe(withRenderedTables(page));
});

describe('the stand-ins serve every row, and the real clients read each as that row', () => {
  const sendRows = ANSWER_TABLES.find((t) => t.call === 'sfmc-send')?.rows ?? [];
  /** Rows a client reads as another on purpose: sent alone, a batch duplicate becomes a single one. */
  const readAs: Record<string, string> = { 'send.whole-duplicate': 'send.single-duplicate' };
  const recipients = (n: number): SfmcRecipient[] =>
    Array.from({ length: n }, (_, i) => ({
      contactKey: `SK-${i}`,
      to: `r${i}@example.com`,
      messageKey: welcomeMessageKey('UA', `row-${Date.now()}-${i}`),
    }));

  test.each(sendRows.map((r) => [r.id, r] as const))('SFMC %s', async (_id, row) => {
    const standin = await createSfmcStandin({ port: 0 });
    const client = createSfmcClient(
      {
        authBaseUrl: standin.url,
        clientId: 'local-client',
        clientSecret: 'local-secret',
        requestTimeoutMs: 500,
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
      },
      { logger: silent },
    );
    try {
      await fetch(`${standin.url}/__standin/faults`, { method: 'POST', body: JSON.stringify({ answer: row.id }) });
      const outcomes = await client.sendBatch(
        'welcome-ua',
        recipients(row.id.startsWith('send.single') ? 1 : 2),
        undefined,
        { deadline: Date.now() + 3_000 },
        'org:UA',
      );
      for (const o of outcomes) {
        expect(o.answer).toBe(readAs[row.id] ?? row.id);
        if (o.status === 'failed') expect((o.error as AnswerError).verdict).toBe(row.verdict);
      }
    } finally {
      await client.close();
      await standin.close();
    }
  });

  const tokenAndStatus = ANSWER_TABLES.filter((t) => t.call === 'sfmc-token' || t.call === 'sfmc-status').flatMap((t) => t.rows);
  test.each(tokenAndStatus.map((r) => [r.id, r] as const))('SFMC %s', async (_id, row) => {
    const standin = await createSfmcStandin({ port: 0 });
    const seen: string[] = [];
    const client = createSfmcClient(
      {
        authBaseUrl: standin.url,
        clientId: 'local-client',
        clientSecret: 'local-secret',
        requestTimeoutMs: 500,
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
      },
      { logger: silent, onAnswer: (r) => seen.push(r.id) },
    );
    try {
      const [r] = recipients(1);
      if (row.call === 'sfmc-status') await client.sendOne('welcome-ua', r as SfmcRecipient);
      await fetch(`${standin.url}/__standin/faults`, { method: 'POST', body: JSON.stringify({ answer: row.id }) });
      if (row.call === 'sfmc-token') await client.sendOne('welcome-ua', r as SfmcRecipient);
      else await client.getStatus((r as SfmcRecipient).messageKey).catch(() => undefined);
      expect(seen.filter((id) => id.startsWith(row.id.split('.')[0] as string)).at(-1)).toBe(row.id);
    } finally {
      await client.close();
      await standin.close();
    }
  });

  const dwRows = ANSWER_TABLES.filter((t) => t.call === 'dw-lookup' || t.call === 'dw-key').flatMap((t) => t.rows);
  test.each(dwRows.map((r) => [r.id, r] as const))('warehouse %s', async (_id, row) => {
    const standin = await createDwKeyApiStandin({ token: 't' });
    const client = createDwKeyClient(
      { baseUrl: standin.url, apiToken: 't', requestTimeoutMs: 500, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 }, cacheSize: 0 },
      { logger: silent },
    );
    const seen: string[] = [];
    const counting = createDwKeyClient(
      { baseUrl: standin.url, apiToken: 't', requestTimeoutMs: 500, retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 5 }, cacheSize: 0 },
      { logger: silent, onAnswer: (r) => seen.push(r.id) },
    );
    try {
      standin.setFaults({ answer: [row.id] });
      const members =
        row.call === 'dw-key'
          ? [{ orgId: 'UA', memberId: '1' }]
          : [
              { orgId: 'UA', memberId: '1' },
              { orgId: 'UA', memberId: '2' },
            ];
      const result = await counting.lookup(members).then(
        (r) => [...r.values()].map((v) => (v.ok ? 'ok' : 'member')),
        (err: unknown) => (err as AnswerError).verdict,
      );
      expect(seen[0]).toBe(row.id);
      expect([result].flat()[0]).toBe(row.verdict);
      await client.lookup(members).catch(() => undefined); // the client with retries gives up without hanging too
    } finally {
      await Promise.all([client.close(), counting.close()]);
      await standin.close();
    }
  });
});
