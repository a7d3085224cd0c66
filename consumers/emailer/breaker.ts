/**
 * Send-rate circuit breaker, per organization: at most `maxPerMinute` Welcomes attempted in
 * any sliding minute. Attempts are counted whether sent or held, so a bulk load arriving at
 * full speed keeps the breaker open for as long as it lasts (only the first `maxPerMinute`
 * of it go out), and the breaker closes by itself one quiet minute after the load ends.
 * Held Welcomes are not lost: the handler writes them to welcome.held, and only an
 * operator's `make release-held ORG=…` sends them.
 *
 * State is per emailer process (a restart forgets the window; N replicas allow up to N× the
 * ceiling between them): a guard against mass email, not an exact quota.
 */
const BUCKET_MS = 1_000;
const BUCKETS = 60;

interface Window {
  counts: number[];
  /** Index (time / BUCKET_MS) of the newest bucket written. */
  head: number;
}

export interface Breaker {
  /** Counts one attempt for the organization; false means "hold it, the ceiling is reached". */
  admit(orgId: string, maxPerMinute: number | undefined): boolean;
  /** Attempts in the last minute (for the open/closed gauge). */
  attempts(orgId: string): number;
  isOpen(orgId: string, maxPerMinute: number | undefined): boolean;
}

export function createBreaker(now: () => number = Date.now): Breaker {
  const windows = new Map<string, Window>();

  function current(orgId: string): Window {
    const at = Math.floor(now() / BUCKET_MS);
    let w = windows.get(orgId);
    if (!w) {
      w = { counts: new Array<number>(BUCKETS).fill(0), head: at };
      windows.set(orgId, w);
    }
    // Clear the buckets that fell out of the minute since the last write.
    for (let i = w.head + 1; i <= at && i <= w.head + BUCKETS; i++) w.counts[i % BUCKETS] = 0;
    if (at > w.head) w.head = at;
    return w;
  }

  const total = (w: Window): number => w.counts.reduce((a, b) => a + b, 0);

  return {
    admit(orgId, maxPerMinute) {
      if (maxPerMinute === undefined) return true;
      const w = current(orgId);
      const open = total(w) >= maxPerMinute;
      const i = w.head % BUCKETS;
      w.counts[i] = (w.counts[i] ?? 0) + 1;
      return !open;
    },
    attempts: (orgId) => total(current(orgId)),
    isOpen(orgId, maxPerMinute) {
      return maxPerMinute !== undefined && total(current(orgId)) >= maxPerMinute;
    },
  };
}
