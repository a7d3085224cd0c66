/**
 * Hop-by-hop latency: for each bench member, when it appeared at every hop —
 *   commit (the bench's clock after COMMIT returned)
 *   → in the member topic (Kafka timestamp: CreateTime, stamped by Connect's producer)
 *   → in the augmented topic (CreateTime, stamped by the augmenter's producer)
 *   → accepted by SFMC (the stand-in's receivedAt; SendCollector stamps it as cdcAt)
 *   → audit row (audited_at, the database's clock when the sink inserted the row).
 * All clocks are this machine's, so differences are hop costs. The first hop is the floor:
 * what binlog + Debezium + Connect cost before any code of ours runs.
 */
import type avro from 'avsc';
import type { Kafka } from 'kafkajs';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { memberKey } from '../../consumers/shared/member';
import type { Registry } from '../../consumers/shared/registry';
import type { BenchMember } from './inserter';
import { summarize, type Summary } from './stats';

/** The member topic's value as connect/members-source.json flattens it (ExtractNewRecordState, op kept as __op). */
interface MemberChange {
  __op?: string | null;
  org_id?: string;
  org_member_id?: string;
}

/** Times a member was first seen at each Kafka hop, by memberKey (org:orgMemberId). */
export class HopTracker {
  readonly cdcTopicAt = new Map<string, number>();
  readonly augmentedAt = new Map<string, number>();
  decodeErrors = 0;
  private readonly consumer;

  constructor(
    kafka: Kafka,
    private readonly registry: Registry,
    private readonly topics: { member: string; augmented: string },
    groupId: string,
  ) {
    this.consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50, sessionTimeout: 30_000 });
  }

  /** Resolves once both topics are assigned and positioned at their current end: nothing later is missed. */
  async start(): Promise<void> {
    const c = this.consumer;
    await c.connect();
    await c.subscribe({ topics: [this.topics.member, this.topics.augmented], fromBeginning: false });
    const joined = new Promise<void>((resolve) => c.on(c.events.GROUP_JOIN, () => resolve()));
    const identity = (w: avro.Type): avro.Type => w;
    await c.run({
      eachMessage: async ({ topic, message }) => {
        const ts = Number(message.timestamp);
        if (topic === this.topics.augmented) {
          const key = message.key?.toString();
          if (key && !this.augmentedAt.has(key)) this.augmentedAt.set(key, ts);
          return;
        }
        if (!message.value) return;
        try {
          const change = await this.registry.decode<MemberChange>(message.value, identity);
          if (change.__op === 'c' && change.org_id && change.org_member_id) {
            const key = memberKey(change.org_id, change.org_member_id);
            if (!this.cdcTopicAt.has(key)) this.cdcTopicAt.set(key, ts);
          }
        } catch {
          this.decodeErrors++; // heartbeats and other tests' poison pills share the topic
        }
      },
    });
    await joined;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

/** When the sink wrote each member's audit row (audited_at is set by the database on insert). */
export async function auditTimes(pool: Pool, likePrefix: string): Promise<Map<string, number>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    "SELECT org_id, org_member_id, UNIX_TIMESTAMP(audited_at) * 1000 AS at FROM new_members_sent_to_salesforce WHERE org_id IN ('UA','AA') AND org_member_id LIKE ?",
    [`${likePrefix}%`],
  );
  return new Map(rows.map((r) => [memberKey(String(r['org_id']), String(r['org_member_id'])), Number(r['at'])]));
}

export interface HopRow {
  hop: string;
  summary: Summary;
}

export interface HopTable {
  rows: HopRow[];
  /** p50 of commit → member topic: the floor set by binlog + Debezium. */
  floorP50: number;
  /** End-to-end (commit → SFMC accepted) p50 divided by the floor. */
  endToEndOverFloor: number;
  /** Members with every hop observed / all members of the phase. */
  complete: number;
  total: number;
}

/** Pure: per-hop summaries from the times each member was seen at each hop. */
export function hopTable(
  members: BenchMember[],
  cdcTopicAt: Map<string, number>,
  augmentedAt: Map<string, number>,
  auditedAt: Map<string, number>,
): HopTable {
  const hops: [string, (m: BenchMember, k: string) => number | undefined][] = [
    ['commit → member topic', (m, k) => diff(cdcTopicAt.get(k), m.committedAt)],
    ['member topic → augmented topic', (_m, k) => diff(augmentedAt.get(k), cdcTopicAt.get(k))],
    ['augmented topic → SFMC accepted', (m, k) => diff(m.cdcAt, augmentedAt.get(k))],
    ['SFMC accepted → audit row', (m, k) => diff(auditedAt.get(k), m.cdcAt)],
    ['commit → SFMC accepted (end to end)', (m) => diff(m.cdcAt, m.committedAt)],
    ['commit → audit row', (m, k) => diff(auditedAt.get(k), m.committedAt)],
  ];
  const rows = hops.map(([hop, f]) => ({
    hop,
    summary: summarize(
      members.flatMap((m) => {
        const v = f(m, memberKey(m.orgId, m.orgMemberId));
        return v === undefined ? [] : [v];
      }),
    ),
  }));
  const complete = members.filter((m) => {
    const k = memberKey(m.orgId, m.orgMemberId);
    return cdcTopicAt.has(k) && augmentedAt.has(k) && m.cdcAt !== undefined && auditedAt.has(k);
  }).length;
  const floorP50 = rows[0]?.summary.p50 ?? NaN;
  const e2eP50 = rows[4]?.summary.p50 ?? NaN;
  return { rows, floorP50, endToEndOverFloor: e2eP50 / floorP50, complete, total: members.length };
}

function diff(later: number | undefined, earlier: number | undefined): number | undefined {
  return later === undefined || earlier === undefined ? undefined : later - earlier;
}
