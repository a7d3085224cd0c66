import { PipelineError, isTransient } from './errors';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 };

/** Full jitter (AWS style): spreads retries of many clients so they do not stampede together. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(random() * ceiling);
}

/** Retry-After is seconds or an HTTP date; returns milliseconds, or undefined if absent/unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface RetryHooks {
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * A time budget shared by every attempt and every wait of one unit of work (a stage's chunk).
 * `deadline` is an epoch-ms instant; `now` is injectable for tests.
 */
export interface Budget {
  deadline: number;
  now?: () => number;
}

/** Below this, starting another HTTP attempt is pointless: it could not complete in time. */
export const MIN_ATTEMPT_MS = 100;

/** Milliseconds left of a budget (Infinity without one). */
export function budgetLeft(budget: Budget | undefined): number {
  return budget ? budget.deadline - (budget.now ?? Date.now)() : Infinity;
}

/**
 * Runs `fn` until it succeeds, fails permanently, or runs out of attempts or budget.
 * A server's Retry-After wins over our own backoff (capped by maxDelayMs * 4 so a
 * misconfigured server cannot park us for hours). With a budget, each attempt gets
 * `timeoutMs` = what is left, and a wait that would outlast the budget is not taken: the
 * last error is thrown instead (still carrying its Retry-After, so the caller can pause the
 * work for that long rather than hold it).
 */
export async function withRetry<T>(
  fn: (attempt: number, timeoutMs: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  hooks: RetryHooks = {},
  budget?: Budget,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const left = budgetLeft(budget);
    if (left < MIN_ATTEMPT_MS)
      throw new PipelineError('BUDGET_EXHAUSTED', `no time left in the chunk's budget for attempt ${attempt}`, { transient: true });
    try {
      return await fn(attempt, left);
    } catch (err) {
      if (!isTransient(err) || attempt >= policy.attempts) throw err;
      // An HttpError's or an AnswerError's (answers.ts) Retry-After: both carry retryAfterMs.
      const asked = err instanceof PipelineError ? (err as PipelineError & { retryAfterMs?: number }).retryAfterMs : undefined;
      const delay = asked !== undefined ? Math.min(asked, policy.maxDelayMs * 4) : backoffDelay(attempt, policy);
      if (delay + MIN_ATTEMPT_MS > budgetLeft(budget)) throw err;
      hooks.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
