/**
 * How many SFMC requests this process may have in flight. SFMC's 429 errorcode 50200
 * ("temporarily blocked") is about the concurrent requests of one installed package, so it
 * comes and goes with our own concurrency: each 50200 halves the limit (down to 1), and every
 * `recoverAfter` answers without it add one back (up to `max`). Every replica does the same
 * with no coordination, so together they back off like TCP senders sharing a link: the sum
 * halves while 50200 lasts, and grows back one by one once it stops.
 */
import { PipelineError } from './errors';

export interface ConcurrencyLimiter {
  /** Runs `fn` once a slot is free; gives up (transient, a slow-down) if none frees before `deadline`. */
  run<T>(fn: () => Promise<T>, deadline: number): Promise<T>;
  /** A 50200 answer: halve. */
  throttled(): void;
  /** Any other answer: counts toward one more slot. */
  answered(): void;
  limit(): number;
}

export function createConcurrencyLimiter(o: {
  max: number;
  recoverAfter?: number;
  onChange?: (limit: number) => void;
  now?: () => number;
}): ConcurrencyLimiter {
  const now = o.now ?? Date.now;
  const max = Math.max(1, o.max);
  const recoverAfter = o.recoverAfter ?? 20;
  let limit = max;
  let inFlight = 0;
  let calm = 0;
  const waiting: { wake: () => void }[] = [];
  o.onChange?.(limit);

  const wakeNext = (): void => {
    while (inFlight < limit && waiting.length > 0) waiting.shift()?.wake();
  };
  const set = (n: number): void => {
    if (n === limit) return;
    limit = n;
    o.onChange?.(limit);
    wakeNext();
  };

  function acquire(deadline: number): Promise<void> {
    if (inFlight < limit && waiting.length === 0) {
      inFlight++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        wake: () => {
          clearTimeout(timer);
          inFlight++;
          resolve();
        },
      };
      const left = deadline - now();
      // Without a budget (Infinity) it waits for a slot however long; setTimeout would fire at once past 2^31 ms.
      const timer = Number.isFinite(left)
        ? setTimeout(
            () => {
              const i = waiting.indexOf(entry);
              if (i >= 0) waiting.splice(i, 1);
              reject(
                new PipelineError('SFMC_CONCURRENCY_WAIT', `no free SFMC request slot (limit ${limit}) before the chunk's budget ran out`, {
                  transient: true,
                }),
              );
            },
            Math.max(0, left),
          )
        : undefined;
      waiting.push(entry);
    });
  }

  return {
    async run(fn, deadline) {
      await acquire(deadline);
      try {
        return await fn();
      } finally {
        inFlight--;
        wakeNext();
      }
    },
    throttled() {
      calm = 0;
      set(Math.max(1, Math.floor(limit / 2)));
    },
    answered() {
      if (limit >= max) return;
      if (++calm >= recoverAfter) {
        calm = 0;
        set(limit + 1);
      }
    },
    limit: () => limit,
  };
}
