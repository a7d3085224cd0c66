/**
 * Send-rate circuit breaker, per organization: at most `maxPerMinute` members counted in any
 * sliding minute are welcomed; the rest are held on welcome.held until an operator's
 * `make release-held ORG=…` sends them.
 *
 * What it counts is members, once each: the first time the breaker sees a member it decides
 * (admitted or held) and remembers the verdict, so a retry of the chunk, an isolation pass
 * and a replay of the same member get the same answer and count nothing again. Held members
 * count too, so a bulk load arriving at full speed keeps the breaker open for as long as it
 * lasts, and it closes by itself one quiet minute after the load ends.
 *
 * One ceiling per organization across every emailer replica and restart: the production
 * breaker (createSharedBreaker) keeps its counts in the database the emailer already reads,
 * and decides under a row lock per organization, so replicas count one after another
 * (docs/architecture.md, "The mass-email guard"). createBreaker is the same rule in one
 * process's memory, for tests.
 */
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { PipelineError } from '../shared/errors';

/** The sliding window the ceiling applies to. */
export const WINDOW_MS = 60_000;
/** How long a member's verdict is remembered (a replay within it counts nothing). */
export const REMEMBER_DAYS = 7;

export interface Breaker {
  /**
   * Counts the members (memberKey, in arrival order) of one organization not counted before and
   * returns those to hold. A member counted before gets its first verdict again.
   */
  admit(orgId: string, memberKeys: string[], maxPerMinute: number, deadline?: number): Promise<Set<string>>;
  /** This process held a member of the organization within the last minute (the welcome_breaker_open gauge). */
  isOpen(orgId: string): boolean;
}

/**
 * The rule, pure: `counted` members already in the window, the verdicts remembered for some
 * of `members`; every member not seen before is admitted while the window is below the
 * ceiling, and counts whether admitted or held.
 */
export function decideAdmissions(
  counted: number,
  maxPerMinute: number,
  members: readonly string[],
  earlier: ReadonlyMap<string, boolean>,
): { admitted: Map<string, boolean>; fresh: string[] } {
  const admitted = new Map<string, boolean>();
  const fresh: string[] = [];
  let n = counted;
  for (const m of members) {
    if (admitted.has(m)) continue;
    const before = earlier.get(m);
    if (before !== undefined) {
      admitted.set(m, before);
      continue;
    }
    admitted.set(m, n < maxPerMinute);
    fresh.push(m);
    n++;
  }
  return { admitted, fresh };
}

const heldOf = (admitted: Map<string, boolean>): Set<string> => new Set([...admitted].filter(([, ok]) => !ok).map(([m]) => m));

/** Remembers when this process last held a member of each organization (its gauge). */
function openTracker(now: () => number) {
  const lastHeld = new Map<string, number>();
  return {
    saw(orgId: string, held: Set<string>): void {
      if (held.size > 0) lastHeld.set(orgId, now());
    },
    isOpen: (orgId: string): boolean => now() - (lastHeld.get(orgId) ?? -Infinity) < WINDOW_MS,
  };
}

/** The rule in this process's memory: for unit tests (one process, nothing shared). */
export function createBreaker(now: () => number = Date.now): Breaker {
  const seen = new Map<string, Map<string, { admitted: boolean; at: number }>>();
  const open = openTracker(now);
  return {
    async admit(orgId, memberKeys, maxPerMinute) {
      const t = now();
      const org = seen.get(orgId) ?? new Map<string, { admitted: boolean; at: number }>();
      seen.set(orgId, org);
      for (const [m, v] of org) if (t - v.at > REMEMBER_DAYS * 86_400_000) org.delete(m);
      const counted = [...org.values()].filter((v) => t - v.at < WINDOW_MS).length;
      const earlier = new Map(memberKeys.flatMap((m) => (org.has(m) ? [[m, org.get(m)?.admitted === true] as const] : [])));
      const { admitted, fresh } = decideAdmissions(counted, maxPerMinute, memberKeys, earlier);
      for (const m of fresh) org.set(m, { admitted: admitted.get(m) === true, at: t });
      const held = heldOf(admitted);
      open.saw(orgId, held);
      return held;
    },
    isOpen: open.isOpen,
  };
}

export const ADMISSIONS_TABLE = 'welcome_send_admissions';
export const CEILING_LOCK_TABLE = 'welcome_send_ceiling';

const splitKey = (memberKey: string): [string, string] => {
  const i = memberKey.indexOf(':');
  return [memberKey.slice(0, i), memberKey.slice(i + 1)];
};

/**
 * The breaker every replica shares, in the database (stack/sql/01-schema.sql): one row per
 * counted member (its verdict and when it was counted, by the database's clock so replicas'
 * clocks do not matter) and one lock row per organization. One transaction per organization
 * and chunk, in two round trips: lock the organization's row and read the verdicts of these
 * members and the count of the last minute; insert the new ones and commit. Every statement and the wait for a connection
 * fit the chunk's deadline; past it, or with the database away, the chunk fails as a transient
 * error (BREAKER_UNAVAILABLE): it pauses and is retried, nothing is sent unguarded.
 */
export function createSharedBreaker(pool: Pool, now: () => number = Date.now): Breaker {
  const open = openTracker(now);
  let lastPrune = 0;

  async function connection(deadline: number): Promise<PoolConnection> {
    const wait = Math.max(1, deadline - now());
    let timer: NodeJS.Timeout | undefined;
    const pending = pool.getConnection();
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no database connection within ${wait} ms`)), wait);
        }),
      ]);
    } catch (err) {
      // A connection that comes after the deadline goes straight back to the pool.
      pending.then((c) => c.release()).catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Verdicts older than REMEMBER_DAYS are deleted now and then (a bounded batch, off the lock). */
  function prune(c: PoolConnection): Promise<unknown> {
    if (now() - lastPrune < WINDOW_MS) return Promise.resolve();
    lastPrune = now();
    return c.query({ sql: `DELETE FROM ${ADMISSIONS_TABLE} WHERE counted_at < NOW(3) - INTERVAL ${REMEMBER_DAYS} DAY LIMIT 10000`, timeout: 5_000 });
  }

  return {
    async admit(orgId, memberKeys, maxPerMinute, deadline = now() + 5_000) {
      if (memberKeys.length === 0) return new Set();
      const ids = [...new Set(memberKeys.map((k) => splitKey(k)[1]))];
      let c: PoolConnection | undefined;
      try {
        c = await connection(deadline);
        const timeout = (): number => Math.max(1, Math.min(5_000, deadline - now()));
        // Two round trips while the organization's row is locked (replicas admitting for it wait
        // for one another here): take the lock and read the verdicts and the window's count;
        // then write the new verdicts and commit. The pool runs with multipleStatements.
        const [results] = await c.query<RowDataPacket[][]>(
          {
            sql: `START TRANSACTION;
              INSERT INTO ${CEILING_LOCK_TABLE} (org_id) VALUES (?) ON DUPLICATE KEY UPDATE org_id = org_id;
              SELECT org_member_id, admitted FROM ${ADMISSIONS_TABLE} WHERE org_id = ? AND org_member_id IN (?);
              SELECT COUNT(*) AS n FROM ${ADMISSIONS_TABLE} WHERE org_id = ? AND counted_at > NOW(3) - INTERVAL ${WINDOW_MS / 1000} SECOND`,
            timeout: timeout(),
          },
          [orgId, orgId, ids, orgId],
        );
        const known = results[2] ?? [];
        const window = results[3]?.[0];
        const earlier = new Map(known.map((r) => [`${orgId}:${String(r.org_member_id)}`, Number(r.admitted) === 1]));
        const { admitted, fresh } = decideAdmissions(Number(window?.n ?? 0), maxPerMinute, memberKeys, earlier);
        if (fresh.length > 0) {
          await c.query({ sql: `INSERT INTO ${ADMISSIONS_TABLE} (org_id, org_member_id, admitted) VALUES ?; COMMIT`, timeout: timeout() }, [
            fresh.map((k) => [orgId, splitKey(k)[1], admitted.get(k) ? 1 : 0]),
          ]);
        } else await c.query({ sql: 'COMMIT', timeout: timeout() });
        await prune(c).catch(() => undefined);
        const held = heldOf(admitted);
        open.saw(orgId, held);
        return held;
      } catch (err) {
        await c?.query('ROLLBACK').catch(() => undefined);
        throw new PipelineError('BREAKER_UNAVAILABLE', `send-rate breaker of ${orgId}: ${(err as Error).message}`, { transient: true, cause: err });
      } finally {
        c?.release();
      }
    },
    isOpen: open.isOpen,
  };
}
