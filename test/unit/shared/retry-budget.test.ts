import { ConfigError, HttpError } from '../../../consumers/shared/errors';
import { withRetry } from '../../../consumers/shared/retry';
import { loadStageTuning } from '../../../consumers/shared/stage-config';

const policy = { attempts: 5, baseDelayMs: 10, maxDelayMs: 3_000 };
const throttled = (s: number): HttpError => new HttpError('SFMC_THROTTLED', 'SFMC send answered HTTP 429', { status: 429, retryAfterMs: s * 1000 });

test('a Retry-After longer than what is left of the budget is not waited for: the error (with its Retry-After) comes back at once', async () => {
  const started = Date.now();
  let calls = 0;
  const err = await withRetry(
    async () => {
      calls++;
      throw throttled(12);
    },
    policy,
    {},
    { deadline: Date.now() + 4_000 },
  ).catch((e: unknown) => e);
  expect(calls).toBe(1);
  expect(Date.now() - started).toBeLessThan(1_000);
  expect((err as HttpError).retryAfterMs).toBe(12_000);
});

test('each attempt is told what is left of the budget; waits that fit are taken', async () => {
  const lefts: number[] = [];
  const result = await withRetry(
    async (attempt, left) => {
      lefts.push(left);
      if (attempt < 3) throw throttled(0.05);
      return 'ok';
    },
    policy,
    {},
    { deadline: Date.now() + 2_000 },
  );
  expect(result).toBe('ok');
  expect(lefts).toHaveLength(3);
  expect(lefts.every((l) => l <= 2_000 && l > 1_500)).toBe(true);
  expect(lefts[2]).toBeLessThan(lefts[0] as number);
});

test('without a budget nothing changes: Infinity left, Retry-After capped at 4 x maxDelayMs', async () => {
  const lefts: number[] = [];
  await withRetry(async (attempt, left) => {
    lefts.push(left);
    if (attempt < 2) throw throttled(0.01);
    return 1;
  }, policy);
  expect(lefts).toEqual([Infinity, Infinity]);
});

test('an exhausted budget is a transient BUDGET_EXHAUSTED before any call', async () => {
  const err = await withRetry(async () => 1, policy, {}, { deadline: Date.now() + 50 }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'BUDGET_EXHAUSTED', transient: true });
});

describe('stage tuning (env)', () => {
  test('defaults add up: 6 s session, 1 s heartbeat, 4 s chunk budget, rebalance timeout above the budget', () => {
    expect(loadStageTuning({})).toEqual({
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 1_000,
      rebalanceTimeoutMs: 14_000,
      chunkBudgetMs: 4_000,
      isolateAfter: 3,
      stallTimeoutMs: 180_000,
      restartGraceMs: 60_000,
    });
  });
  test.each([
    [{ CHUNK_BUDGET_MS: '5000' }, /CHUNK_BUDGET_MS \(5000\) must be at most 3\/4 of KAFKA_SESSION_TIMEOUT_MS/],
    [{ KAFKA_SESSION_TIMEOUT_MS: '30000', CHUNK_BUDGET_MS: '8000' }, /shutdown deadline/],
    // the budget, the produce and commit deadlines and leaving the group add up to the 9-s shutdown
    [
      { KAFKA_SESSION_TIMEOUT_MS: '30000', CHUNK_BUDGET_MS: '4600' },
      /must leave 4500 ms \(produce 2000, commit 1500, leave 1000\) inside the 9000 ms shutdown deadline/,
    ],
    [{ STAGE_STALL_TIMEOUT_MS: '40000' }, /STAGE_STALL_TIMEOUT_MS \(40000\) must exceed/],
    [{ STAGE_STALL_TIMEOUT_MS: 'soon' }, /STAGE_STALL_TIMEOUT_MS/],
    [{ KAFKA_SESSION_TIMEOUT_MS: '3000' }, /KAFKA_SESSION_TIMEOUT_MS/],
  ])('%j is refused with the variable named', (env, message) => {
    expect(() => loadStageTuning(env)).toThrow(ConfigError);
    expect(() => loadStageTuning(env)).toThrow(message);
  });
});
