/**
 * The stage loop around kafkajs (consumers/shared/stage.ts) with a fake consumer that behaves as
 * kafkajs 2.2.4 does after a crash: between the crash and its restart timer, pause, resume and
 * seek throw "Consumer group was not initialized" (consumer/index.js). A resume timer firing then
 * must not kill the process; a released setup hold resumes the partitions waiting on it at once;
 * a produce that outlasts its deadline fails the chunk instead of holding it.
 */
import { EventEmitter } from 'node:events';
import type { Admin, Consumer, Producer } from 'kafkajs';
import { AnswerError, type AnswerRow } from '../../../consumers/shared/answers';
import { createHolds } from '../../../consumers/shared/holds';
import { createLogger } from '../../../consumers/shared/logger';
import { createMetrics } from '../../../consumers/shared/metrics';
import { SEND_ANSWERS } from '../../../consumers/shared/sfmc-answers';
import { runStage, withDeadline, type BatchHandler } from '../../../consumers/shared/stage';
import { fakeProducer } from '../../support/fake-producer';
import { waitFor } from '../../support/wait';

const row = (id: string): AnswerRow => SEND_ANSWERS.find((r) => r.id === id) as AnswerRow;
const EVENTS = { GROUP_JOIN: 'group_join', CRASH: 'crash', STOP: 'stop' };

function fakeConsumer() {
  const emitter = new EventEmitter();
  const calls: string[] = [];
  let eachBatch: ((payload: unknown) => Promise<void>) | undefined;
  const state = { crashed: false };
  const guard = (what: string) => (tps: unknown) => {
    calls.push(`${what} ${JSON.stringify(tps)}`);
    if (state.crashed) throw new Error('Consumer group was not initialized, consumer#run must be called first');
  };
  const consumer = {
    events: EVENTS,
    on: (event: string, listener: (e: unknown) => void) => emitter.on(event, listener),
    subscribe: async () => undefined,
    run: async (o: { eachBatch: (payload: unknown) => Promise<void> }) => void (eachBatch = o.eachBatch),
    pause: guard('pause'),
    resume: guard('resume'),
    seek: guard('seek'),
    stop: async () => undefined,
    disconnect: async () => undefined,
  } as unknown as Consumer;
  const batch = async (partition: number, offset: string): Promise<void> =>
    (eachBatch as (payload: unknown) => Promise<void>)({
      batch: { topic: 'in', partition, messages: [{ offset, key: Buffer.from('k'), value: Buffer.from('v'), headers: {}, timestamp: '0' }] },
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => false,
      resolveOffset: () => undefined,
      commitOffsetsIfNecessary: async () => undefined,
    });
  return { consumer, emitter, calls, state, batch };
}

async function stage(handler: BatchHandler, producer?: Producer) {
  const fake = fakeConsumer();
  const holds = createHolds({ logger: createLogger('test', 'silent') });
  const warnings: string[] = [];
  const logger = createLogger('test', 'warn', { write: (line: string) => void warnings.push(line) });
  const running = await runStage({
    stage: 'test',
    groupId: 'g',
    inputTopic: 'in',
    dlqTopic: 'dlq',
    consumer: fake.consumer,
    producer: Object.assign(producer ?? fakeProducer().producer, { disconnect: async () => undefined }),
    admin: { disconnect: async () => undefined } as unknown as Admin,
    handler,
    logger,
    metrics: createMetrics('test'),
    chunkSize: 10,
    partitionsConsumedConcurrently: 1,
    heartbeatIntervalMs: 60_000,
    chunkPolicy: { backoff: { attempts: Infinity, baseDelayMs: 1, maxDelayMs: 1 } },
    liveness: { stallTimeoutMs: 60_000, restartGraceMs: 60_000 },
    onFatal: () => undefined,
    lagIntervalMs: 3_600_000,
    holds,
  });
  return { ...fake, holds, warnings, running };
}

test('a resume timer that fires while kafkajs restarts its consumer group is logged, not thrown out of the timer', async () => {
  const s = await stage(async () => [{ kind: 'failed', error: new AnswerError(row('send.5xx'), '503', { scope: 'org:UA', retryAfterMs: 0 }) }]);
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    await s.batch(0, '5'); // paused for 250 ms (the shortest pause)
    expect(s.running.paused()).toEqual({ 'slow-down': 1 });
    s.state.crashed = true; // kafkajs crashed: its consumer group is gone until the restart timer
    await waitFor('the resume timer to fire', async () => s.calls.some((c) => c.startsWith('resume')), 5_000, 20);
    expect(uncaught).toEqual([]);
    expect(s.warnings.join('\n')).toMatch(/consumer.resume refused \(kafkajs is restarting its consumer group/);
    expect(s.running.paused()).toEqual({});
  } finally {
    process.off('uncaughtException', onUncaught);
    await s.running.stop();
  }
});

test('a crash drops the stale pauses (the restarted group has none); pause and seek during the crash are logged, not thrown', async () => {
  const s = await stage(async () => [{ kind: 'failed', error: new AnswerError(row('send.429'), '429', { scope: 'org:UA', retryAfterMs: 30_000 }) }]);
  try {
    await s.batch(1, '7');
    expect(s.running.paused()).toEqual({ 'slow-down': 1 });
    s.emitter.emit(EVENTS.CRASH, { payload: { error: new Error('Connection timeout'), restart: true } });
    expect(s.running.paused()).toEqual({});
    s.state.crashed = true;
    await expect(s.batch(1, '7')).resolves.toBeUndefined();
    expect(s.warnings.join('\n')).toMatch(/consumer.pause refused/);
  } finally {
    await s.running.stop();
  }
});

test('a released setup hold resumes every partition waiting on it at once, not after its own backoff', async () => {
  let refused = true;
  const s = await stage(async (records) =>
    refused ? records.map(() => ({ kind: 'failed', error: new AnswerError(row('send.403'), '403', { scope: 'org:UA' }) })) : [],
  );
  try {
    await s.batch(0, '1');
    await s.batch(3, '1');
    expect(s.holds.list().map((h) => h.scope)).toEqual(['org:UA']);
    expect(s.running.paused()).toEqual({ setup: 2 });
    refused = false;
    s.holds.release('org:UA');
    expect(s.running.paused()).toEqual({});
    expect(s.calls.filter((c) => c.startsWith('resume'))).toHaveLength(2);
  } finally {
    await s.running.stop();
  }
});

test('a produce that outlasts its deadline fails the chunk (a slow-down), it does not hold it', async () => {
  await expect(withDeadline(new Promise(() => undefined), 20, 'the produce')).rejects.toMatchObject({ code: 'KAFKA_DEADLINE', transient: true });
  await expect(withDeadline(Promise.resolve(7), 20, 'x')).resolves.toBe(7);
});
