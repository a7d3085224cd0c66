/**
 * Welcomes the send-rate breaker held (welcome.held), for operators.
 *   node dist/tools/held.js status        held and not yet released, per organization
 *   node dist/tools/held.js release ORG   re-drive ORG's held Welcomes (make release-held ORG=UA)
 *
 * Release puts each held record — original key, value and headers — back on the augmented
 * topic with `welcome.released: true`, which the breaker and the import guard let through;
 * everything else in the emailer still applies (audit table, pre-existing, age guard, SFMC's
 * messageKey dedup), so a record released twice still gets one Welcome. Each organization's
 * release records how far it got on a compacted topic kept forever (welcome.held.release-positions,
 * key ORG:<held topic>:<partition>), after the records before it were acknowledged: a release
 * resumes where the last one stopped, however long ago, and another organization's held
 * records stay held. (A consumer group's offsets would be dropped after about 7 idle days, and
 * every Welcome ever released would count as held again.)
 * A forgotten member's held records (make forget) are never released: passed over, the
 * position recorded past them like any other (docs/member-data.md).
 */
import type { IHeaders } from 'kafkajs';
import { GUARD_HEADERS } from '../consumers/emailer/guards';
import { ORG_ID } from '../consumers/shared/member';
import { header, kafka, readToEnd } from './topic-read';
import { createProducer, produceAll, type OutgoingRecord } from '../consumers/shared/kafka';
import { ensurePositionsTopic, readPositions, recordPosition } from './replay-positions';
import { forgottenCheck } from './forgotten-db';

const env = process.env;
const HELD = env.HELD_TOPIC ?? 'welcome.held';
const AUGMENTED = env.AUGMENTED_TOPIC ?? 'welcome.members.augmented';
const out = (line: string): void => void process.stdout.write(`${line}\n`);
const POSITIONS_TOPIC = env.HELD_RELEASE_POSITIONS_TOPIC ?? 'welcome.held.release-positions';
/** Releases before the positions topic kept their place in this group: taken over once. */
const legacyGroup = (org: string): { groupId: string; topic: string } => ({ groupId: `welcome-held-release-${org}`, topic: HELD });
const scope = (org: string): string => `${org}:${HELD}`;
/** Held records are re-produced in batches of this many, then the position after them is recorded. */
const BATCH = 500;

/** Held records per organization that no release has passed yet. */
export async function heldPending(): Promise<Map<string, { count: number; members: Set<string>; byGuard: Map<string, number> }>> {
  const byOrg = new Map<string, { count: number; members: Set<string>; byGuard: Map<string, number> }>();
  const releasedUpTo = new Map<string, Map<number, bigint>>();
  const records: { org: string; partition: number; offset: bigint; key: string; guard: string }[] = [];
  await readToEnd(HELD, (m, partition) => {
    records.push({
      org: header(m.headers, GUARD_HEADERS.org) ?? '?',
      partition,
      offset: BigInt(m.offset),
      key: m.key?.toString() ?? '',
      // held before the import guard existed: the breaker's
      guard: header(m.headers, GUARD_HEADERS.heldGuard) ?? 'ceiling',
    });
  });
  for (const org of new Set(records.map((r) => r.org))) releasedUpTo.set(org, await readPositions(POSITIONS_TOPIC, scope(org), legacyGroup(org)));
  for (const r of records) {
    if (r.offset < (releasedUpTo.get(r.org)?.get(r.partition) ?? 0n)) continue;
    const e = byOrg.get(r.org) ?? { count: 0, members: new Set<string>(), byGuard: new Map<string, number>() };
    e.count++;
    e.members.add(r.key);
    e.byGuard.set(r.guard, (e.byGuard.get(r.guard) ?? 0) + 1);
    byOrg.set(r.org, e);
  }
  return byOrg;
}

async function status(): Promise<void> {
  const pending = await heldPending();
  if (pending.size === 0) return out(`nothing held on ${HELD}`);
  out(`  ${'ORG'.padEnd(8)} ${'HELD'.padStart(8)} ${'IMPORT'.padStart(8)} ${'CEILING'.padStart(8)}  release with`);
  for (const [org, e] of [...pending].sort()) {
    const n = (guard: string): string => String(e.byGuard.get(guard) ?? 0).padStart(8);
    out(`  ${org.padEnd(8)} ${String(e.count).padStart(8)} ${n('import')} ${n('ceiling')}  make release-held ORG=${org}`);
  }
}

async function release(org: string | undefined): Promise<void> {
  if (!org || !ORG_ID.test(org)) throw new Error('usage: held release ORG (e.g. make release-held ORG=UA)');
  await ensurePositionsTopic(POSITIONS_TOPIC);
  const isForgotten = await forgottenCheck();
  let forgotten = 0;
  const producer = createProducer(kafka);
  await producer.connect();
  let released = 0;
  let batch: OutgoingRecord[] = [];
  const after = new Map<number, bigint>();
  // Acknowledged before the position after them is recorded: a crash re-releases (harmless), never drops.
  const flush = async (): Promise<void> => {
    if (batch.length > 0) await produceAll(producer, batch);
    released += batch.length;
    batch = [];
    for (const [partition, next] of after) await recordPosition(producer, POSITIONS_TOPIC, scope(org), partition, next);
    after.clear();
    if (released > 0 && released % 1000 === 0) out(`  ... ${released} released`);
  };
  try {
    const read = await readToEnd(
      HELD,
      async (m, partition) => {
        after.set(partition, BigInt(m.offset) + 1n);
        const ours = header(m.headers, GUARD_HEADERS.org) === org;
        if (ours && isForgotten(m.key)) forgotten++;
        else if (ours) {
          const headers = Object.fromEntries(Object.entries(m.headers ?? {}).filter(([, v]) => v !== null && v !== undefined)) as IHeaders;
          batch.push({
            topic: AUGMENTED,
            key: m.key,
            value: m.value,
            headers: { ...headers, [GUARD_HEADERS.released]: 'true', 'welcome.released.at': new Date().toISOString() },
          });
        }
        if (batch.length >= BATCH) await flush();
      },
      {
        from: async (lows) => {
          const stored = await readPositions(POSITIONS_TOPIC, scope(org), legacyGroup(org));
          return new Map([...lows].map(([p, low]) => [p, stored.get(p) ?? low]));
        },
        progress: (d, t) => out(`  ... ${d}/${t} held records read`),
      },
    );
    await flush();
    out(
      `released ${released} held Welcome(s) of ${org} to ${AUGMENTED} (${read} held record(s) read${read ? '' : ': nothing new since the last release'}${forgotten ? `; ${forgotten} of forgotten members passed over` : ''})`,
    );
  } finally {
    await producer.disconnect();
  }
}

if (require.main === module) {
  const [command, arg] = process.argv.slice(2);
  (command === 'release'
    ? release(arg)
    : command === 'status' || command === undefined
      ? status()
      : Promise.reject(new Error('usage: held status | held release ORG'))
  )
    .then(() => process.exit(0))
    .catch((err: unknown) => {
      process.stderr.write(`held: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
