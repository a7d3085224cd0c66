/**
 * The consume → process → produce → commit loop both stages share. The rules it enforces:
 * - offsets are committed explicitly as (last offset + 1), only after every output and
 *   dead-letter record of that batch is acknowledged by Kafka (acks=all);
 * - a record a handler cannot process permanently goes to the dead-letter topic with its
 *   original bytes and the reason, so it never blocks its partition;
 * - a transient failure (dependency down) pauses the partition and seeks back, so nothing
 *   is dead-lettered or lost while the dependency is away.
 */
import type { IHeaders } from 'kafkajs';
import { type PipelineError, errorCode } from './errors';
import { produceAll, groupLag, type Consumer, type Producer, type KafkaMessage, type OutgoingRecord, type Admin } from './kafka';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { backoffDelay } from './retry';

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
  | { kind: 'produce'; records: OutgoingRecord[]; trace: string }
  | { kind: 'skip'; reason: string; trace?: string }
  | { kind: 'dead-letter'; error: PipelineError; trace?: string };

/** Returns one outcome per input record, in order. Throws only for transient failures. */
export type BatchHandler = (records: InputRecord[]) => Promise<Outcome[]>;

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
export function deadLetterRecord(stage: string, dlqTopic: string, input: InputRecord, error: PipelineError, now: Date): OutgoingRecord {
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
      [DLQ_HEADERS.attempts]: String(previousAttempts + 1),
    },
  };
}

const next = (offset: string): string => (BigInt(offset) + 1n).toString();

function toInput(topic: string, partition: number, m: KafkaMessage): InputRecord {
  return { topic, partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers ?? {}, timestamp: m.timestamp };
}

export interface RunningStage {
  stop(): Promise<void>;
  isConnected(): boolean;
}

export async function runStage(o: StageOptions): Promise<RunningStage> {
  const failures = new Map<number, number>();
  const resumeTimers = new Set<NodeJS.Timeout>();
  let connected = false;
  o.consumer.on(o.consumer.events.GROUP_JOIN, () => (connected = true));
  o.consumer.on(o.consumer.events.CRASH, () => (connected = false));
  o.consumer.on(o.consumer.events.STOP, () => (connected = false));

  await o.consumer.subscribe({ topic: o.inputTopic, fromBeginning: true });

  /** Returns false when the partition was paused and the rest of the batch must wait. */
  async function processChunk(records: InputRecord[]): Promise<boolean> {
    const first = records[0];
    const last = records[records.length - 1];
    if (!first || !last) return true;
    const started = Date.now();
    let outcomes: Outcome[];
    try {
      outcomes = await o.handler(records);
      if (outcomes.length !== records.length) throw new Error(`handler returned ${outcomes.length} outcomes for ${records.length} records`);
    } catch (err) {
      const attempt = (failures.get(first.partition) ?? 0) + 1;
      failures.set(first.partition, attempt);
      // Capped at 10 s: a recovered dependency is noticed within seconds, yet a long outage costs few calls.
      const delay = Math.max(250, backoffDelay(attempt, { attempts: Infinity, baseDelayMs: 500, maxDelayMs: 10_000 }));
      o.metrics.pauses.inc({ code: errorCode(err) });
      o.logger.warn({ err, partition: first.partition, offset: first.offset, attempt, resumeInMs: delay },
        'dependency unavailable: pausing partition, nothing dead-lettered');
      const tp = [{ topic: o.inputTopic, partitions: [first.partition] }];
      o.consumer.pause(tp);
      o.consumer.seek({ topic: o.inputTopic, partition: first.partition, offset: first.offset });
      const timer = setTimeout(() => {
        resumeTimers.delete(timer);
        o.consumer.resume(tp);
      }, delay);
      resumeTimers.add(timer);
      return false;
    }
    failures.delete(first.partition);

    const now = new Date();
    const out: OutgoingRecord[] = [];
    const counts = { produced: 0, skipped: 0, deadLettered: 0 };
    const traces: string[] = [];
    outcomes.forEach((outcome, i) => {
      const input = records[i] as InputRecord;
      if (outcome.trace) traces.push(outcome.trace);
      if (outcome.kind === 'produce') {
        out.push(...outcome.records);
        counts.produced += outcome.records.length;
      } else if (outcome.kind === 'skip') {
        counts.skipped++;
        o.metrics.skipped.inc({ reason: outcome.reason });
      } else {
        counts.deadLettered++;
        o.metrics.deadLettered.inc({ code: outcome.error.code });
        o.logger.warn({ partition: input.partition, offset: input.offset, code: outcome.error.code, reason: outcome.error.message, member: outcome.trace },
          'record dead-lettered');
        out.push(deadLetterRecord(o.stage, o.dlqTopic, input, outcome.error, now));
      }
    });
    await produceAll(o.producer, out);
    // Only now, with every output durable, is the input done: commit last + 1.
    await o.consumer.commitOffsets([{ topic: o.inputTopic, partition: first.partition, offset: next(last.offset) }]);
    o.metrics.consumed.inc(records.length);
    o.metrics.produced.inc(counts.produced);
    o.metrics.batchSeconds.observe((Date.now() - started) / 1000);
    o.logger.info({ topic: o.inputTopic, partition: first.partition, fromOffset: first.offset, toOffset: last.offset, records: records.length,
      ...counts, ms: Date.now() - started, members: traces.slice(0, 50) }, 'batch done');
    return true;
  }

  await o.consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: o.partitionsConsumedConcurrently,
    eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
      const all = batch.messages.map((m) => toInput(batch.topic, batch.partition, m));
      for (let i = 0; i < all.length; i += o.chunkSize) {
        if (!isRunning() || isStale()) return;
        const chunk = all.slice(i, i + o.chunkSize);
        if (!(await processChunk(chunk))) return;
        resolveOffset((chunk[chunk.length - 1] as InputRecord).offset);
        await heartbeat();
      }
    },
  });

  const lagTimer = setInterval(() => {
    groupLag(o.admin, o.groupId, o.inputTopic)
      .then((lags) => lags.forEach((l) => o.metrics.lag.set({ partition: String(l.partition) }, l.lag)))
      .catch(() => undefined);
  }, 5_000);
  lagTimer.unref();

  return {
    isConnected: () => connected,
    async stop() {
      clearInterval(lagTimer);
      resumeTimers.forEach(clearTimeout);
      // consumer.stop() waits for the in-flight batch, whose offsets are committed as it completes.
      await o.consumer.stop();
      await o.consumer.disconnect();
      await o.producer.disconnect();
      await o.admin.disconnect();
    },
  };
}
