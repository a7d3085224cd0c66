/**
 * What happens to one chunk of a partition's records, independent of kafkajs (stage.ts wires
 * it to the consumer). The rules:
 * - every chunk has a time budget (all attempts, waits and Retry-Afters of the handler's calls
 *   fit inside it), so a slow dependency never holds a chunk longer than the budget;
 * - outputs are written (acks=all) before the offset after them is committed;
 * - the handler's failures are sorted by failure.ts into the verdicts of the answer tables:
 *   slow-down pauses the partition (Retry-After or backoff), counts no attempt and
 *   dead-letters nothing; setup holds its scope (holds.ts) and pauses, dead-letters nothing;
 *   unknown is retried, then bisected (bisection.ts) until a record fails alone while others
 *   around it succeed — only then is it dead-lettered — or every half fails alike, which makes
 *   it a setup fault; an unknown answer that persists for `escalateAfterMs` is one too;
 * - a record whose answer names it (the handler's dead-letter outcome) is dead-lettered at once.
 */
import { errorCode, PipelineError } from './errors';
import { classifyFailure, worstFailure, type Failure } from './failure';
import type { Holds } from './holds';
import type { OutgoingRecord } from './kafka';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { backoffDelay, type Budget, type RetryPolicy } from './retry';
import { deadLetterRecord, type BatchHandler, type InputRecord, type Outcome } from './stage';
import { runBisection, startBisection, type Bisection } from './bisection';

/** Why a partition waits: the paused-partitions gauge's label; `continue` = no pause, read on at once. */
export type PauseKind = 'slow-down' | 'setup' | 'unknown' | 'continue';

export interface ChunkIo {
  /** One acknowledged write (acks=all) of these records. */
  produce(records: OutgoingRecord[]): Promise<void>;
  /** Commits `offset` (the next record to read) of the partition. */
  commit(partition: number, offset: string): Promise<void>;
  /** Re-read the partition from `offset` after `pauseMs` (0: at once); a setup pause ends early when `scope` is released. */
  retryLater(partition: number, offset: string, pauseMs: number, why?: { kind: PauseKind; scope?: string }): void;
}

export interface ChunkPolicy {
  /** Wall-clock budget of one chunk, every retry and Retry-After included. */
  budgetMs: number;
  /** Whole tries of a chunk that failed with unknown answers, after which it is bisected. */
  isolateAfter: number;
  /**
   * Proven alone failures before a record is dead-lettered. A failure is proven when another
   * record got its output after the record's previous alone failure ended (after this one, for
   * the first): the dependency answered others in between. Two, because at the end of an
   * outage one failure can look proven; the next try then succeeds.
   */
  aloneAttempts: number;
  /** Pause between attempts of a failing chunk (slow-down without Retry-After, setup, unknown). */
  backoff: RetryPolicy;
  /** Longest pause a Retry-After can cause at once (the answer is asked again after it). */
  maxPauseMs: number;
  /** Unknown answers for this long without a success on the partition: held as a setup fault. */
  escalateAfterMs: number;
}

export const DEFAULT_CHUNK_POLICY: ChunkPolicy = {
  budgetMs: 4_000,
  isolateAfter: 3,
  aloneAttempts: 2,
  // Capped at 10 s: a recovered dependency is noticed within seconds, yet a long outage costs few calls.
  backoff: { attempts: Infinity, baseDelayMs: 500, maxDelayMs: 10_000 },
  maxPauseMs: 60_000,
  escalateAfterMs: 60_000,
};

export interface ChunkDeps {
  stage: string;
  dlqTopic: string;
  handler: BatchHandler;
  io: ChunkIo;
  policy: ChunkPolicy;
  logger: Logger;
  metrics: Metrics;
  holds: Holds;
  now?: () => number;
  random?: () => number;
}

export interface PartitionState {
  /** First record not committed of the failing chunk. */
  offset: string;
  /** Whole tries that failed with an unknown answer. */
  attempts: number;
  /** Pauses in a row for slow-down or setup (their backoff). */
  pauses: number;
  /** First unknown failure since the partition last got an output. */
  unknownSince?: number;
  /**
   * An unknown answer held as a setup fault (`at`: when): met again with no success of its scope
   * since, the partition pauses without bisecting; met again after the scope worked for others,
   * the fault is no longer everyone's and the chunk is bisected (a bad member at its head would
   * otherwise hold the partition for good, re-held at every release).
   */
  escalated?: { reason: string; scope: string; at: number };
  bisection?: Bisection;
  /** Offsets whose accepted sends' outputs (keepOnRetry) are already on Kafka: a retry's resend (109110) is not written again. */
  written: Set<string>;
}

/** An outcome the chunk already decided but not yet committed; `written`: its outputs are on Kafka. */
export interface Settled {
  outcome: Outcome;
  written: boolean;
}

type Failed = Extract<Outcome, { kind: 'failed' }>;
const next = (offset: string): string => (BigInt(offset) + 1n).toString();
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export interface ChunkProcessor {
  /** True when the whole chunk is done and the caller may take the next one. */
  process(records: InputRecord[]): Promise<boolean>;
  /** Start time of the most recent handler call that produced an output (for tests and health). */
  lastSuccessStartedAt(): number;
}

/** What bisection.ts needs from the processor. */
export interface ChunkContext {
  deps: ChunkDeps;
  now: () => number;
  call(records: InputRecord[], b: Budget, opts?: { control?: boolean }): Promise<Outcome[]>;
  /** Start of the latest handler call in which a record of `scope` got its output (0: never). */
  lastSuccessStart(scope: string): number;
  /** Writes the outputs of settled keepOnRetry produces now; commits the settled prefix of `records`. Returns the records left. */
  advance(records: InputRecord[], st: PartitionState, settled: Map<string, Settled>): Promise<InputRecord[]>;
  pause(st: PartitionState, at: InputRecord, failure: Failure, err: unknown): void;
  escalate(st: PartitionState, at: InputRecord, failure: Extract<Failure, { kind: 'unknown' }>, err: unknown, why: string): void;
  deadLetterOutcome(err: unknown, attempts: number, trace: string | undefined, why: string): Outcome;
}

export function createChunkProcessor(d: ChunkDeps): ChunkProcessor {
  const now = d.now ?? Date.now;
  const states = new Map<number, PartitionState>();
  let lastSuccessStart = 0;
  const lastSuccessOf = new Map<string, number>();

  const budget = (): Budget => ({ deadline: now() + d.policy.budgetMs, now });

  async function call(records: InputRecord[], b: Budget, opts?: { control?: boolean }): Promise<Outcome[]> {
    const startedAt = now();
    let outcomes: Outcome[];
    try {
      outcomes = await d.handler(records, b, opts);
      if (outcomes.length !== records.length) throw new Error(`handler returned ${outcomes.length} outcomes for ${records.length} records`);
    } catch (err) {
      outcomes = records.map(() => ({ kind: 'failed', error: err }));
    }
    d.metrics.chunkStepSeconds.observe({ step: 'handler' }, (now() - startedAt) / 1000);
    // Proof that the dependency works is an output, which needs its answer. A skip (an update, a
    // heartbeat, a tombstone) or a decode-error dead letter never asked it: during an outage
    // they succeed too, and counting them dead-lettered healthy members (seen in the fault suite).
    // Per scope: an organization whose sends keep failing is not proven wrong by another's
    // successes. Every output also proves the stage and the registry (its input was decoded).
    for (const o of outcomes) {
      if (o.kind !== 'produce') continue;
      lastSuccessStart = Math.max(lastSuccessStart, startedAt);
      for (const scope of [d.stage, 'registry', ...(o.scope ? [o.scope] : [])])
        lastSuccessOf.set(scope, Math.max(lastSuccessOf.get(scope) ?? 0, startedAt));
    }
    return outcomes;
  }

  function deadLetter(input: InputRecord, error: PipelineError, attempts: number, trace: string | undefined): OutgoingRecord {
    d.metrics.deadLettered.inc({ code: error.code });
    d.logger.warn(
      { partition: input.partition, offset: input.offset, code: error.code, reason: error.message, attempts, member: trace },
      'record dead-lettered',
    );
    return deadLetterRecord(d.stage, d.dlqTopic, input, error, new Date(now()), attempts);
  }

  /**
   * Writes the outputs of `outcomes` before `upTo` (and kept effects after it) that are not
   * written yet, then commits before `upTo`. `written[i]`: outcome i's outputs are on Kafka.
   */
  async function finish(
    records: InputRecord[],
    outcomes: (Outcome | undefined)[],
    upTo: number,
    attempts: number,
    written: boolean[] = [],
  ): Promise<void> {
    const out: OutgoingRecord[] = [];
    const counts = { produced: 0, skipped: 0, deadLettered: 0 };
    const traces: string[] = [];
    outcomes.forEach((o, i) => {
      const input = records[i] as InputRecord;
      if (!o) return;
      if (o.trace && i < upTo) traces.push(o.trace);
      if (o.kind === 'produce' && (i < upTo || o.keepOnRetry)) {
        if (!written[i]) out.push(...o.records);
        if (i < upTo) counts.produced += o.records.length;
      } else if (i >= upTo) {
        // not done: re-read later
      } else if (o.kind === 'skip') {
        counts.skipped++;
        d.metrics.skipped.inc({ reason: o.reason });
        if (o.records) out.push(...o.records);
      } else if (o.kind === 'dead-letter') {
        counts.deadLettered++;
        out.push(deadLetter(input, o.error, o.attempts ?? attempts, o.trace));
      }
    });
    const produceStart = now();
    await d.io.produce(out);
    if (out.length > 0) d.metrics.chunkStepSeconds.observe({ step: 'produce' }, (now() - produceStart) / 1000);
    const first = records[0];
    const last = records[upTo - 1];
    if (!first || !last) return;
    // Only now, with every output durable, are these inputs done: commit last + 1.
    const commitStart = now();
    await d.io.commit(first.partition, next(last.offset));
    d.metrics.chunkStepSeconds.observe({ step: 'commit' }, (now() - commitStart) / 1000);
    d.metrics.consumed.inc(upTo);
    d.metrics.produced.inc(counts.produced);
    d.logger.info(
      { partition: first.partition, fromOffset: first.offset, toOffset: last.offset, records: upTo, ...counts, members: traces.slice(0, 50) },
      'batch done',
    );
  }

  function pauseFor(st: PartitionState, failure: Failure): number {
    if (failure.kind === 'slow-down' && failure.retryAfterMs !== undefined) return Math.min(d.policy.maxPauseMs, Math.max(250, failure.retryAfterMs));
    const tries = failure.kind === 'unknown' ? st.attempts + st.pauses : st.pauses;
    return Math.max(250, backoffDelay(Math.max(1, tries), d.policy.backoff, d.random));
  }

  const ctx: ChunkContext = {
    deps: d,
    now,
    call,
    lastSuccessStart: (scope) => lastSuccessOf.get(scope) ?? 0,

    async advance(records, st, settled) {
      let upTo = 0;
      while (upTo < records.length && settled.has((records[upTo] as InputRecord).offset)) upTo++;
      const outcomes = records.map((r) => settled.get(r.offset)?.outcome);
      const written = records.map((r) => settled.get(r.offset)?.written ?? false);
      // keepOnRetry produces past the prefix are written now (an accepted send is a fact), once.
      await finish(records, outcomes, upTo, st.attempts + 1, written);
      for (const r of records) {
        const s = settled.get(r.offset);
        if (s?.outcome.kind === 'produce' && s.outcome.keepOnRetry) s.written = true;
      }
      if (upTo === 0) return records;
      for (const r of records.slice(0, upTo)) settled.delete(r.offset);
      st.offset = next((records[upTo - 1] as InputRecord).offset);
      return records.slice(upTo);
    },

    pause(st, at, failure, err) {
      if (failure.kind === 'setup') d.holds.hold(failure.scope, failure.reason, message(err));
      if (failure.kind !== 'unknown') st.pauses++;
      const ms = pauseFor(st, failure);
      d.metrics.pauses.inc({ code: errorCode(err) });
      const log = failure.kind === 'setup' ? d.logger.error.bind(d.logger) : d.logger.warn.bind(d.logger);
      log(
        { err, partition: at.partition, offset: at.offset, attempt: st.attempts, failure: failure.kind, resumeInMs: ms },
        failure.kind === 'slow-down'
          ? 'dependency asked us to wait or did not answer: pausing partition, nothing dead-lettered'
          : failure.kind === 'setup'
            ? `our setup is refused (${failure.reason}): holding ${failure.scope}, pausing partition, nothing dead-lettered`
            : 'answer we cannot read: pausing partition before retrying, nothing dead-lettered',
      );
      d.io.retryLater(at.partition, at.offset, ms, { kind: failure.kind, ...(failure.kind === 'setup' ? { scope: failure.scope } : {}) });
    },

    escalate(st, at, failure, err, why) {
      st.escalated = { reason: failure.reason, scope: failure.scope, at: now() };
      st.bisection = undefined;
      ctx.pause(
        st,
        at,
        { kind: 'setup', scope: failure.scope, reason: failure.reason },
        new PipelineError(failure.reason, `${why}: ${message(err)}`),
      );
    },

    deadLetterOutcome(err, attempts, trace, why) {
      const reason = err instanceof PipelineError ? err : new PipelineError(errorCode(err), message(err), { cause: err });
      return {
        kind: 'dead-letter',
        attempts,
        trace,
        error: new PipelineError(reason.code, `${why}: ${reason.message}`, { transient: reason.transient }),
      };
    },
  };

  function stateFor(first: InputRecord): PartitionState {
    let st = states.get(first.partition);
    // A chunk that does not start where the failing one did (rebalance, seek) starts afresh.
    if (!st || st.offset !== first.offset) {
      st = { offset: first.offset, attempts: 0, pauses: 0, written: new Set() };
      states.set(first.partition, st);
    }
    return st;
  }

  /** The partition got outputs past its trouble: forget it, and release a hold it escalated. */
  function recovered(partition: number, st: PartitionState): void {
    if (st.escalated) d.holds.release(st.escalated.scope);
    states.delete(partition);
  }

  async function whole(records: InputRecord[], st: PartitionState): Promise<boolean> {
    const b = budget();
    const callStart = now();
    const outcomes = await call(records, b);
    const firstFailed = outcomes.findIndex((o) => o.kind === 'failed');
    const partition = (records[0] as InputRecord).partition;
    if (firstFailed === -1) {
      await finish(records, outcomes, records.length, st.attempts + 1);
      recovered(partition, st);
      return true;
    }
    await finish(
      records,
      outcomes,
      firstFailed,
      st.attempts + 1,
      records.map((r) => st.written.has(r.offset)),
    );
    outcomes.forEach((o, i) => o.kind === 'produce' && o.keepOnRetry && st.written.add((records[i] as InputRecord).offset));
    const rest = records.slice(firstFailed);
    const at = rest[0] as InputRecord;
    if (firstFailed > 0) {
      // progress: what follows is a new chunk as far as counting goes
      if (st.escalated) d.holds.release(st.escalated.scope);
      Object.assign(st, { offset: at.offset, attempts: 0, pauses: 0, unknownSince: undefined, escalated: undefined });
    }
    const failedOutcomes = outcomes.slice(firstFailed).filter((o): o is Failed => o.kind === 'failed');
    const failure = worstFailure(failedOutcomes.map((o) => classifyFailure(o.error, d.stage))) as Failure;
    const err = failedOutcomes[0]?.error;
    if (failure.kind !== 'unknown') {
      ctx.pause(st, at, failure, err);
      return false;
    }
    st.unknownSince ??= now();
    const workedSinceHeld = st.escalated !== undefined && ctx.lastSuccessStart(failure.scope) > st.escalated.at;
    if (st.escalated?.reason === failure.reason && !workedSinceHeld) {
      ctx.escalate(st, at, failure, err, 'the same unknown answer as before the hold');
      return false;
    }
    if (workedSinceHeld) Object.assign(st, { escalated: undefined, unknownSince: now() });
    else if (now() - st.unknownSince >= d.policy.escalateAfterMs) {
      ctx.escalate(st, at, failure, err, `unknown answers for ${Math.round((now() - st.unknownSince) / 1000)} s without a success`);
      return false;
    }
    st.attempts++;
    if (failure.bisect || workedSinceHeld || st.attempts >= d.policy.isolateAfter) {
      // Which record is it? Find out now, inside what is left of this chunk's budget; the
      // bisection's state outlives the call, so it goes on where it stopped on the next read.
      st.bisection = startBisection(rest, outcomes.slice(firstFailed), callStart, st.written);
      return runBisection(ctx, rest, st, b);
    }
    ctx.pause(st, at, failure, err);
    return false;
  }

  return {
    async process(records) {
      const first = records[0];
      if (!first) return true;
      const st = stateFor(first);
      const started = now();
      for (const r of records) {
        const at = Number(r.timestamp);
        if (at > 0) d.metrics.recordWaitSeconds.observe(Math.max(0, started - at) / 1000);
      }
      try {
        if (st.bisection) return await runBisection(ctx, records, st, budget());
        return await whole(records, st);
      } catch (err) {
        // A produce or commit past its deadline (stage.ts): the chunk is redone from what was
        // committed, after a pause, instead of an error out of eachBatch (kafkajs would retry the
        // fetch loop and restart its consumer). Any other error is kafkajs's (a rebalance): raw.
        if (!(err instanceof PipelineError && err.code === 'KAFKA_DEADLINE')) throw err;
        const at = records.find((r) => r.offset === st.offset) ?? first;
        ctx.pause(st, at, { kind: 'slow-down' }, err);
        return false;
      } finally {
        d.metrics.batchSeconds.observe((now() - started) / 1000);
      }
    },
    lastSuccessStartedAt: () => lastSuccessStart,
  };
}
