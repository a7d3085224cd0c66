/**
 * Paced signups: single-row autocommit INSERTs (one transaction per member, as a signup
 * form does) or small multi-row transactions, spread over a connection pool, at a target rate. Each member's commit
 * time is the bench's own wall clock when the INSERT (autocommit = COMMIT) returned; the
 * SFMC stand-in stamps receivedAt with the same machine clock.
 */
import { createPool, type Pool, type ResultSetHeader } from 'mysql2/promise';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { sleep } from './stats';

export interface BenchMember {
  seq: number;
  phase: string;
  orgId: string;
  orgMemberId: string;
  messageKey: string;
  /** ms epoch: the INSERT (autocommit) returned. */
  committedAt: number;
  /** ms epoch: SFMC stand-in accepted the pipeline's send / the poller's send. */
  cdcAt?: number;
  pollerAt?: number;
}

export const POLLER_KEY_PREFIX = 'poller-';
const ORGS = ['UA', 'AA'] as const; // both enabled in config/welcome-orgs.json

export function createBenchPool(socketPath: string, connections: number): Pool {
  return createPool({ socketPath, user: process.env.USER ?? 'root', database: 'loyalty', connectionLimit: connections, timezone: 'Z' });
}

export interface InsertResult {
  phase: string;
  targetRate: number;
  inserted: number;
  errors: number;
  elapsedMs: number;
  achievedRate: number;
  /** Largest number of INSERTs waiting at once: the DB falling behind shows up here. */
  maxInFlight: number;
}

export interface InsertOptions {
  pool: Pool;
  runId: string;
  phase: string;
  rate: number;
  durationMs: number;
  maxInFlight: number;
  members: Map<string, BenchMember>;
  /**
   * Rows per transaction, at most: 1 = one autocommit INSERT per signup (the latency phase);
   * more = the rows due at each 2-ms tick go in one multi-row INSERT (the throughput ramp, so
   * that it measures the pipeline rather than this box's fsyncs per second).
   */
  rowsPerTxn?: number;
  /** Called every second with the inserted count so far (for backlog sampling). */
  onTick?: (inserted: number, elapsedMs: number) => void;
}

let seq = 0;
const COLUMNS = 'INSERT INTO members (org_id, org_member_id, email, first_name, last_name, locale) VALUES ';

export async function insertAtRate(o: InsertOptions): Promise<InsertResult> {
  const t0 = Date.now();
  let issued = 0;
  let inserted = 0;
  let errors = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastTick = t0;
  const pending = new Set<Promise<void>>();
  const perTxn = Math.max(1, o.rowsPerTxn ?? 1);

  /** One transaction (autocommit) of `count` rows. */
  const insertRows = (count: number): void => {
    const rows = Array.from({ length: count }, () => {
      const n = seq++;
      const orgId = ORGS[n % ORGS.length] as string;
      return { n, orgId, orgMemberId: `bench-${o.runId}-${o.phase}-${n}` };
    });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const sql = COLUMNS + rows.map(() => '(?, ?, ?, ?, ?, ?)').join(', ');
    const params = rows.flatMap((r) => [r.orgId, r.orgMemberId, `${r.orgMemberId}@bench.example.com`, 'Bench', 'Member', 'en-US']);
    const p = o.pool
      .query<ResultSetHeader>(sql, params)
      .then(() => {
        const committedAt = Date.now();
        for (const r of rows) {
          const messageKey = welcomeMessageKey(r.orgId, r.orgMemberId);
          o.members.set(messageKey, { seq: r.n, phase: o.phase, orgId: r.orgId, orgMemberId: r.orgMemberId, messageKey, committedAt });
        }
        inserted += rows.length;
      })
      .catch(() => {
        errors += rows.length;
      })
      .finally(() => {
        inFlight--;
        pending.delete(p);
      });
    pending.add(p);
  };

  for (;;) {
    const now = Date.now();
    const elapsed = now - t0;
    if (elapsed >= o.durationMs) break;
    const due = Math.floor((o.rate * elapsed) / 1000) - issued;
    for (let left = due; left > 0 && inFlight < o.maxInFlight; left -= perTxn) {
      const count = Math.min(left, perTxn);
      insertRows(count);
      issued += count;
    }
    if (o.onTick && now - lastTick >= 1000) {
      lastTick = now;
      o.onTick(inserted, elapsed);
    }
    await sleep(2);
  }
  await Promise.all([...pending]);
  const elapsedMs = Date.now() - t0;
  return {
    phase: o.phase,
    targetRate: o.rate,
    inserted,
    errors,
    elapsedMs,
    achievedRate: (inserted / Math.min(elapsedMs, o.durationMs)) * 1000,
    maxInFlight,
  };
}
