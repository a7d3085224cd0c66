/**
 * Proof before a dead letter: the records of a chunk that failed with an unknown answer are
 * split in halves, and each half is tried on its own, level by level, until the record that
 * fails alone is found while records of the same scope around it succeed. The state lives in
 * the partition's state (chunk.ts), so a bisection that does not fit one chunk budget goes on
 * where it stopped on the next read of the partition (at SFMC's 3 s worst case, the nine
 * levels of 500 recipients take several budgets).
 *
 * - A piece that succeeds settles its records: an accepted send's output (keepOnRetry) is
 *   written at once, every other outcome when the commit reaches it.
 * - A record that fails alone is dead-lettered after `aloneAttempts` proven failures: a
 *   failure is proven when a record of the same scope got its output after the record's
 *   previous alone failure ended (for the first one: after its call started). Right after each
 *   alone failure a control is asked: preferably the next record after the bisected range
 *   (fresh work: the range grows by it and its outcome is kept), else a settled neighbour of
 *   the same scope asked again (a resend SFMC answers 109110, a lookup again; its outcome is
 *   not used; the handler lets it past the guards that skip work already done, such as the
 *   emailer's audit rows, or it would prove nothing). A control's output is the proof that the
 *   dependency works now; its failure means an outage, and nothing is proven. (Seen in CI
 *   before both: the neighbours asked again were skipped as already sent, nothing proved the
 *   bad member's failure, and it waited with the 31 members behind it in its partition.)
 * - When every piece of a level (four or more, or all single records) failed with the same
 *   unknown answer and nothing of that scope succeeded since the bisection began, the fault is
 *   not a member's: the scope is held as a setup fault (chunk.ts escalate).
 * - A slow-down or setup answer met during the bisection pauses the partition; the bisection
 *   waits with it.
 */
import type { ChunkContext, PartitionState, Settled } from './chunk';
import { classifyFailure, worstFailure, type Failure } from './failure';
import type { Budget } from './retry';
import type { InputRecord, Outcome } from './stage';

interface Suspect {
  /** Alone failures so far, and those proven. */
  count: number;
  proven: number;
  /** End of the last judged alone failure. */
  lastEndedAt?: number;
  /** A failure not judged yet: when its call started and ended. */
  pending?: { startedAt: number; endedAt: number };
  err?: unknown;
  trace?: string;
  scope: string;
}

export interface Bisection {
  /** Last offset under bisection. */
  until: bigint;
  startedAt: number;
  settled: Map<string, Settled>;
  /** Pieces (offsets, in order) still to try at this level, and the next level's. */
  level: string[][];
  nextLevel: string[][];
  /** This level so far. */
  stats: { tried: number; failedWhole: number; reasons: Set<string>; singles: boolean; failure?: Extract<Failure, { kind: 'unknown' }> };
  suspects: Map<string, Suspect>;
  /** Suspects whose last alone failure still wants its control call. */
  controls: string[];
  /** The last pass ended in a pause: failures still unjudged are tried again. */
  paused: boolean;
  lastError?: unknown;
}

const halves = (offsets: string[]): string[][] => {
  if (offsets.length <= 1) return [offsets];
  const mid = Math.ceil(offsets.length / 2);
  return [offsets.slice(0, mid), offsets.slice(mid)];
};
const freshStats = (): Bisection['stats'] => ({ tried: 0, failedWhole: 0, reasons: new Set(), singles: true });

/** Starts a bisection over `records` whose whole try ended in `outcomes` (some failed). */
export function startBisection(records: InputRecord[], outcomes: Outcome[], startedAt: number, written: ReadonlySet<string>): Bisection {
  const settled = new Map<string, Settled>();
  const failed: string[] = [];
  records.forEach((r, i) => {
    const o = outcomes[i] as Outcome;
    if (o.kind === 'failed') failed.push(r.offset);
    // finish() already wrote the accepted sends past the failed record
    else settled.set(r.offset, { outcome: o, written: written.has(r.offset) });
  });
  return {
    until: BigInt((records[records.length - 1] as InputRecord).offset),
    startedAt,
    settled,
    level: halves(failed),
    nextLevel: [],
    stats: freshStats(),
    suspects: new Map(),
    controls: [],
    paused: false,
  };
}

/** A settled record near `offset` whose output proves `scope` works (any output proves the stage's own scope). */
function controlFor(bs: Bisection, offset: string, scope: string, stage: string, present: ReadonlyMap<string, InputRecord>): string | undefined {
  let best: string | undefined;
  for (const [o, s] of bs.settled) {
    if (s.outcome.kind !== 'produce' || !present.has(o)) continue;
    if (scope !== stage && scope !== 'registry' && s.outcome.scope !== scope) continue;
    const distance = (a: string): bigint => (BigInt(a) > BigInt(offset) ? BigInt(a) - BigInt(offset) : BigInt(offset) - BigInt(a));
    if (best === undefined || distance(o) < distance(best)) best = o;
  }
  return best;
}

/** Judges the suspects' pending failures; a proven one counts, enough of them make a dead letter. */
function judge(ctx: ChunkContext, st: PartitionState, bs: Bisection, retryUnproven: boolean): void {
  for (const [offset, s] of bs.suspects) {
    if (!s.pending || bs.settled.has(offset)) continue;
    const since = s.lastEndedAt ?? s.pending.startedAt;
    const proven = ctx.lastSuccessStart(s.scope) >= since;
    if (!proven && !retryUnproven) continue;
    if (proven) s.proven++;
    s.lastEndedAt = s.pending.endedAt;
    s.pending = undefined;
    if (s.proven >= ctx.deps.policy.aloneAttempts) {
      const attempts = st.attempts + s.count;
      bs.settled.set(offset, {
        outcome: ctx.deadLetterOutcome(s.err, attempts, s.trace, `failed ${attempts} times, the last ones alone while other records succeeded`),
        written: false,
      });
    } else if (proven)
      bs.level.unshift([offset]); // proven once: try it alone again at once
    else bs.level.push([offset]);
  }
}

/** The first record after the bisected range in this fetch, if any. */
const freshRecord = (bs: Bisection, left: InputRecord[]): InputRecord | undefined => left.find((r) => BigInt(r.offset) > bs.until);

/**
 * Takes `fresh` into the range and tries it alone as a control: its output settles it (and
 * proves its scope); an unknown failure makes it a piece of the next level; a slow-down or
 * setup answer pauses the partition (true: the pass ends).
 */
async function tryFresh(ctx: ChunkContext, st: PartitionState, bs: Bisection, fresh: InputRecord, head: InputRecord, b: Budget): Promise<boolean> {
  bs.until = BigInt(fresh.offset);
  const [outcome] = await ctx.call([fresh], b);
  if (!outcome) return false;
  if (outcome.kind !== 'failed') {
    bs.settled.set(fresh.offset, { outcome, written: false });
    return false;
  }
  const failure = classifyFailure(outcome.error, ctx.deps.stage);
  bs.lastError = outcome.error;
  if (failure.kind === 'unknown') {
    bs.nextLevel.push([fresh.offset]);
    return false;
  }
  bs.level.unshift([fresh.offset]);
  bs.paused = true;
  ctx.pause(st, head, failure, outcome.error);
  return true;
}

type Next = { piece: string[] } | { setup: Extract<Failure, { kind: 'unknown' }> } | { wait: true };

function nextPiece(ctx: ChunkContext, bs: Bisection): Next {
  for (;;) {
    const piece = bs.level.shift()?.filter((o) => !bs.settled.has(o));
    if (piece && piece.length > 0) return { piece };
    if (piece) continue;
    // end of a level: did every piece fail the same way, with nothing of that scope working?
    const s = bs.stats;
    const f = s.failure;
    if (f && s.tried > 0 && s.failedWhole === s.tried && s.reasons.size === 1 && (s.tried >= 4 || s.singles)) {
      if (ctx.lastSuccessStart(f.scope) < bs.startedAt) return { setup: f };
    }
    bs.stats = freshStats();
    if (bs.nextLevel.length === 0) return { wait: true };
    bs.level = bs.nextLevel;
    bs.nextLevel = [];
  }
}

/** One pass: as many pieces as the budget allows. True when the whole of `records` is done. */
export async function runBisection(ctx: ChunkContext, records: InputRecord[], st: PartitionState, b: Budget): Promise<boolean> {
  const bs = st.bisection as Bisection;
  const d = ctx.deps;
  const byOffset = new Map(records.map((r) => [r.offset, r]));
  const lastPresent = BigInt((records[records.length - 1] as InputRecord).offset);
  if (lastPresent < bs.until) bs.until = lastPresent; // a shorter fetch: the rest is a new chunk later
  const inRange = (o: string): boolean => BigInt(o) <= bs.until && byOffset.has(o);
  bs.level = bs.level.map((p) => p.filter(inRange)).filter((p) => p.length > 0);
  bs.nextLevel = bs.nextLevel.map((p) => p.filter(inRange)).filter((p) => p.length > 0);
  judge(ctx, st, bs, bs.paused);
  bs.paused = false;
  let left = records;
  let tries = 0;
  for (;;) {
    judge(ctx, st, bs, false);
    left = await ctx.advance(left, st, bs.settled);
    const head = left[0];
    if (!head || BigInt(head.offset) > bs.until) {
      st.bisection = undefined;
      st.attempts = 0;
      if (!head) return true;
      d.io.retryLater(head.partition, head.offset, 0, { kind: 'continue' });
      return false;
    }
    const outOfBudget = (): boolean => tries > 0 && b.deadline - ctx.now() < d.policy.budgetMs / 4;
    // A control call for the last suspect: does the dependency answer another member now?
    const suspect = bs.controls.shift();
    if (suspect !== undefined) {
      const s = bs.suspects.get(suspect);
      const fresh = s && !bs.settled.has(suspect) ? freshRecord(bs, left) : undefined;
      const control = s && !fresh && !bs.settled.has(suspect) ? controlFor(bs, suspect, s.scope, d.stage, byOffset) : undefined;
      if (fresh || control !== undefined) {
        if (outOfBudget()) {
          bs.controls.unshift(suspect);
          d.io.retryLater(head.partition, head.offset, 0, { kind: 'continue' });
          return false;
        }
        tries++;
        if (fresh) {
          if (await tryFresh(ctx, st, bs, fresh, head, b)) return false;
        } else await ctx.call([byOffset.get(control as string) as InputRecord], b, { control: true }); // settled already: only the proof counts
      }
      continue;
    }
    const next = nextPiece(ctx, bs);
    if ('setup' in next) {
      ctx.escalate(st, head, next.setup, bs.lastError, 'every half of the bisection failed the same way');
      return false;
    }
    if ('wait' in next) {
      const waiting = [...bs.suspects.entries()].filter(([o, s]) => s.pending && !bs.settled.has(o));
      if (waiting.length === 0) {
        // nothing pending and nothing queued, yet records in range unsettled: try them again
        bs.level = halves(left.filter((r) => inRange(r.offset) && !bs.settled.has(r.offset)).map((r) => r.offset));
        continue;
      }
      // Only suspects whose failure is not proven yet: the next record after the range is the
      // control if there is one; else wait for another record of their scope to succeed.
      const fresh = freshRecord(bs, left);
      if (fresh) {
        if (outOfBudget()) {
          d.io.retryLater(head.partition, head.offset, 0, { kind: 'continue' });
          return false;
        }
        tries++;
        if (await tryFresh(ctx, st, bs, fresh, head, b)) return false;
        continue;
      }
      bs.paused = true;
      const s = waiting[0]?.[1];
      ctx.pause(st, head, { kind: 'unknown', scope: s?.scope ?? d.stage, reason: 'unproven', bisect: true }, bs.lastError);
      return false;
    }
    if (outOfBudget()) {
      bs.level.unshift(next.piece); // the rest in the next pass, with a fresh budget
      d.io.retryLater(head.partition, head.offset, 0, { kind: 'continue' });
      return false;
    }
    tries++;
    const startedAt = ctx.now();
    const outcomes = await ctx.call(
      next.piece.map((o) => byOffset.get(o) as InputRecord),
      b,
    );
    const endedAt = ctx.now();
    const failedAt: number[] = [];
    outcomes.forEach((o, i) => {
      if (o.kind === 'failed') failedAt.push(i);
      else bs.settled.set(next.piece[i] as string, { outcome: o, written: false });
    });
    bs.stats.singles &&= next.piece.length === 1;
    if (failedAt.length === 0) {
      bs.stats.tried++;
      continue;
    }
    const failures = failedAt.map((i) => classifyFailure((outcomes[i] as Extract<Outcome, { kind: 'failed' }>).error, d.stage));
    const worst = worstFailure(failures) as Failure;
    const err = (outcomes[failedAt[0] as number] as Extract<Outcome, { kind: 'failed' }>).error;
    bs.lastError = err;
    if (worst.kind !== 'unknown') {
      bs.level.unshift(failedAt.map((i) => next.piece[i] as string));
      bs.paused = true;
      ctx.pause(st, head, worst, err);
      return false;
    }
    bs.stats.tried++;
    bs.stats.failure ??= worst;
    bs.stats.reasons.add(worst.reason);
    if (failedAt.length === next.piece.length) bs.stats.failedWhole++;
    const failed = failedAt.map((i) => next.piece[i] as string);
    if (failed.length > 1) {
      bs.nextLevel.push(...halves(failed));
      continue;
    }
    const offset = failed[0] as string;
    const s = bs.suspects.get(offset) ?? { count: 0, proven: 0, scope: worst.scope };
    s.count++;
    s.pending = { startedAt, endedAt };
    s.err = err;
    s.trace = (outcomes[failedAt[0] as number] as Extract<Outcome, { kind: 'failed' }>).trace;
    bs.suspects.set(offset, s);
    bs.controls.push(offset);
  }
}
