/**
 * `make forget MEMBER=<org>/<id>`: an erasure request for one member (docs/member-data.md).
 * Records it as a keyed hash, so nothing re-sends it or re-creates its rows, then deletes its
 * rows from the tables we own (forget-member.ts). Prints the hash's start, never the address.
 * Settings: FORGET_DB_USER / FORGET_DB_PASSWORD(_FILE), WELCOME_FORGET_KEY(_FILE), DB_HOST,
 * DB_PORT, DB_SSL_CA_FILE, Kafka's settings like the other tools; FORGET_SETTLE_MS (default
 * CHUNK_BUDGET_MS + 1 s: the emailer's longest attempt), FORGET_CATCH_UP_MS (default 60 s: how long
 * it waits for the sinks and the delivery-status stage to catch up). Exit 4: one of them stayed
 * behind; the rows are deleted, but run it again once that reader caught up (make status).
 */
import { int } from '../consumers/shared/env';
import { forgottenTrace, memberHash } from '../consumers/shared/forgotten';
import { isValidOrgMemberId, ORG_ID } from '../consumers/shared/member';
import { forgetDb, forgetKey } from './forgotten-db';
import { forgetMember, OWNED_TABLES } from './forget-member';
import { waitRowWriters } from './forget-lag';

const out = (line: string): void => void process.stdout.write(`${line}\n`);

export function parseMember(arg: string | undefined): { orgId: string; orgMemberId: string } {
  const slash = arg?.indexOf('/') ?? -1;
  const orgId = arg?.slice(0, slash) ?? '';
  const orgMemberId = arg?.slice(slash + 1) ?? '';
  if (slash < 0 || !ORG_ID.test(orgId) || !isValidOrgMemberId(orgMemberId))
    throw new Error('usage: forget ORG/MEMBER_ID (e.g. make forget MEMBER=UA/12345678)');
  return { orgId, orgMemberId };
}

async function main(): Promise<void> {
  const member = parseMember(process.argv[2]);
  const hash = memberHash(forgetKey(), member.orgId, member.orgMemberId);
  const settleMs = int(process.env, 'FORGET_SETTLE_MS', int(process.env, 'CHUNK_BUDGET_MS', 4_000) + 1_000, 0, 600_000);
  const catchUpMs = int(process.env, 'FORGET_CATCH_UP_MS', 60_000, 0, 3_600_000);
  const db = await forgetDb();
  try {
    out(
      `forgetting ${forgottenTrace(hash)}: no Welcome from now on; deleting its rows once any send under way has ended (${settleMs} ms) and the sinks have caught up`,
    );
    const { firstTime, deleted, behind } = await forgetMember(db, { ...member, hash }, { settleMs, rowWriters: () => waitRowWriters(catchUpMs) });
    out(`${firstTime ? 'recorded' : 'already recorded (forgotten before)'} in welcome_forgotten as ${forgottenTrace(hash)}`);
    for (const table of OWNED_TABLES) out(`  ${table.padEnd(32)} ${deleted[table]} row(s) deleted`);
    out('left to their own lifetime (docs/member-data.md): the 7-day topics, the dead-letter and held topics (never re-sent:');
    out("replay and release skip it), the company's members table and warehouse, SFMC's own send logs and contacts");
    if (behind.length > 0) {
      out(`behind after ${catchUpMs} ms: ${behind.map((w) => `${w.group} on ${w.topic}`).join(', ')}; it may still write one of`);
      out('its rows: run make forget again for this member once make status shows it caught up');
      process.exitCode = 4;
    }
  } finally {
    await db.end();
  }
}

if (require.main === module) {
  main()
    .then(() => process.exit(process.exitCode ?? 0))
    .catch((err: unknown) => {
      process.stderr.write(`forget: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
