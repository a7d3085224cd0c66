/**
 * Dead-letter topics, for operators.
 *   node dist/tools/dlq.js status            counts per stage and error code (make status)
 *   node dist/tools/dlq.js replay STAGE      re-drive a stage's dead letters (make replay-dlq STAGE=emailer)
 *                                            (STAGE audit: WelcomeSent records the sink could not write go
 *                                            back to welcome.sent; the sink's upsert makes that idempotent)
 *
 * Replay puts each dead-lettered record — original key, value and headers, byte for byte —
 * back on the topic it came from, so the stage that failed it processes it again (after the
 * cause was fixed, e.g. an organization added to the Welcome config). It records how far it
 * got on a compacted topic (welcome.dlq.replay-positions, kept forever: a consumer group's
 * offsets would expire after 7 days idle; replay-positions.ts), so a dead letter is replayed once; if it fails again it returns to the
 * DLQ with dlq.attempts + 1. Replays are idempotent downstream: the emailer skips members
 * already in the audit table and SFMC refuses a reused messageKey.
 * A forgotten member's dead letters (make forget) are not replayed: passed over, and their
 * position recorded like any other, so no offset moves (docs/member-data.md).
 */
import type { IHeaders } from 'kafkajs';
import { DLQ_HEADERS } from '../consumers/shared/stage';
import { header, kafka, readToEnd } from './topic-read';
import { createProducer } from '../consumers/shared/kafka';
import { ensurePositionsTopic, readPositions, recordPosition } from './replay-positions';
import { forgottenCheck } from './forgotten-db';

const env = process.env;
const STAGES: Record<string, string> = {
  augmenter: env.AUGMENTER_DLQ_TOPIC ?? 'welcome.augmenter.dlq',
  emailer: env.EMAILER_DLQ_TOPIC ?? 'welcome.emailer.dlq',
  audit: env.AUDIT_DLQ_TOPIC ?? 'welcome.audit.dlq',
  'delivery-status': env.DELIVERY_STATUS_DLQ_TOPIC ?? 'welcome.delivery.status.dlq',
  // The welcome-delivery-status sink's own DLQ (connect/welcome-delivery-status.json).
  'delivery-audit': 'welcome.delivery.audit.dlq',
};
const out = (line: string): void => void process.stdout.write(`${line}\n`);

/** Why a record is in a DLQ: our stages' code, or Connect's exception class for the sink. */
function reasonOf(h: IHeaders | undefined): string {
  return header(h, DLQ_HEADERS.errorCode) ?? header(h, '__connect.errors.exception.class.name')?.split('.').pop() ?? 'unknown';
}

/** Where each DLQ partition's replay stands: replay-positions.ts (a consumer group's offsets would expire). */
const POSITIONS_TOPIC = env.DLQ_REPLAY_POSITIONS_TOPIC ?? 'welcome.dlq.replay-positions';

async function replayPositions(dlqTopic: string, stage: string, lows: Map<number, bigint>): Promise<Map<number, bigint>> {
  // Replays of an earlier version kept their place in a consumer group: take it over once.
  const stored = await readPositions(POSITIONS_TOPIC, dlqTopic, { groupId: `welcome-dlq-replay-${stage}`, topic: dlqTopic });
  return new Map([...lows].map(([p, low]) => [p, stored.get(p) ?? low]));
}

async function status(): Promise<void> {
  out(`  ${'STAGE'.padEnd(10)} ${'TOPIC'.padEnd(24)} ${'RECORDS'.padStart(7)}  BY REASON`);
  for (const [stage, topic] of Object.entries(STAGES)) {
    const byReason = new Map<string, number>();
    const total = await readToEnd(topic, async (m) => void byReason.set(reasonOf(m.headers), (byReason.get(reasonOf(m.headers)) ?? 0) + 1));
    const reasons = [...byReason]
      .sort((a, b) => b[1] - a[1])
      .map(([r, n]) => `${r}=${n}`)
      .join(' ');
    out(`  ${stage.padEnd(10)} ${topic.padEnd(24)} ${String(total).padStart(7)}  ${reasons || '-'}`);
  }
}

async function replay(stage: string | undefined): Promise<void> {
  if (!stage || !(stage in STAGES)) throw new Error(`usage: dlq replay ${Object.keys(STAGES).join('|')}`);
  const topic = STAGES[stage] as string;
  await ensurePositionsTopic(POSITIONS_TOPIC);
  const isForgotten = await forgottenCheck();
  let forgotten = 0;
  const producer = createProducer(kafka);
  await producer.connect();
  const byTarget = new Map<string, number>();
  try {
    const n = await readToEnd(
      topic,
      async (m, partition) => {
        // Our stages name the source topic in dlq.original.topic; Connect's sink DLQ in __connect.errors.topic.
        const target = header(m.headers, DLQ_HEADERS.topic) ?? header(m.headers, '__connect.errors.topic');
        if (!target) throw new Error(`a record in ${topic} has no ${DLQ_HEADERS.topic} header; not replayable`);
        if (isForgotten(m.key)) {
          forgotten++;
          return recordPosition(producer, POSITIONS_TOPIC, topic, partition, BigInt(m.offset) + 1n);
        }
        // Acknowledged before its replay position is recorded: a crash here replays it twice, never zero times.
        // Connect writes some headers with null values, which a producer cannot send back.
        const headers = Object.fromEntries(Object.entries(m.headers ?? {}).filter(([, v]) => v !== null && v !== undefined)) as IHeaders;
        await producer.send({ topic: target, acks: -1, messages: [{ key: m.key, value: m.value, headers }] });
        await recordPosition(producer, POSITIONS_TOPIC, topic, partition, BigInt(m.offset) + 1n);
        byTarget.set(target, (byTarget.get(target) ?? 0) + 1);
      },
      { from: (lows) => replayPositions(topic, stage, lows) },
    );
    out(
      `replayed ${n - forgotten} record(s) from ${topic}${n ? `: ${[...byTarget].map(([t, c]) => `${c} → ${t}`).join(', ')}` : ' (nothing new since the last replay)'}${forgotten ? `; ${forgotten} of forgotten members passed over` : ''}`,
    );
  } finally {
    await producer.disconnect();
  }
}

const [command, arg] = process.argv.slice(2);
(command === 'replay'
  ? replay(arg)
  : command === 'status' || command === undefined
    ? status()
    : Promise.reject(new Error('usage: dlq status | dlq replay STAGE'))
)
  .then(() => process.exit(0))
  .catch((err: unknown) => {
    process.stderr.write(`dlq: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
