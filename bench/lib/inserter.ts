/**
 * Paced signups: single-row autocommit INSERTs (one transaction per member, as a signup
 * form does), spread over a small connection pool, at a target rate. Each member's commit
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
  id?: number;
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
  /** Called every second with the inserted count so far (for backlog sampling). */
  onTick?: (inserted: number, elapsedMs: number) => void;
}

let seq = 0;
const SQL = 'INSERT INTO members (org_id, org_member_id, email, first_name, last_name, locale) VALUES (?, ?, ?, ?, ?, ?)';

export async function insertAtRate(o: InsertOptions): Promise<InsertResult> {
  const t0 = Date.now();
  let issued = 0;
  let inserted = 0;
  let errors = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastTick = t0;
  const pending = new Set<Promise<void>>();

  const insertOne = (): void => {
    const n = seq++;
    const orgId = ORGS[n % ORGS.length] as string;
    const orgMemberId = `bench-${o.runId}-${o.phase}-${n}`;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const p = o.pool
      .query<ResultSetHeader>(SQL, [orgId, orgMemberId, `${orgMemberId}@bench.example.com`, 'Bench', 'Member', 'en-US'])
      .then(([res]) => {
        const committedAt = Date.now();
        const messageKey = welcomeMessageKey(orgId, orgMemberId);
        o.members.set(messageKey, { seq: n, phase: o.phase, orgId, orgMemberId, id: res.insertId, messageKey, committedAt });
        inserted++;
      })
      .catch(() => {
        errors++;
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
    for (let i = 0; i < due && inFlight < o.maxInFlight; i++) {
      insertOne();
      issued++;
    }
    if (o.onTick && now - lastTick >= 1000) {
      lastTick = now;
      o.onTick(inserted, elapsed);
    }
    await sleep(2);
  }
  await Promise.all([...pending]);
  const elapsedMs = Date.now() - t0;
  return { phase: o.phase, targetRate: o.rate, inserted, errors, elapsedMs, achievedRate: (inserted / Math.min(elapsedMs, o.durationMs)) * 1000, maxInFlight };
}
