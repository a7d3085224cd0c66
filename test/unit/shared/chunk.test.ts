/**
 * The chunk rules (consumers/shared/chunk.ts, bisection.ts) with plain objects: a fake handler,
 * a fake Kafka (what was produced, committed, paused). What kafkajs really does around them is
 * proven on the stack (test/stack/heal.test.ts, test/faults).
 */
import { AnswerError, type AnswerRow } from '../../../consumers/shared/answers';
import { createChunkProcessor, DEFAULT_CHUNK_POLICY, type ChunkProcessor, type PauseKind } from '../../../consumers/shared/chunk';
import { LOOKUP_ANSWERS } from '../../../consumers/shared/dw-answers';
import { HttpError, PipelineError, RecordError } from '../../../consumers/shared/errors';
import { createHolds, type Holds } from '../../../consumers/shared/holds';
import type { OutgoingRecord } from '../../../consumers/shared/kafka';
import { createLogger } from '../../../consumers/shared/logger';
import { createMetrics } from '../../../consumers/shared/metrics';
import type { Budget } from '../../../consumers/shared/retry';
import { SEND_ANSWERS } from '../../../consumers/shared/sfmc-answers';
import { DLQ_HEADERS, type BatchHandler, type InputRecord, type Outcome } from '../../../consumers/shared/stage';

const silent = createLogger('test', 'silent');
const ROWS = new Map<string, AnswerRow>([...SEND_ANSWERS, ...LOOKUP_ANSWERS].map((r) => [r.id, r]));
const answerError = (row: string, scope = 'org:UA'): AnswerError =>
  new AnswerError(ROWS.get(row) as AnswerRow, `answered like ${row}`, { scope, ...(row === 'send.429' ? { retryAfterMs: 12_000 } : {}) });

function rec(offset: number, member: string, partition = 0): InputRecord {
  return { topic: 'in', partition, offset: String(offset), key: Buffer.from(member), value: Buffer.from(member), headers: {}, timestamp: '0' };
}
const chunk = (...members: string[]): InputRecord[] => members.map((m, i) => rec(10 + i, m));
const produceOf = (r: InputRecord, extra: Partial<Extract<Outcome, { kind: 'produce' }>> = {}): Outcome => ({
  kind: 'produce',
  trace: r.key?.toString() ?? '',
  records: [{ topic: 'out', key: r.key, value: r.value }],
  scope: 'org:UA',
  ...extra,
});

interface Fake {
  p: ChunkProcessor;
  holds: Holds;
  produced: OutgoingRecord[];
  commits: { partition: number; offset: string }[];
  later: { partition: number; offset: string; pauseMs: number; kind?: PauseKind }[];
  calls: { members: string[]; budget: Budget }[];
  clock: { t: number };
}

/** `cost`: clock milliseconds each handler call takes; `produceFails`: how many produces time out first. */
function fake(
  handler: (members: string[], records: InputRecord[], opts?: { control?: boolean }) => Outcome[] | Promise<Outcome[]>,
  policy = {},
  cost = 10,
  produceFails = 0,
): Fake {
  let failing = produceFails;
  const f: Omit<Fake, 'p'> = { produced: [], commits: [], later: [], calls: [], clock: { t: 1_000_000 }, holds: createHolds({ logger: silent }) };
  const h: BatchHandler = async (records, budget, opts) => {
    const members = records.map((r) => r.key?.toString() ?? '');
    f.calls.push({ members, budget });
    f.clock.t += cost;
    return handler(members, records, opts);
  };
  const p = createChunkProcessor({
    stage: 'test',
    dlqTopic: 'dlq',
    handler: h,
    logger: silent,
    metrics: createMetrics('test'),
    holds: f.holds,
    policy: { ...DEFAULT_CHUNK_POLICY, ...policy },
    now: () => f.clock.t,
    random: () => 0.5,
    io: {
      produce: async (records) => {
        if (failing-- > 0) throw new PipelineError('KAFKA_DEADLINE', 'the produce took longer than 2000 ms', { transient: true });
        f.produced.push(...records);
      },
      commit: async (partition, offset) => void f.commits.push({ partition, offset }),
      retryLater: (partition, offset, pauseMs, why) => void f.later.push({ partition, offset, pauseMs, kind: why?.kind }),
    },
  });
  return { ...f, p };
}

const header = (r: OutgoingRecord | undefined, name: string): string | undefined => r?.headers?.[name]?.toString();
const dlq = (f: Fake): OutgoingRecord[] => f.produced.filter((r) => r.topic === 'dlq');
const outputs = (f: Fake): string[] => f.produced.filter((r) => r.topic === 'out').map((r) => r.key?.toString() ?? '');
/** A handler where the listed members fail with `err` (the call's other records succeed). */
const failing =
  (bad: (m: string) => boolean, err: () => unknown) =>
  (members: string[], records: InputRecord[]): Outcome[] =>
    records.map((r, i) => (bad(members[i] as string) ? { kind: 'failed', error: err() } : produceOf(r, { keepOnRetry: true })));
/** Re-reads the partition from its last retryLater offset until `done` or `max` passes. */
async function drive(f: Fake, all: InputRecord[], max = 50): Promise<void> {
  for (let i = 0; i < max; i++) {
    const from = f.later.at(-1)?.offset ?? all[0]?.offset;
    const rest = all.filter((r) => BigInt(r.offset) >= BigInt(from ?? '0'));
    if (rest.length === 0 || (await f.p.process(rest))) return;
  }
}

test('a chunk that succeeds: outputs written, then last offset + 1 committed, with a budget of budgetMs', async () => {
  const f = fake((_m, records) => records.map((r) => produceOf(r)));
  const records = chunk('a', 'b', 'c');
  expect(await f.p.process(records)).toBe(true);
  expect(outputs(f)).toEqual(['a', 'b', 'c']);
  expect(f.commits).toEqual([{ partition: 0, offset: '13' }]);
  expect(f.later).toEqual([]);
  expect((f.calls[0]?.budget.deadline ?? 0) - 1_000_000).toBe(DEFAULT_CHUNK_POLICY.budgetMs);
});

test('slow down with Retry-After longer than the budget: pause for that long, count no attempt, never dead-letter or split', async () => {
  const f = fake(() => {
    throw answerError('send.429');
  });
  const records = chunk('a', 'b', 'c');
  for (let i = 0; i < 6; i++) expect(await f.p.process(records)).toBe(false);
  expect(f.later).toHaveLength(6);
  expect(f.later.every((l) => l.offset === '10' && l.pauseMs === 12_000 && l.kind === 'slow-down')).toBe(true);
  expect(f.calls.every((c) => c.members.length === 3)).toBe(true); // never split
  expect(f.produced).toEqual([]);
  expect(f.commits).toEqual([]);
});

test('an outage (no answer, 503, the budget out): paused with backoff ≤ 10 s, nothing dead-lettered or split, however often', async () => {
  const errors = [answerError('send.no-answer'), answerError('send.5xx'), new PipelineError('BUDGET_EXHAUSTED', 'no time left', { transient: true })];
  let n = 0;
  const f = fake(() => {
    throw errors[n++ % errors.length];
  });
  const records = chunk('a', 'b', 'c');
  for (let i = 0; i < 15; i++) expect(await f.p.process(records)).toBe(false);
  expect(f.produced).toEqual([]);
  expect(f.calls.every((c) => c.members.length === 3)).toBe(true);
  expect(f.later.every((l) => l.offset === '10' && l.pauseMs >= 250 && l.pauseMs <= 10_000 && l.kind === 'slow-down')).toBe(true);
});

test('our setup refused (403): the scope is held, paused with backoff, never dead-lettered or split; a release is visible', async () => {
  const f = fake(() => {
    throw answerError('send.403');
  });
  for (let i = 0; i < 8; i++) expect(await f.p.process(chunk('a', 'b'))).toBe(false);
  expect(f.produced).toEqual([]);
  expect(f.calls.every((c) => c.members.length === 2)).toBe(true);
  expect(f.later.every((l) => l.kind === 'setup')).toBe(true);
  expect(f.holds.list()).toEqual([expect.objectContaining({ scope: 'org:UA', reason: 'send.403' })]);
  f.holds.release('org:UA');
  expect(f.holds.list()).toEqual([]);
});

test('an unknown answer for one record forever: after isolateAfter tries the chunk is bisected; it alone is dead-lettered with reason and attempts', async () => {
  // the handler answers the whole call with a failure when poison is in it (a lookup of all members at once)
  const whole = fake((members, records) =>
    members.includes('poison')
      ? records.map(() => ({ kind: 'failed', error: answerError('dw-lookup.other', 'warehouse') }))
      : records.map((r) => produceOf(r, { scope: 'warehouse' })),
  );
  const records = chunk('a', 'b', 'poison', 'c', 'd', 'e', 'f', 'g');
  for (let i = 0; i < DEFAULT_CHUNK_POLICY.isolateAfter - 1; i++) expect(await whole.p.process(records)).toBe(false);
  expect(whole.later.map((l) => [l.offset, l.kind])).toEqual([
    ['10', 'unknown'],
    ['10', 'unknown'],
  ]);
  await drive(whole, records);
  const [dead] = dlq(whole);
  expect(dlq(whole).map((r) => r.key?.toString())).toEqual(['poison']);
  expect(outputs(whole).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  expect(header(dead, DLQ_HEADERS.errorCode)).toBe('DW_LOOKUP_OTHER');
  expect(header(dead, DLQ_HEADERS.reason)).toMatch(/alone while other records succeeded: answered like dw-lookup.other/);
  expect(Number(header(dead, DLQ_HEADERS.attempts))).toBeGreaterThanOrEqual(DEFAULT_CHUNK_POLICY.isolateAfter + 2);
  expect(whole.commits.at(-1)).toEqual({ partition: 0, offset: '18' });
  // bisection, not one by one: far fewer calls than records tried alone
  expect(whole.calls.filter((c) => c.members.length === 1).length).toBeLessThanOrEqual(6);
});

test('a whole-request refusal naming nobody (1 bad of 64): bisected at once, that member alone dead-lettered, the others sent once', async () => {
  const members = Array.from({ length: 64 }, (_, i) => (i === 41 ? 'bad' : `m${i}`));
  const f = fake((ms, records) =>
    ms.includes('bad')
      ? records.map(() => ({ kind: 'failed', error: answerError('send.refused') }))
      : records.map((r) => produceOf(r, { keepOnRetry: true })),
  );
  const records = chunk(...members);
  await drive(f, records);
  expect(dlq(f).map((r) => r.key?.toString())).toEqual(['bad']);
  expect(outputs(f)).toHaveLength(63);
  expect(new Set(outputs(f)).size).toBe(63); // each accepted send's output written once
  expect(f.commits.at(-1)).toEqual({ partition: 0, offset: String(10 + 64) });
  expect(f.calls.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(64)) + 4);
  expect(f.holds.list()).toEqual([]);
});

test('a refusal for everyone (a proxy HTML 400): every half fails alike → a setup hold of the scope, nothing dead-lettered', async () => {
  const f = fake((_m, records) => records.map(() => ({ kind: 'failed', error: answerError('send.refused') })));
  const records = chunk('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
  for (let i = 0; i < 5; i++) await f.p.process(records);
  expect(f.produced).toEqual([]);
  expect(f.holds.list()).toEqual([expect.objectContaining({ scope: 'org:UA', reason: 'send.refused' })]);
  expect(f.later.at(-1)?.kind).toBe('setup');
  // once held, the same answer pauses at once: no second bisection
  const calls = f.calls.length;
  await f.p.process(records);
  expect(f.calls.length).toBe(calls + 1);
});

test('proof is per scope: an organization whose sends keep failing is not proven wrong by another organization succeeding', async () => {
  const f = fake((members, records) =>
    records.map((r, i) =>
      (members[i] as string).startsWith('aa')
        ? { kind: 'failed', error: answerError('send.2xx-no-item', 'org:AA') }
        : produceOf(r, { keepOnRetry: true, scope: 'org:UA' }),
    ),
  );
  const records = chunk('ua1', 'aa1', 'ua2', 'aa2', 'ua3', 'aa3', 'aa4', 'ua4');
  for (let i = 0; i < 12; i++) await drive(f, records, 1);
  expect(dlq(f)).toEqual([]);
  expect(f.holds.list()).toEqual([expect.objectContaining({ scope: 'org:AA', reason: 'send.2xx-no-item' })]);
  expect(outputs(f).sort()).toEqual(['ua1', 'ua2', 'ua3', 'ua4']); // written once each, though uncommitted behind aa1
  expect(f.commits.at(-1)).toEqual({ partition: 0, offset: '11' });
});

test('a bisection that does not fit one budget goes on where it stopped on the next read', async () => {
  // 3 s per call (SFMC's worst case) in a 4 s budget: one piece per pass
  const members = Array.from({ length: 16 }, (_, i) => (i === 9 ? 'bad' : `m${i}`));
  const f = fake(
    (ms, records) =>
      ms.includes('bad')
        ? records.map(() => ({ kind: 'failed', error: answerError('send.refused') }))
        : records.map((r) => produceOf(r, { keepOnRetry: true })),
    {},
    3_000,
  );
  const records = chunk(...members);
  await drive(f, records);
  const sizes = f.calls.map((c) => c.members.length);
  expect(sizes[0]).toBe(16); // the whole chunk once
  expect(sizes.filter((n) => n === 16)).toHaveLength(1); // never started over
  expect(f.later.filter((l) => l.kind === 'continue').length).toBeGreaterThan(3);
  expect(dlq(f).map((r) => r.key?.toString())).toEqual(['bad']);
  expect(outputs(f)).toHaveLength(15);
});

test('an unknown answer that persists without a success for escalateAfterMs is held as a setup fault', async () => {
  const f = fake(
    () => {
      throw answerError('send.2xx-no-item');
    },
    { isolateAfter: 100, escalateAfterMs: 30_000 },
  );
  const records = chunk('a');
  for (let i = 0; i < 4; i++) {
    await f.p.process(records);
    f.clock.t += 10_000;
  }
  expect(f.holds.list()).toEqual([expect.objectContaining({ scope: 'org:UA', reason: 'send.2xx-no-item' })]);
  expect(dlq(f)).toEqual([]);
});

test('an outage with records that need no dependency (skips) in between: those are no proof, nothing is dead-lettered', async () => {
  const f = fake((members) => {
    if (members.every((m) => m.startsWith('skip'))) return members.map(() => ({ kind: 'skip', reason: 'not-a-create' }));
    return members.map((m) =>
      m.startsWith('skip') ? { kind: 'skip', reason: 'not-a-create' } : { kind: 'failed', error: answerError('dw-lookup.other', 'warehouse') },
    );
  });
  const records = chunk('a', 'skip1', 'b', 'skip2', 'c');
  for (let i = 0; i < 20; i++) await drive(f, records, 1);
  expect(dlq(f)).toEqual([]);
  expect(outputs(f)).toEqual([]);
});

test('a partly failed chunk: accepted sends after the failed record keep their output; commit stops before the failed one', async () => {
  const f = fake((_m, records) => [
    produceOf(records[0] as InputRecord, { keepOnRetry: true }),
    { kind: 'failed', error: new HttpError('SFMC_UNAVAILABLE', 'SFMC send answered 503', { status: 503 }) },
    produceOf(records[2] as InputRecord, { keepOnRetry: true }),
    { kind: 'dead-letter', error: new RecordError('INVALID_EMAIL', 'email is not a plausible address') },
  ]);
  expect(await f.p.process(chunk('a', 'b', 'c', 'd'))).toBe(false);
  expect(outputs(f)).toEqual(['a', 'c']);
  expect(dlq(f)).toEqual([]); // d's verdict is written when it is committed, not twice
  expect(f.commits).toEqual([{ partition: 0, offset: '11' }]);
  expect(f.later).toEqual([{ partition: 0, offset: '11', pauseMs: expect.any(Number), kind: 'slow-down' }]);
});

test('a handler that returns the wrong number of outcomes is a failure, not a silent skip', async () => {
  const f = fake(() => []);
  expect(await f.p.process(chunk('a'))).toBe(false);
  expect(f.commits).toEqual([]);
});

test('an encode error (a plain Error) of one record: unknown, proven alone, dead-lettered; its neighbours keep their outputs', async () => {
  const f = fake(
    failing(
      (m) => m === 'odd',
      () => new Error('invalid "long": 1e300'),
    ),
  );
  const records = chunk('a', 'odd', 'b', 'c');
  await drive(f, records);
  expect(dlq(f).map((r) => r.key?.toString())).toEqual(['odd']);
  expect(new Set(outputs(f))).toEqual(new Set(['a', 'b', 'c']));
});

test('a produce past its deadline: the chunk pauses and is redone from what was committed, no error out of eachBatch', async () => {
  const f = fake((_m, records) => records.map((r) => produceOf(r)), {}, 10, 1);
  const records = chunk('a', 'b');
  expect(await f.p.process(records)).toBe(false);
  expect(f.commits).toEqual([]);
  expect(f.later).toEqual([{ partition: 0, offset: '10', pauseMs: expect.any(Number), kind: 'slow-down' }]);
  expect(await f.p.process(records)).toBe(true);
  expect(outputs(f)).toEqual(['a', 'b']);
  expect(f.commits).toEqual([{ partition: 0, offset: '12' }]);
});

test('answers that go bad for everyone during a bisection prove nothing: the control fails too, only the bad record is dead-lettered', async () => {
  let call = 0;
  const f = fake((ms, records) => {
    call++;
    const outage = call >= 3 && call <= 8; // every answer unreadable for a while, mid-bisection
    return records.map((r, i) =>
      outage || ms[i] === 'bad' || (ms.includes('bad') && ms.length > 1)
        ? { kind: 'failed', error: answerError(outage ? 'send.2xx-no-item' : 'send.refused') }
        : produceOf(r, { keepOnRetry: true }),
    );
  });
  const records = chunk('a', 'b', 'c', 'd', 'e', 'bad', 'g', 'h');
  await drive(f, records, 80);
  expect(dlq(f).map((r) => r.key?.toString())).toEqual(['bad']);
  expect(new Set(outputs(f))).toEqual(new Set(['a', 'b', 'c', 'd', 'e', 'g', 'h']));
});

/** SFMC behind our audit guard: a member sent before is skipped when asked again (unless as a control); any request carrying 'bad' is refused whole. */
const refusingBadWithAuditGuard =
  (sent: Set<string>) =>
  (members: string[], records: InputRecord[], opts?: { control?: boolean }): Outcome[] =>
    members.includes('bad')
      ? records.map(() => ({ kind: 'failed', error: answerError('send.refused') }))
      : records.map((r, i) => {
          const m = members[i] as string;
          if (sent.has(m) && !opts?.control) return { kind: 'skip', reason: 'already-sent', trace: m };
          sent.add(m);
          return produceOf(r, { keepOnRetry: true });
        });

test('the bad member last of its chunk, its neighbours skipped when asked again (their audit rows): the next records are the controls', async () => {
  // seen in CI: the neighbours asked as controls were already sent, so nothing proved the bad
  // member's failure and it waited for ever, with the 31 members behind it in its partition
  const sent = new Set<string>();
  const f = fake(refusingBadWithAuditGuard(sent));
  const first = chunk('a', 'b', 'c', 'bad');
  const all = [...first, rec(14, 'e'), rec(15, 'f'), rec(16, 'g')];
  await f.p.process(first);
  await drive(f, all, 80);
  expect(dlq(f).map((r) => r.key?.toString())).toEqual(['bad']);
  expect(outputs(f).sort()).toEqual(['a', 'b', 'c', 'e', 'f', 'g']); // each once
  expect(f.commits.at(-1)).toEqual({ partition: 0, offset: '17' });
  expect(f.holds.list()).toEqual([]);
});

test('held as a setup fault, then its scope works for others: the chunk is bisected, not held again at every release', async () => {
  let everyoneRefused = true;
  const sent = new Set<string>();
  const guarded = refusingBadWithAuditGuard(sent);
  const f = fake((members, records, opts) =>
    everyoneRefused && records[0]?.partition === 0
      ? records.map(() => ({ kind: 'failed', error: answerError('send.refused') }))
      : guarded(members, records, opts),
  );
  const records = chunk('a', 'bad', 'c', 'd', 'e', 'f');
  for (let i = 0; i < 5; i++) await f.p.process(records);
  expect(f.holds.list()).toEqual([expect.objectContaining({ scope: 'org:UA', reason: 'send.refused' })]);
  expect(f.later.at(-1)?.kind).toBe('setup');
  // the proxy is gone; another partition's member of the same organization is sent
  everyoneRefused = false;
  f.clock.t += 1_000;
  expect(await f.p.process([rec(100, 'z', 1)])).toBe(true);
  f.holds.release('org:UA'); // what the emailer's good answer does
  f.later.push({ partition: 0, offset: '10', pauseMs: 0 });
  await drive(f, records, 80);
  expect(dlq(f).map((r) => r.key?.toString())).toEqual(['bad']);
  expect(outputs(f).sort()).toEqual(['a', 'c', 'd', 'e', 'f', 'z']);
  expect(f.commits.filter((c) => c.partition === 0).at(-1)).toEqual({ partition: 0, offset: '16' });
});
