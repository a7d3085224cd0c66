/**
 * What happens to one chunk of a partition's records, independent of kafkajs (stage.ts wires
 * it to the consumer). The rules:
 * - every chunk has a time budget (all attempts, waits and Retry-Afters of the handler's calls
 *   fit inside it), so a slow dependency never holds a chunk longer than the budget;
 * - outputs are written (acks=all) before the offset after them is committed;
 * - a throttled dependency (Retry-After) pauses the partition for as long as it asked,
 *   counts no attempt and dead-letters nothing;
 * - a transient failure pauses with backoff; after `isolateAfter` failed attempts of the same
 *   chunk its records are retried one by one, so one record that always fails cannot block
 *   the partition: it goes to the DLQ after `aloneAttempts` proven failures alone (another
 *   record got its output after its previous failure: the dependency works, the fault is this
 *   record's), and the others move on;
 * - a permanent failure of a record is dead-lettered at once (a chunk that fails permanently
 *   as a whole is split at once to find the record);
 * - an error about our own setup (credentials refused) pauses and dead-letters nothing.
 */
import { HttpError, PipelineError, errorCode, isTransient } from './errors';
import type { OutgoingRecord } from './kafka';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { backoffDelay, type Budget, type RetryPolicy } from './retry';
import { deadLetterRecord, type BatchHandler, type InputRecord, type Outcome } from './stage';

export interface ChunkIo {
  /** One acknowledged write (acks=all) of these records. */
  produce(records: OutgoingRecord[]): Promise<void>;
  /** Commits `offset` (the next record to read) of the partition. */
  commit(partition: number, offset: string): Promise<void>;
  /** Re-read the partition from `offset`, after a pause of `pauseMs` (0: at once). */
  retryLater(partition: number, offset: string, pauseMs: number): void;
}

export interface ChunkPolicy {
  /** Wall-clock budget of one chunk, every retry and Retry-After included. */
  budgetMs: number;
  /** Failed attempts of the same chunk after which its records are tried one by one. */
  isolateAfter: number;
  /**
   * Proven alone failures before a record is dead-lettered. A failure is proven when another
   * record got its output after the record's previous alone failure ended (after this one, for
   * the first): the dependency answered others in between. Two, because at the end of an
   * outage one failure can look proven; the next try then succeeds.
   */
  aloneAttempts: number;
  /** Pause between attempts of a failing chunk. */
  backoff: RetryPolicy;
  /** Longest pause a Retry-After can cause at once (the answer is asked again after it). */
  maxPauseMs: number;
}

export const DEFAULT_CHUNK_POLICY: ChunkPolicy = {
  budgetMs: 4_000,
  isolateAfter: 3,
  aloneAttempts: 2,
  // Capped at 10 s: a recovered dependency is noticed within seconds, yet a long outage costs few calls.
  backoff: { attempts: Infinity, baseDelayMs: 500, maxDelayMs: 10_000 },
  maxPauseMs: 60_000,
};

/** Errors that are about our configuration, not the records: never a reason to dead-letter. */
export const SETUP_ERROR_CODES: ReadonlySet<string> = new Set([
  'CONFIG',
  'SFMC_DEFINITION_REFUSED',
  'SFMC_AUTH_REJECTED',
  'SFMC_UNAUTHORIZED',
  'SFMC_BAD_TOKEN_RESPONSE',
  'SFMC_BAD_INSTANCE_URL',
  'DW_UNAUTHORIZED',
]);

export type Failure = { kind: 'throttled'; retryAfterMs: number } | { kind: 'setup' } | { kind: 'transient' } | { kind: 'permanent' };

export function classifyFailure(err: unknown): Failure {
  if (err instanceof HttpError && err.transient && err.retryAfterMs !== undefined) return { kind: 'throttled', retryAfterMs: err.retryAfterMs };
  if (err instanceof PipelineError && SETUP_ERROR_CODES.has(err.code)) return { kind: 'setup' };
  return isTransient(err) ? { kind: 'transient' } : { kind: 'permanent' };
}

export interface ChunkDeps {
  stage: string;
  dlqTopic: string;
  handler: BatchHandler;
  io: ChunkIo;
  policy: ChunkPolicy;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
  random?: () => number;
}

interface PartitionState {
  /** Failed attempts of the chunk starting at `offset` (throttling and setup errors not counted). */
  attempts: number;
  offset: string;
  /** While set, records up to this offset are handled one by one. */
  isolateUntil?: bigint;
  /**
   * Per record offset: alone failures (for the DLQ's attempt count), how many of them were
   * proven to be the record's fault, and when the last one ended.
   */
  alone: Map<string, { count: number; proven: number; lastEndedAt?: number }>;
  /** Setup errors in a row (their own backoff; they never lead to dead letters). */
  setup: number;
  /** Failed tries of the chunk as a whole (each record was in them). */
  whole: number;
}

type Failed = Extract<Outcome, { kind: 'failed' }>;
const next = (offset: string): string => (BigInt(offset) + 1n).toString();
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export interface ChunkProcessor {
  /** True when the whole chunk is done and the caller may take the next one. */
  process(records: InputRecord[]): Promise<boolean>;
  /** Start time of the most recent handler call that succeeded (for tests and health). */
  lastSuccessStartedAt(): number;
}

export function createChunkProcessor(d: ChunkDeps): ChunkProcessor {
  const now = d.now ?? Date.now;
  const states = new Map<number, PartitionState>();
  let lastSuccessStart = 0;

  const budget = (): Budget => ({ deadline: now() + d.policy.budgetMs, now });

  async function call(records: InputRecord[], b: Budget): Promise<{ outcomes: Outcome[]; startedAt: number }> {
    const startedAt = now();
    let outcomes: Outcome[];
    try {
      outcomes = await d.handler(records, b);
      if (outcomes.length !== records.length) throw new Error(`handler returned ${outcomes.length} outcomes for ${records.length} records`);
    } catch (err) {
      outcomes = records.map(() => ({ kind: 'failed', error: err }));
    }
    d.metrics.chunkStepSeconds.observe({ step: 'handler' }, (now() - startedAt) / 1000);
    // Proof that the dependency works is an output, which needs its answer. A skip (an update, a
    // heartbeat, a tombstone) or a decode-error dead letter never asked it: during an outage
    // they succeed too, and counting them dead-lettered healthy members (seen in the fault suite).
    if (outcomes.some((o) => o.kind === 'produce')) lastSuccessStart = Math.max(lastSuccessStart, startedAt);
    return { outcomes, startedAt };
  }

  function deadLetter(input: InputRecord, error: PipelineError, attempts: number, trace: string | undefined): OutgoingRecord {
    d.metrics.deadLettered.inc({ code: error.code });
    d.logger.warn(
      { partition: input.partition, offset: input.offset, code: error.code, reason: error.message, attempts, member: trace },
      'record dead-lettered',
    );
    return deadLetterRecord(d.stage, d.dlqTopic, input, error, new Date(now()), attempts);
  }

  /** Writes the outputs of `outcomes` (all done ones before `upTo`, kept effects after it), then commits before `upTo`. */
  async function finish(records: InputRecord[], outcomes: Outcome[], upTo: number, attempts: number): Promise<void> {
    const out: OutgoingRecord[] = [];
    const counts = { produced: 0, skipped: 0, deadLettered: 0 };
    const traces: string[] = [];
    outcomes.forEach((o, i) => {
      const input = records[i] as InputRecord;
      if (o.trace && i < upTo) traces.push(o.trace);
      if (o.kind === 'produce' && (i < upTo || o.keepOnRetry)) {
        out.push(...o.records);
        counts.produced += o.records.length;
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
    if (failure.kind === 'throttled') return Math.min(d.policy.maxPauseMs, Math.max(250, failure.retryAfterMs));
    return Math.max(250, backoffDelay(Math.max(1, st.attempts + st.setup), d.policy.backoff, d.random));
  }

  function retryLater(st: PartitionState, input: InputRecord, failure: Failure, err: unknown): void {
    const ms = pauseFor(st, failure);
    d.metrics.pauses.inc({ code: errorCode(err) });
    const log = failure.kind === 'setup' ? d.logger.error.bind(d.logger) : d.logger.warn.bind(d.logger);
    log(
      { err, partition: input.partition, offset: input.offset, attempt: st.attempts, failure: failure.kind, resumeInMs: ms },
      failure.kind === 'throttled'
        ? 'dependency asked us to wait: pausing partition, nothing dead-lettered'
        : failure.kind === 'setup'
          ? 'our credentials or setup were refused: pausing partition, nothing dead-lettered'
          : 'dependency unavailable: pausing partition, nothing dead-lettered',
    );
    d.io.retryLater(input.partition, input.offset, ms);
  }

  function stateFor(first: InputRecord): PartitionState {
    let st = states.get(first.partition);
    // A chunk that does not start where the failing one did (rebalance, seek) starts afresh.
    if (
      !st ||
      (st.isolateUntil === undefined && st.offset !== first.offset) ||
      (st.isolateUntil !== undefined && BigInt(first.offset) > st.isolateUntil)
    ) {
      st = { attempts: 0, offset: first.offset, alone: new Map(), setup: 0, whole: 0 };
      states.set(first.partition, st);
    }
    return st;
  }

  async function whole(records: InputRecord[], st: PartitionState): Promise<boolean> {
    const b = budget();
    const { outcomes } = await call(records, b);
    const firstFailed = outcomes.findIndex((o) => o.kind === 'failed');
    if (firstFailed === -1) {
      await finish(records, outcomes, records.length, st.attempts + 1);
      states.delete((records[0] as InputRecord).partition);
      return true;
    }
    await finish(records, outcomes, firstFailed, st.attempts + 1);
    const rest = records.slice(firstFailed);
    const err = (outcomes[firstFailed] as Failed).error;
    const failure = classifyFailure(err);
    const at = rest[0] as InputRecord;
    if (firstFailed > 0 || st.offset !== at.offset) {
      st.attempts = 0;
      st.whole = 0;
      st.offset = at.offset;
    }
    if (failure.kind === 'transient' || failure.kind === 'permanent') st.whole++;
    if (failure.kind === 'permanent' && rest.length > 1) {
      // Which record is it? Find out now, inside what is left of this chunk's budget.
      st.isolateUntil = BigInt((rest[rest.length - 1] as InputRecord).offset);
      return isolate(rest, st, b);
    }
    if (failure.kind === 'permanent') {
      // The last record of the chunk (rest.length is 1): it alone failed, so it is the record.
      const o = outcomes[firstFailed] as Failed;
      await finish([at], [{ kind: 'dead-letter', error: asPipelineError(err), trace: o.trace }], 1, st.attempts + 1);
      states.delete(at.partition);
      return true;
    }
    if (failure.kind === 'setup') st.setup++;
    if (failure.kind === 'transient') {
      st.attempts++;
      if (st.attempts >= d.policy.isolateAfter && rest.length > 1) st.isolateUntil = BigInt((rest[rest.length - 1] as InputRecord).offset);
    }
    retryLater(st, at, failure, err);
    return false;
  }

  /**
   * One by one. A record that fails alone is undecided; its failure is proven when a record
   * (later in this pass, or of another partition) got an output after its previous failure.
   * With `aloneAttempts` proven failures it is the record, not the dependency: dead-lettered.
   * Otherwise it may be an outage: pause before it.
   */
  async function isolate(records: InputRecord[], st: PartitionState, b: Budget): Promise<boolean> {
    const done: Outcome[] = [];
    const undecided: { i: number; err: unknown; endedAt: number; trace?: string }[] = [];
    let stop: { i: number; err: unknown; failure: Failure } | undefined;
    let i = 0;
    for (; i < records.length; i++) {
      const r = records[i] as InputRecord;
      if (BigInt(r.offset) > (st.isolateUntil ?? -1n)) break;
      if (i > 0 && b.deadline - now() < d.policy.budgetMs / 4) break; // the rest in the next pass, with a fresh budget
      const { outcomes } = await call([r], b);
      const endedAt = now();
      const o = outcomes[0] as Outcome;
      if (o.kind !== 'failed') {
        done[i] = o;
        continue;
      }
      const seen = st.alone.get(r.offset) ?? { count: 0, proven: 0 };
      seen.count++;
      st.alone.set(r.offset, seen);
      const failure = classifyFailure(o.error);
      if (failure.kind === 'permanent') {
        done[i] = { kind: 'dead-letter', error: asPipelineError(o.error), trace: o.trace, attempts: st.whole + (st.alone.get(r.offset)?.count ?? 1) };
      } else if (failure.kind === 'transient') {
        undecided.push({ i, err: o.error, endedAt, trace: o.trace });
      } else {
        stop = { i, err: o.error, failure };
        break;
      }
    }
    // Undecided records with proof of a working dependency become dead letters; the first without proof stops us.
    let upTo = stop?.i ?? i;
    for (const u of undecided) {
      if (u.i >= upTo) break;
      const r = records[u.i] as InputRecord;
      const a = st.alone.get(r.offset) ?? { count: 1, proven: 0 };
      if (lastSuccessStart >= (a.lastEndedAt ?? u.endedAt)) a.proven++;
      a.lastEndedAt = u.endedAt;
      if (a.proven >= d.policy.aloneAttempts) {
        const attempts = st.whole + (st.alone.get(r.offset)?.count ?? 1);
        const reason = asPipelineError(u.err);
        done[u.i] = {
          kind: 'dead-letter',
          attempts,
          trace: u.trace,
          error: new PipelineError(reason.code, `failed ${attempts} times, the last ones alone while other records succeeded: ${reason.message}`, {
            transient: true,
          }),
        };
      } else {
        upTo = u.i;
        stop = { i: u.i, err: u.err, failure: { kind: 'transient' } };
      }
    }
    // Outcomes past upTo (sparse) are only written when they record an accepted send (keepOnRetry).
    await finish(records, done, upTo, st.attempts + 1);
    const partition = (records[0] as InputRecord).partition;
    if (stop) {
      const at = records[stop.i] as InputRecord;
      if (stop.failure.kind === 'transient') st.attempts++;
      if (stop.failure.kind === 'setup') st.setup++;
      retryLater(st, at, stop.failure, stop.err);
      return false;
    }
    const last = records[upTo - 1];
    if (last && BigInt(last.offset) >= (st.isolateUntil ?? -1n)) states.delete(partition);
    if (upTo < records.length) {
      d.io.retryLater(partition, (records[upTo] as InputRecord).offset, 0);
      return false;
    }
    return true;
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
        if (st.isolateUntil !== undefined) return await isolate(records, st, budget());
        return await whole(records, st);
      } finally {
        d.metrics.batchSeconds.observe((now() - started) / 1000);
      }
    },
    lastSuccessStartedAt: () => lastSuccessStart,
  };
}

function asPipelineError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  return new PipelineError(errorCode(err), message(err), { transient: isTransient(err), cause: err });
}
