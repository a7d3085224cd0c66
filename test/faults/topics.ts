/**
 * Reading what the pipeline wrote during one scenario: a topic from given start offsets up
 * to its end offsets at call time (not from the beginning: topics grow with every run), and
 * the decoders that tell which member a record is about.
 */
import type { IHeaders } from 'kafkajs';
import { memberChangeView, type MemberChange } from '../../consumers/augmenter/member-change';
import { augmentedMemberReader, type AugmentedMember } from '../../consumers/emailer/augmented-member';
import { createRegistry } from '../../consumers/shared/registry';
import { runId, stackEnv } from '../support/env';
import { endOffsets, testKafka, topicExists } from '../support/kafka';
import { waitFor } from '../support/wait';

export interface Rec {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
  /** The record's Kafka timestamp (epoch ms). */
  timestamp: number;
}

export type Offsets = Map<number, bigint>;

let seq = 0;

/** End offsets now, or an empty map when the topic does not exist yet (read from 0 then). */
export async function startOffsets(topic: string): Promise<Offsets> {
  return (await topicExists(topic)) ? endOffsets(topic) : new Map();
}

/** Every record of `topic` from `from` (per partition; 0 when absent) up to the end offsets now. */
export async function readRange(topic: string, from: Offsets): Promise<Rec[]> {
  if (!(await topicExists(topic))) return [];
  const to = await endOffsets(topic);
  const pending = [...to].filter(([p, end]) => end > (from.get(p) ?? 0n));
  if (pending.length === 0) return [];
  const consumer = testKafka.consumer({ groupId: `faults-read-${runId}-${seq++}`, maxWaitTimeInMs: 100 });
  const out: Rec[] = [];
  const reached = new Map<number, bigint>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const offset = BigInt(message.offset);
        const end = to.get(partition) ?? 0n;
        if (offset >= (from.get(partition) ?? 0n) && offset < end) {
          out.push({
            topic,
            partition,
            offset,
            key: message.key,
            value: message.value,
            headers: message.headers ?? {},
            timestamp: Number(message.timestamp),
          });
        }
        reached.set(partition, offset + 1n);
      },
    });
    // Skip what came before the scenario (correctness does not depend on it: the filter above does).
    for (const [p] of pending) consumer.seek({ topic, partition: p, offset: String(from.get(p) ?? 0n) });
    await waitFor(`${topic} read up to its end offsets`, async () => pending.every(([p, end]) => (reached.get(p) ?? 0n) >= end), 60_000, 100);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

export function header(h: IHeaders, name: string): string | undefined {
  const v = h[name];
  const first = Array.isArray(v) ? v[0] : v;
  // Connect writes some of its __connect.errors.* headers with a null value
  return first === undefined || first === null ? undefined : first.toString();
}

// One registry client per reader view: its decode cache is keyed by schema id.
const memberRegistry = createRegistry(stackEnv.registryUrl);
const augmentedRegistry = createRegistry(stackEnv.registryUrl);
const augmentedReader = augmentedMemberReader();
const augmentedView = (): ReturnType<typeof augmentedMemberReader> => augmentedReader;

/** A change event on the member topic (also the value of an augmenter dead letter); undefined when not decodable. */
export async function asMemberChange(value: Buffer | null): Promise<MemberChange | undefined> {
  if (!value) return undefined;
  try {
    return await memberRegistry.decode<MemberChange>(value, memberChangeView);
  } catch {
    return undefined; // someone else's bad-input test: not one of our members
  }
}

/** A NewMemberAugmented record (also the value of an emailer dead letter); undefined when not decodable. */
export async function asAugmented(value: Buffer | null): Promise<AugmentedMember | undefined> {
  if (!value) return undefined;
  try {
    return await augmentedRegistry.decode<AugmentedMember>(value, augmentedView);
  } catch {
    return undefined;
  }
}
