/**
 * The chunk rules (consumers/shared/chunk.ts) with plain objects: a fake handler, a fake
 * Kafka (what was produced, committed, paused). What kafkajs really does around them is
 * proven on the stack (test/stack/heal.test.ts, test/faults).
 */
import { createChunkProcessor, DEFAULT_CHUNK_POLICY, type ChunkProcessor } from '../../../consumers/shared/chunk';
import { HttpError, PipelineError, RecordError } from '../../../consumers/shared/errors';
import type { OutgoingRecord } from '../../../consumers/shared/kafka';
import { createLogger } from '../../../consumers/shared/logger';
import { createMetrics } from '../../../consumers/shared/metrics';
import type { Budget } from '../../../consumers/shared/retry';
import { DLQ_HEADERS, type BatchHandler, type InputRecord, type Outcome } from '../../../consumers/shared/stage';

const silent = createLogger('test', 'silent');

function rec(offset: number, member: string, partition = 0): InputRecord {
  return { topic: 'in', partition, offset: String(offset), key: Buffer.from(member), value: Buffer.from(member), headers: {}, timestamp: '0' };
}
const chunk = (...members: string[]): InputRecord[] => members.map((m, i) => rec(10 + i, m));
const produceOf = (r: InputRecord, extra: Partial<Extract<Outcome, { kind: 'produce' }>> = {}): Outcome => ({
  kind: 'produce',
  trace: r.key?.toString() ?? '',
  records: [{ topic: 'out', key: r.key, value: r.value }],
  ...extra,
});

interface Fake {
  p: ChunkProcessor;
  produced: OutgoingRecord[];
  commits: { partition: number; offset: string }[];
  later: { partition: number; offset: string; pauseMs: number }[];
  calls: { members: string[]; budget: Budget }[];
  clock: { t: number };
}

function fake(handler: (members: string[], records: InputRecord[]) => Outcome[] | Promise<Outcome[]>, policy = {}): Fake {
  const f: Omit<Fake, 'p'> = { produced: [], commits: [], later: [], calls: [], clock: { t: 1_000_000 } };
  const h: BatchHandler = async (records, budget) => {
    const members = records.map((r) => r.key?.toString() ?? '');
    f.calls.push({ members, budget });
    f.clock.t += 10;
    return handler(members, records);
  };
  const p = createChunkProcessor({
    stage: 'test',
    dlqTopic: 'dlq',
    handler: h,
    logger: silent,
    metrics: createMetrics('test'),
    policy: { ...DEFAULT_CHUNK_POLICY, ...policy },
    now: () => f.clock.t,
    random: () => 0.5,
    io: {
      produce: async (records) => void f.produced.push(...records),
      commit: async (partition, offset) => void f.commits.push({ partition, offset }),
      retryLater: (partition, offset, pauseMs) => void f.later.push({ partition, offset, pauseMs }),
    },
  });
  return { ...f, p };
}

const header = (r: OutgoingRecord | undefined, name: string): string | undefined => r?.headers?.[name]?.toString();
const dlq = (f: Fake): OutgoingRecord[] => f.produced.filter((r) => r.topic === 'dlq');
const outputs = (f: Fake): string[] => f.produced.filter((r) => r.topic === 'out').map((r) => r.key?.toString() ?? '');

test('a chunk that succeeds: outputs written, then last offset + 1 committed, with a budget of budgetMs', async () => {
  const f = fake((_m, records) => records.map((r) => produceOf(r)));
  const records = chunk('a', 'b', 'c');
  expect(await f.p.process(records)).toBe(true);
  expect(outputs(f)).toEqual(['a', 'b', 'c']);
  expect(f.commits).toEqual([{ partition: 0, offset: '13' }]);
  expect(f.later).toEqual([]);
  expect((f.calls[0]?.budget.deadline ?? 0) - 1_000_000).toBe(DEFAULT_CHUNK_POLICY.budgetMs);
});

test('Retry-After longer than the budget: pause for that long, count no attempt, never dead-letter or split', async () => {
  const f = fake(() => {
    throw new HttpError('SFMC_THROTTLED', 'SFMC send answered HTTP 429', { status: 429, retryAfterMs: 12_000 });
  });
  const records = chunk('a', 'b', 'c');
  for (let i = 0; i < 6; i++) expect(await f.p.process(records)).toBe(false);
  expect(f.later).toHaveLength(6);
  expect(f.later.every((l) => l.offset === '10' && l.pauseMs === 12_000)).toBe(true);
  expect(f.calls.every((c) => c.members.length === 3)).toBe(true); // never one by one
  expect(f.produced).toEqual([]);
  expect(f.commits).toEqual([]);
});

test('a record that fails transiently forever: after isolateAfter attempts it alone is dead-lettered with reason and attempts, the others go on', async () => {
  const f = fake((members, records) => {
    if (members.includes('poison'))
      throw new HttpError('DW_MALFORMED_RESPONSE', 'DW key API answered 200 with an unusable body', { status: 200, transient: true });
    return records.map((r) => produceOf(r));
  });
  const records = chunk('a', 'poison', 'c');
  for (let i = 0; i < DEFAULT_CHUNK_POLICY.isolateAfter; i++) expect(await f.p.process(records)).toBe(false);
  expect(f.later.map((l) => l.offset)).toEqual(['10', '10', '10']);
  expect(f.later.every((l) => l.pauseMs >= 250)).toBe(true);
  expect(f.produced).toEqual([]);
  // the next read of the same chunk: one by one; poison fails alone once: not yet enough
  expect(await f.p.process(records)).toBe(false);
  expect(f.calls.slice(3).map((c) => c.members)).toEqual([['a'], ['poison'], ['c']]);
  expect(outputs(f)).toEqual(['a']);
  expect(dlq(f)).toEqual([]);
  expect(f.later.at(-1)?.offset).toBe('11');
  // the re-read from poison: it fails alone a second time while c succeeds after it
  expect(await f.p.process(records.slice(1))).toBe(true);
  expect(f.calls.slice(6).map((c) => c.members)).toEqual([['poison'], ['c']]);
  expect(outputs(f)).toEqual(['a', 'c']);
  const [dead] = dlq(f);
  expect(dlq(f)).toHaveLength(1);
  expect(dead?.key?.toString()).toBe('poison');
  // 3 tries of the chunk + 2 alone
  expect(header(dead, DLQ_HEADERS.attempts)).toBe(String(DEFAULT_CHUNK_POLICY.isolateAfter + 2));
  expect(header(dead, DLQ_HEADERS.errorCode)).toBe('DW_MALFORMED_RESPONSE');
  expect(header(dead, DLQ_HEADERS.reason)).toMatch(/alone while other records succeeded: DW key API answered 200/);
  expect(f.commits.at(-1)).toEqual({ partition: 0, offset: '13' });
  // isolation is over: the next chunk goes as a whole again
  expect(await f.p.process([rec(13, 'd'), rec(14, 'e')])).toBe(true);
  expect(f.calls.at(-1)?.members).toEqual(['d', 'e']);
});

test('the poison record last in its chunk is dead-lettered once a later call (another partition) succeeds', async () => {
  const f = fake((members, records) => {
    if (members.includes('poison')) throw new PipelineError('SFMC_MISSING_OUTCOME', 'no SFMC outcome', { transient: true });
    return records.map((r) => produceOf(r));
  });
  const records = chunk('a', 'poison');
  for (let i = 0; i < 3; i++) await f.p.process(records);
  // one by one: 'a' succeeds first, so the proof must come from a call started after poison's own
  expect(await f.p.process(records)).toBe(false);
  expect(outputs(f)).toEqual(['a']);
  expect(dlq(f)).toEqual([]);
  expect(f.later.at(-1)?.offset).toBe('11');
  expect(await f.p.process([rec(50, 'x', 1)])).toBe(true); // another partition works
  expect(await f.p.process([rec(11, 'poison')])).toBe(false); // one proven failure: not enough
  expect(dlq(f)).toEqual([]);
  expect(await f.p.process([rec(51, 'y', 1)])).toBe(true);
  expect(await f.p.process([rec(11, 'poison')])).toBe(true); // the second proven failure
  expect(dlq(f).map((r) => r.key?.toString())).toEqual(['poison']);
  expect(f.commits.at(-1)).toEqual({ partition: 0, offset: '12' });
});

test('an outage (every record fails, also alone): paused, nothing dead-lettered, however often', async () => {
  const f = fake(() => {
    throw new HttpError('DW_UNAVAILABLE', 'DW key API answered 503', { status: 503 });
  });
  const records = chunk('a', 'b', 'c');
  for (let i = 0; i < 12; i++) expect(await f.p.process(records)).toBe(false);
  expect(f.produced).toEqual([]);
  expect(f.commits).toEqual([]);
  expect(f.later.every((l) => l.offset === '10' && l.pauseMs >= 250 && l.pauseMs <= 10_000)).toBe(true);
});

test('an outage with records that need no dependency (skips) in between: those are no proof, nothing is dead-lettered', async () => {
  const f = fake((members) => {
    if (members.every((m) => m.startsWith('skip'))) return members.map(() => ({ kind: 'skip', reason: 'not-a-create' }));
    throw new HttpError('DW_UNAVAILABLE', 'DW key API answered 503', { status: 503 });
  });
  const records = chunk('a', 'skip1', 'b', 'skip2', 'c');
  for (let i = 0; i < 10; i++) await f.p.process(records.slice(Number(f.commits.at(-1)?.offset ?? '10') - 10));
  expect(dlq(f)).toEqual([]);
  expect(outputs(f)).toEqual([]);
});

test('a permanent error of the chunk: split at once, only the record that fails alone is dead-lettered (attempt 1)', async () => {
  const f = fake((members, records) => {
    if (members.includes('bad')) throw new HttpError('SFMC_HTTP_413', 'SFMC send answered HTTP 413', { status: 413, transient: false });
    return records.map((r) => produceOf(r));
  });
  expect(await f.p.process(chunk('a', 'bad', 'c'))).toBe(true);
  expect(f.calls.map((c) => c.members)).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
  expect(outputs(f)).toEqual(['a', 'c']);
  // tried twice: in the chunk, then alone
  expect(dlq(f).map((r) => [r.key?.toString(), header(r, DLQ_HEADERS.errorClass), header(r, DLQ_HEADERS.attempts)])).toEqual([
    ['bad', 'permanent', '2'],
  ]);
  expect(f.commits).toEqual([{ partition: 0, offset: '13' }]);
});

test('our credentials refused: paused with backoff, never dead-lettered, never split', async () => {
  const f = fake(() => {
    throw new HttpError('SFMC_AUTH_REJECTED', 'SFMC refused our client credentials', { status: 401, transient: false });
  });
  for (let i = 0; i < 8; i++) expect(await f.p.process(chunk('a', 'b'))).toBe(false);
  expect(f.produced).toEqual([]);
  expect(f.calls.every((c) => c.members.length === 2)).toBe(true);
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
  expect(f.later).toEqual([{ partition: 0, offset: '11', pauseMs: expect.any(Number) }]);
});

test('a handler that returns the wrong number of outcomes is a failure, not a silent skip', async () => {
  const f = fake(() => []);
  expect(await f.p.process(chunk('a'))).toBe(false);
  expect(f.commits).toEqual([]);
});
