/**
 * What `make forget` does to one member, in this order:
 * 1. its keyed hash goes into welcome_forgotten: from then on no emailer attempt that starts
 *    sends it anything, however its record arrives (held, released, replayed, re-driven);
 * 2. it waits until any attempt that had read the list just before has ended (each attempt's
 *    sends fit in the emailer's chunk budget, CHUNK_BUDGET_MS), then until the readers that
 *    write rows from topics (the audit sink, the delivery-status stage and its sink) have read
 *    everything produced so far (forget-lag.ts): so nothing written after step 3 brings a row back;
 * 3. it deletes the member's rows from the tables we own (also when a reader stayed behind: the
 *    caller says so, and running it again once that reader caught up deletes what it wrote).
 * The members table is the company's (the source of truth): its row is theirs to erase, and
 * their delete reaches the pipeline as a delete event, which no stage turns into a Welcome.
 */
import type { Connection, ResultSetHeader } from 'mysql2/promise';
import { recordForgotten } from './forgotten-db';
import type { RowWriter } from './forget-lag';

/** Our tables holding a member, each keyed by (org_id, org_member_id) (docs/member-data.md). */
export const OWNED_TABLES = [
  'new_members_sent_to_salesforce',
  'welcome_delivery_status',
  'welcome_preexisting_members',
  'welcome_send_admissions',
] as const;

export interface Forgotten {
  /** False when the member was forgotten before (the rows are deleted again all the same). */
  firstTime: boolean;
  deleted: Record<(typeof OWNED_TABLES)[number], number>;
  /** Readers that had not caught up in time: they may still write one of its rows. */
  behind: RowWriter[];
}

export async function forgetMember(
  db: Connection,
  member: { orgId: string; orgMemberId: string; hash: string },
  wait: { settleMs: number; rowWriters: () => Promise<RowWriter[]> },
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<Forgotten> {
  const firstTime = await recordForgotten(db, member.hash);
  await sleep(wait.settleMs);
  const behind = await wait.rowWriters();
  const deleted = {} as Forgotten['deleted'];
  for (const table of OWNED_TABLES) {
    const [res] = await db.query<ResultSetHeader>(`DELETE FROM ${table} WHERE org_id = ? AND org_member_id = ?`, [member.orgId, member.orgMemberId]);
    deleted[table] = res.affectedRows;
  }
  return { firstTime, deleted, behind };
}
