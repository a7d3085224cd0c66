/**
 * `make seed-preexisting [UNTIL=2026-12-01T09:00:00Z]`: records every member that exists
 * when the pipeline is switched on as pre-existing, so a later delete + re-insert, REPLACE
 * INTO or restore of one of them never produces a Welcome (the emailer checks this table).
 *
 * INSERT IGNORE ... SELECT in primary-key chunks: idempotent (run it again, it adds only
 * what is missing), one short transaction per chunk (READ COMMITTED: no locks held on the
 * member table between chunks), progress after every chunk. UNTIL limits it to rows created
 * before that instant — the moment the connector was started (docs: first-start procedure).
 */
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { n, opsDb } from './ops-db';

export interface SeedOptions {
  until?: Date;
  chunk: number;
  log: (line: string) => void;
}

export async function seedPreexisting(db: Connection, o: SeedOptions): Promise<{ scanned: number; added: number; seconds: number }> {
  await db.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
  const [[range]] = await db.query<RowDataPacket[]>('SELECT MIN(id) AS lo, MAX(id) AS hi, COUNT(*) AS total FROM members');
  const lo = Number(range?.lo ?? 0);
  const hi = Number(range?.hi ?? 0);
  const started = Date.now();
  if (!range || range.lo === null) {
    o.log('members is empty: nothing to record');
    return { scanned: 0, added: 0, seconds: 0 };
  }
  o.log(
    `recording pre-existing members: ids ${n(lo)}..${n(hi)} (${n(Number(range.total))} rows)${o.until ? `, created before ${o.until.toISOString()}` : ''}, ${n(o.chunk)} ids per chunk`,
  );
  let added = 0;
  let lastLog = 0;
  // The upper bound is fixed at the start: rows inserted meanwhile are the pipeline's, not ours.
  for (let from = lo; from <= hi; from += o.chunk) {
    const to = Math.min(from + o.chunk, hi + 1);
    const [res] = await db.query<ResultSetHeader>(
      `INSERT IGNORE INTO welcome_preexisting_members (org_id, org_member_id, member_id)
       SELECT org_id, org_member_id, id FROM members WHERE id >= ? AND id < ?${o.until ? ' AND created_at < ?' : ''}`,
      o.until ? [from, to, o.until] : [from, to],
    );
    added += res.affectedRows;
    const now = Date.now();
    if (now - lastLog >= 1000 || to > hi) {
      lastLog = now;
      const done = to - lo;
      const pct = Math.floor((done / (hi + 1 - lo)) * 100);
      const rate = done / Math.max(0.001, (now - started) / 1000);
      o.log(
        `  ${String(pct).padStart(3)}%  up to id ${n(to - 1)}: ${n(added)} recorded  (${n(Math.round(rate))} ids/s, ~${Math.ceil((hi + 1 - to) / rate)} s left)`,
      );
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const [[count]] = await db.query<RowDataPacket[]>('SELECT COUNT(*) AS c FROM welcome_preexisting_members');
  o.log(`done in ${seconds.toFixed(1)} s: ${n(added)} newly recorded, ${n(Number(count?.c ?? 0))} pre-existing members on record`);
  return { scanned: hi + 1 - lo, added, seconds };
}

function parseArgs(argv: string[]): { until?: Date; chunk: number } {
  let until: Date | undefined;
  let chunk = 50_000;
  for (const a of argv) {
    const [k, v] = a.split('=', 2);
    if (k === '--until' && v) {
      until = new Date(v);
      if (Number.isNaN(until.getTime())) throw new Error(`--until: "${v}" is not a date/time (e.g. 2026-12-01T09:00:00Z)`);
    } else if (k === '--chunk' && v && Number.isInteger(Number(v)) && Number(v) > 0) chunk = Number(v);
    else throw new Error(`unknown argument "${a}" (usage: seed-preexisting [--until=ISO-TIME] [--chunk=N])`);
  }
  return until ? { until, chunk } : { chunk };
}

if (require.main === module) {
  (async () => {
    const args = parseArgs(process.argv.slice(2));
    const db = await opsDb();
    try {
      await seedPreexisting(db, { ...args, log: (l) => void process.stdout.write(`${l}\n`) });
    } finally {
      await db.end();
    }
  })().catch((err: unknown) => {
    process.stderr.write(`seed-preexisting: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
