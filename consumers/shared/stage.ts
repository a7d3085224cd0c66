/**
 * The consume → process → produce → commit loop both stages share, on kafkajs. What one chunk
 * goes through (budget, outputs before commit, pauses, poison isolation) is in chunk.ts; this
 * module keeps the group membership healthy around it:
 * - a timer heartbeats while a chunk is handled, so slow work never gets the member evicted;
 * - a commit refused after a rebalance (unknown member, illegal generation, rebalance in
 *   progress) is re-thrown as kafkajs's own error, which its runner answers by re-joining
 *   (wrapped, it would crash the consumer for good);
 * - commits go through the batch's own commit function, which still works after
 *   consumer.stop() has begun (consumer.commitOffsets silently does nothing from then on), so
 *   the in-flight chunk of a shutdown is committed before the group is left;
 * - the chunks of one fetch round end together: their produces, and their commits, go out as
 *   one request while another is in flight (coalesce.ts), not one behind the other;
 * - liveness (liveness.ts) fails when the consumer crashed without restarting, stopped, or
 *   made no progress for too long while it has lag.
 */
import type { IHeaders } from 'kafkajs';
import { createChunkProcessor, DEFAULT_CHUNK_POLICY, type ChunkPolicy, type PauseKind } from './chunk';
import { createCoalescer } from './coalesce';
import { PipelineError } from './errors';
import type { Holds } from './holds';
import { groupLag, type Consumer, type Producer, type KafkaMessage, type OutgoingRecord, type Admin, produceAll } from './kafka';
import { createLiveness, type Liveness, type LivenessOptions } from './liveness';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import type { Budget } from './retry';

export interface InputRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
  timestamp: string;
}

export type Outcome =
  /**
   * keepOnRetry: the output records an effect that already happened (an accepted send); write it
   * even when an earlier record of the chunk must be retried. scope: what the output proves works
   * (`org:UA`, `warehouse`): a failure of that scope is proven a record's own only by outputs of it.
   */
  | { kind: 'produce'; records: OutgoingRecord[]; trace: string; keepOnRetry?: boolean; scope?: string }
  /** records: an optional trace of the skip (e.g. on welcome.skipped / welcome.held), written with the batch's outputs. */
  | { kind: 'skip'; reason: string; trace?: string; records?: OutgoingRecord[] }
  /** attempts: how many times the record was tried (the stage sets it when it gives up on retries). */
  | { kind: 'dead-letter'; error: PipelineError; trace?: string; attempts?: number }
  /** Not done now (the error says why); the stage decides: retry later, isolate, or dead-letter. */
  | { kind: 'failed'; error: unknown; trace?: string };

/**
 * Returns one outcome per input record, in order. Every call it makes to the outside must fit
 * in `budget` (pass it to the clients). A throw means every record of the call failed.
 */
/**
 * `control`: a bisection asks these records again only to learn whether the dependency answers
 * now (their outcomes are settled already and not used): a guard that skips work already done
 * (the emailer's audit rows) must let them through, or the call proves nothing.
 */
export type BatchHandler = (records: InputRecord[], budget: Budget, opts?: { control?: boolean }) => Promise<Outcome[]>;

export interface StageOptions {
  stage: string;
  groupId: string;
  inputTopic: string;
  dlqTopic: string;
  consumer: Consumer;
  producer: Producer;
  admin: Admin;
  handler: BatchHandler;
  logger: Logger;
  metrics: Metrics;
  /** Records handed to the handler at once (one warehouse lookup / SFMC request each). */
  chunkSize: number;
  partitionsConsumedConcurrently: number;
  /** How often the timer heartbeats while a chunk is handled (kafkajs skips beats closer than its own interval). */
  heartbeatIntervalMs: number;
  chunkPolicy?: Partial<ChunkPolicy>;
  liveness: LivenessOptions;
  /** Called once when liveness fails: the process must exit non-zero. */
  onFatal: (reason: string) => void;
  /** How often lag is measured (and liveness checked). */
  lagIntervalMs?: number;
  /** Setup holds of this process: a release resumes the partitions paused on that scope at once. */
  holds: Holds;
  /** Longest wait for one acknowledged produce, and for one commit (retries included): past it the chunk is redone. */
  produceDeadlineMs?: number;
  commitDeadlineMs?: number;
}

/** Bounds every Kafka wait of a chunk; their sum with the budget is checked in stage-config.ts. */
export const PRODUCE_DEADLINE_MS = 2_000;
export const COMMIT_DEADLINE_MS = 1_500;

/** `work`, or a transient PIPELINE error after `ms` (the work goes on unobserved; its result is not used). */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PipelineError('KAFKA_DEADLINE', `${what} took longer than ${ms} ms: the chunk is redone`, { transient: true })),
      ms,
    );
  });
  work.catch(() => undefined); // a late rejection is not an unhandled one
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

export const DLQ_HEADERS = {
  stage: 'dlq.stage',
  errorClass: 'dlq.error.class',
  errorCode: 'dlq.error.code',
  reason: 'dlq.reason',
  topic: 'dlq.original.topic',
  partition: 'dlq.original.partition',
  offset: 'dlq.original.offset',
  firstFailure: 'dlq.first.failure.time',
  attempts: 'dlq.attempts',
} as const;

/** The original key, value and headers untouched, plus why and where it came from. */
/** `attempts`: how many times this processing tried the record (added to the count of earlier dead-letterings). */
export function deadLetterRecord(stage: string, dlqTopic: string, input: InputRecord, error: PipelineError, now: Date, attempts = 1): OutgoingRecord {
  const previousAttempts = Number(input.headers[DLQ_HEADERS.attempts]?.toString() ?? '0');
  const firstFailure = input.headers[DLQ_HEADERS.firstFailure]?.toString() ?? now.toISOString();
  return {
    topic: dlqTopic,
    key: input.key,
    value: input.value,
    headers: {
      ...input.headers,
      [DLQ_HEADERS.stage]: stage,
      [DLQ_HEADERS.errorClass]: error.transient ? 'transient' : 'permanent',
      [DLQ_HEADERS.errorCode]: error.code,
      [DLQ_HEADERS.reason]: error.message.slice(0, 1000),
      [DLQ_HEADERS.topic]: input.headers[DLQ_HEADERS.topic]?.toString() ?? input.topic,
      [DLQ_HEADERS.partition]: input.headers[DLQ_HEADERS.partition]?.toString() ?? String(input.partition),
      [DLQ_HEADERS.offset]: input.headers[DLQ_HEADERS.offset]?.toString() ?? input.offset,
      [DLQ_HEADERS.firstFailure]: firstFailure,
      [DLQ_HEADERS.attempts]: String(previousAttempts + Math.max(1, attempts)),
    },
  };
}

function toInput(topic: string, partition: number, m: KafkaMessage): InputRecord {
  return { topic, partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers ?? {}, timestamp: m.timestamp };
}

/** kafkajs error types its runner answers by re-joining the group (runner.js scheduleFetchManager). */
export const REJOIN_ERROR_TYPES: ReadonlySet<string> = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'NOT_COORDINATOR_FOR_GROUP',
  'UNKNOWN_MEMBER_ID',
]);
const errorType = (err: unknown): string | undefined => (err as { type?: string } | undefined)?.type;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type CommitFn = (offsets: { topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }) => Promise<void>;

export interface RunningStage {
  /** Takes no new chunk, finishes and commits the in-flight ones, leaves the group. */
  stop(): Promise<void>;
  isConnected(): boolean;
  liveness: Liveness;
  /** Partitions of this process paused now, by why. */
  paused(): Record<string, number>;
}

export async function runStage(o: StageOptions): Promise<RunningStage> {
  /** Per paused partition: its resume timer, why it waits, and the hold whose release ends the wait early. */
  const pausedParts = new Map<number, { timer: NodeJS.Timeout; kind: PauseKind; scope?: string }>();
  const commitFns = new Map<number, CommitFn>();
  let connected = false;
  let stopping = false;
  const liveness = createLiveness(o.liveness);
  liveness.onFail((reason) => {
    o.logger.error({ reason }, 'consumer exited: liveness failed');
    o.onFatal(reason);
  });
  o.consumer.on(o.consumer.events.GROUP_JOIN, (e) => {
    connected = true;
    const assignment = (e.payload as { memberAssignment?: Record<string, number[]> }).memberAssignment ?? {};
    liveness.joined(assignment[o.inputTopic] ?? []);
    o.metrics.partitionsOwned.set((assignment[o.inputTopic] ?? []).length);
  });
  o.consumer.on(o.consumer.events.CRASH, (e) => {
    connected = false;
    const { error, restart } = e.payload as { error: Error; restart: boolean };
    o.logger.error({ err: error, restart }, restart ? 'kafka consumer crashed; kafkajs restarts it' : 'kafka consumer crashed and will not restart');
    liveness.crashed(restart, error.message);
    // kafkajs's restart builds a new consumer group with nothing paused: our pauses are gone with the old one
    pausedParts.forEach((p) => clearTimeout(p.timer));
    pausedParts.clear();
    pausedGauge();
  });
  o.consumer.on(o.consumer.events.STOP, () => {
    connected = false;
    if (!stopping) liveness.stopped();
  });

  await o.consumer.subscribe({ topic: o.inputTopic, fromBeginning: true });

  /** One OffsetCommit for the offsets of several partitions (every batch's commit function reaches the same group member). */
  async function commitOffsets(fn: CommitFn, offsets: { partition: number; offset: string }[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await fn({ topics: [{ topic: o.inputTopic, partitions: offsets }] });
        return;
      } catch (err) {
        if (REJOIN_ERROR_TYPES.has(errorType(err) ?? '')) {
          // Raw, so kafkajs's runner re-joins; the chunks' outputs are written, their next owner reads them again.
          o.logger.warn({ offsets, type: errorType(err) }, 'commit refused after a rebalance: re-joining the group');
          throw err;
        }
        if (attempt >= 5 || (err as { retriable?: boolean }).retriable === false) throw err;
        await sleep(200 * attempt);
      }
    }
  }
  // The workers' chunks end together: their commits (and produces, below) go as one request
  // each while another is in flight, instead of queueing one behind the other (coalesce.ts).
  const commitTogether = createCoalescer<{ partition: number; offset: string; fn: CommitFn }>(async (items) => {
    const latest = new Map(items.map((i) => [i.partition, i.offset])); // one chunk per partition is in flight: one each
    await commitOffsets(
      (items[items.length - 1] as { fn: CommitFn }).fn,
      [...latest].map(([partition, offset]) => ({ partition, offset })),
    );
  });
  const produceTogether = createCoalescer<OutgoingRecord>((records) =>
    produceAll(o.producer, records, (partitions) =>
      o.logger.warn({ partitions }, 'kafkajs left partitions of a send unanswered (#1303): sending their records again'),
    ),
  );

  async function commit(partition: number, offset: string): Promise<void> {
    const fn = commitFns.get(partition);
    if (!fn) throw new Error(`no batch in flight for partition ${partition}`);
    return withDeadline(commitTogether([{ partition, offset, fn }]), o.commitDeadlineMs ?? COMMIT_DEADLINE_MS, 'the commit');
  }

  const pausedGauge = (): void => {
    for (const kind of ['slow-down', 'setup', 'unknown'] as const)
      o.metrics.partitionsPaused.set({ kind }, [...pausedParts.values()].filter((p) => p.kind === kind).length);
  };
  /**
   * pause/resume/seek throw when kafkajs has no consumer group: after a crash, until its restart
   * timer builds a new one (consumer/index.js: stop() sets consumerGroup = null). The new group
   * starts with nothing paused and no seek, from the committed offsets: the chunk is read again,
   * which is all a resume or a seek would have done. So a failure here is logged, never thrown
   * from a timer (that killed the process without a log line).
   */
  const kafkaCall = (what: string, partition: number, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      o.logger.warn({ err, partition }, `consumer.${what} refused (kafkajs is restarting its consumer group; it re-reads from the committed offset)`);
    }
  };
  const resumeNow = (partition: number): void => {
    const p = pausedParts.get(partition);
    if (!p) return;
    clearTimeout(p.timer);
    pausedParts.delete(partition);
    pausedGauge();
    if (!stopping) kafkaCall('resume', partition, () => o.consumer.resume([{ topic: o.inputTopic, partitions: [partition] }]));
  };
  // A released hold resumes every partition that waited on it, not after each one's own backoff.
  o.holds.onRelease((scope) => {
    for (const [partition, p] of pausedParts) if (p.kind === 'setup' && p.scope === scope) resumeNow(partition);
  });

  const processor = createChunkProcessor({
    stage: o.stage,
    dlqTopic: o.dlqTopic,
    handler: o.handler,
    logger: o.logger,
    metrics: o.metrics,
    holds: o.holds,
    policy: { ...DEFAULT_CHUNK_POLICY, ...o.chunkPolicy },
    io: {
      produce: (records: OutgoingRecord[]) =>
        records.length === 0 ? Promise.resolve() : withDeadline(produceTogether(records), o.produceDeadlineMs ?? PRODUCE_DEADLINE_MS, 'the produce'),
      commit,
      retryLater(partition, offset, pauseMs, why) {
        const tp = [{ topic: o.inputTopic, partitions: [partition] }];
        const before = pausedParts.get(partition);
        if (before) clearTimeout(before.timer);
        pausedParts.delete(partition);
        if (pauseMs > 0) kafkaCall('pause', partition, () => o.consumer.pause(tp));
        kafkaCall('seek', partition, () => o.consumer.seek({ topic: o.inputTopic, partition, offset }));
        if (pauseMs > 0) {
          const timer = setTimeout(() => resumeNow(partition), pauseMs);
          pausedParts.set(partition, { timer, kind: why?.kind ?? 'slow-down', ...(why?.scope ? { scope: why.scope } : {}) });
        } else if (before) kafkaCall('resume', partition, () => o.consumer.resume(tp));
        pausedGauge();
      },
    },
  });

  await o.consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: o.partitionsConsumedConcurrently,
    eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary }) => {
      commitFns.set(batch.partition, commitOffsetsIfNecessary as CommitFn);
      let rebalancing = false;
      // The session stays alive however long the chunk takes; a rebalance is noticed here and
      // answered after the chunk (its commit is still accepted while the group waits for us).
      const beat = setInterval(() => {
        heartbeat().catch((err: unknown) => {
          if (REJOIN_ERROR_TYPES.has(errorType(err) ?? '')) rebalancing = true;
          o.logger.debug({ err }, 'heartbeat failed');
        });
      }, o.heartbeatIntervalMs);
      try {
        const all = batch.messages.map((m) => toInput(batch.topic, batch.partition, m));
        for (let i = 0; i < all.length; i += o.chunkSize) {
          // After stop(): take no new chunk (the in-flight one was committed above).
          if (!isRunning() || isStale() || rebalancing) return;
          const chunk = all.slice(i, i + o.chunkSize);
          const done = await processor.process(chunk);
          // an attempt of our own finished with a classified answer: this process works
          liveness.attempted();
          if (!done) return;
          resolveOffset((chunk[chunk.length - 1] as InputRecord).offset);
        }
      } finally {
        clearInterval(beat);
      }
      if (rebalancing) await heartbeat(); // throws the rebalance error: kafkajs re-joins now
    },
  });

  let lagFailing = false;
  // One measure at a time: with Kafka down a measure (a reconnect with kafkajs's retries) can
  // outlast the interval, and overlapping ones would disconnect each other's admin.
  let measuring = false;
  const lagTimer = setInterval(() => {
    if (stopping) return;
    liveness.check();
    if (measuring) return;
    measuring = true;
    groupLag(o.admin, o.groupId, o.inputTopic)
      .then((lags) => {
        lags.forEach((l) => o.metrics.lag.set({ partition: String(l.partition) }, l.lag));
        o.metrics.lagMeasuredAt.set(Date.now() / 1000);
        liveness.lag(lags);
        lagFailing = false;
      })
      .catch((err: unknown) => {
        // Kafka unreachable: no lag figure, no verdict; ConsumerLagUnmeasured alerts if it lasts
        if (!lagFailing) o.logger.warn({ err }, 'cannot measure the lag (the stall detector waits for a figure)');
        lagFailing = true;
      })
      .finally(() => {
        measuring = false;
      });
  }, o.lagIntervalMs ?? 5_000);
  lagTimer.unref();

  return {
    isConnected: () => connected,
    liveness,
    paused: () => {
      const out: Record<string, number> = {};
      for (const p of pausedParts.values()) out[p.kind] = (out[p.kind] ?? 0) + 1;
      return out;
    },
    async stop() {
      stopping = true;
      clearInterval(lagTimer);
      pausedParts.forEach((p) => clearTimeout(p.timer));
      pausedParts.clear();
      // kafkajs's stop(): the runner stops taking batches, waits for the in-flight ones (each
      // commits through its batch's commit function, which still works now), then leaves the group.
      await o.consumer.stop();
      await o.consumer.disconnect();
      await o.producer.disconnect();
      await o.admin.disconnect();
    },
  };
}
