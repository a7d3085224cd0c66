/**
 * Before `make forget` deletes a member's rows, the readers that write rows from topics must
 * have read everything produced until then: the audit sink and the delivery-status stage
 * (welcome.sent), then the status sink (welcome.delivery.status). A WelcomeSent of the member
 * that one of them had not read yet (Connect down, the stage behind) would otherwise write its
 * row again after the delete. Their committed offsets are compared with the topics' end
 * offsets taken when the wait starts.
 */
import { committed, kafka } from './topic-read';

export interface RowWriter {
  /** Consumer group (Connect's sinks: connect-<connector>). */
  group: string;
  topic: string;
}

const env = process.env;
const SENT = env.SENT_TOPIC ?? 'welcome.sent';
const STATUS = env.DELIVERY_STATUS_TOPIC ?? 'welcome.delivery.status';

/** In the order they feed each other: welcome.sent's readers first, then the status sink. */
export const ROW_WRITERS: RowWriter[][] = [
  [
    { group: 'connect-welcome-audit', topic: SENT },
    { group: env.DELIVERY_STATUS_GROUP_ID ?? 'welcome-delivery-status', topic: SENT },
  ],
  [{ group: 'connect-welcome-delivery-status', topic: STATUS }],
];

async function endOffsets(topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Waits until each stage of writers has committed up to the ends its topic had when that stage's
 * wait began; at most `timeoutMs` in all. Returns the writers still behind (empty: all caught up).
 */
export async function waitRowWriters(
  timeoutMs: number,
  stages: RowWriter[][] = ROW_WRITERS,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<RowWriter[]> {
  const deadline = Date.now() + timeoutMs;
  for (const writers of stages) {
    const ends = new Map<string, Map<number, bigint>>();
    for (const w of writers) if (!ends.has(w.topic)) ends.set(w.topic, await endOffsets(w.topic));
    let behind = writers;
    for (;;) {
      const still: RowWriter[] = [];
      for (const w of behind) {
        const done = await committed(w.group, w.topic);
        const end = ends.get(w.topic) ?? new Map<number, bigint>();
        if ([...end].some(([p, e]) => e > 0n && (done.get(p) ?? 0n) < e)) still.push(w);
      }
      behind = still;
      if (behind.length === 0) break;
      if (Date.now() > deadline) return behind;
      await sleep(500);
    }
  }
  return [];
}
