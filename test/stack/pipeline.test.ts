/**
 * Issue 3: on the real stack, every new member gets exactly one Welcome; nobody else gets one.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { insertMembers, query, rootDb, type MemberRow } from '../support/db';
import { runId } from '../support/env';
import { caughtUp, waitPipelineIdle, stack, pidOf } from '../support/pipeline';
import { acceptedSends, subscriberKey } from '../support/standins';
import { waitFor } from '../support/wait';
import { stackEnv } from '../support/env';
import { accountLine, attemptsOf, expectNoSecondWelcome, sendAttempts } from '../support/accounting';
import { asMemberChange, readRange, startOffsets } from '../faults/topics';

jest.setTimeout(180_000);

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
});
afterAll(async () => {
  await db.end();
});

const members = (prefix: string, n: number, org: (i: number) => string = (i) => (i % 2 === 0 ? 'UA' : 'AA')): MemberRow[] =>
  Array.from({ length: n }, (_, i) => ({
    org_id: org(i),
    org_member_id: `${prefix}${String(i).padStart(5, '0')}`,
    email: `${prefix}${i}@example.com`,
    first_name: i % 3 === 0 ? null : `First${i}`,
    last_name: `Last${i}`,
    locale: i % 2 === 0 ? 'en-US' : 'fr-FR',
  }));

async function auditRows(prefix: string): Promise<RowDataPacket[]> {
  return query<RowDataPacket>(db, 'SELECT * FROM new_members_sent_to_salesforce WHERE org_member_id LIKE ?', [`${prefix}%`]);
}

async function insertInTransactions(rows: MemberRow[], perTransaction: number, between?: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < rows.length; i += perTransaction) {
    await insertMembers(db, rows.slice(i, i + perTransaction));
    await between?.(i / perTransaction);
  }
}

test('N new members in two organizations → exactly N Welcomes, each right, and exactly N audit rows', async () => {
  const prefix = `n-${runId}-`;
  const rows = members(prefix, 200);
  const t0 = Date.now();
  await insertInTransactions(rows, 20);
  const sends = await waitFor(
    '200 accepted sends',
    async () => {
      const s = await acceptedSends(prefix);
      return s.length >= 200 ? s : undefined;
    },
    60_000,
  );
  expect(sends).toHaveLength(200);
  expect(new Set(sends.map((s) => s.messageKey)).size).toBe(200);

  const byKey = new Map(sends.map((s) => [s.messageKey, s]));
  for (const row of rows) {
    const send = byKey.get(welcomeMessageKey(row.org_id, row.org_member_id));
    expect(send).toBeDefined();
    expect(send!.contactKey).toBe(await subscriberKey(row.org_id, row.org_member_id));
    expect(send!.to).toBe(row.email);
    expect(send!.definitionKey).toBe(row.org_id === 'UA' ? 'welcome-ua' : 'welcome-aa');
    expect(send!.attributes).toEqual({
      FirstName: row.first_name ?? null,
      LastName: row.last_name,
      Locale: row.locale,
      ProgramId: row.org_id,
      MemberId: row.org_member_id,
    });
  }

  const audit = await waitFor(
    '200 audit rows',
    async () => {
      const r = await auditRows(prefix);
      return r.length >= 200 ? r : undefined;
    },
    30_000,
  );
  expect(audit).toHaveLength(200);
  for (const row of audit) {
    expect(row.message_key).toBe(welcomeMessageKey(row.org_id, row.org_member_id));
    expect(row.subscriber_key).toBe(byKey.get(row.message_key)!.contactKey);
    expect(row.definition_key).toBe(row.org_id === 'UA' ? 'welcome-ua' : 'welcome-aa');
    expect(row.sent_at).toBeInstanceOf(Date);
  }

  // Offsets: both groups committed last + 1 on every partition, so a restart replays nothing.
  await waitPipelineIdle();
  expect(await caughtUp('welcome-augmenter', stackEnv.memberTopic)).toBe(true);
  expect(await caughtUp('welcome-emailer', stackEnv.augmentedTopic)).toBe(true);
  // Every POST that reached SFMC: 200 keys, one POST each, no member or address under a second key.
  const posted = await expectNoSecondWelcome(prefix, t0);
  expect({ posts: posted.posts, keys: posted.keys }).toEqual({ posts: 200, keys: 200 });
});

test('pre-existing members, updates (email change included), deletes and switched-off organizations get no Welcome', async () => {
  const prefix = `none-${runId}-`;
  const t0 = Date.now();
  const from = await startOffsets(stackEnv.memberTopic);
  // Written with the binlog off for this session: to CDC these rows existed before it started.
  await insertMembers(db, members(`${prefix}pre-`, 10), { noBinlog: true });
  await insertMembers(db, members(`${prefix}pre2-`, 5), { noBinlog: true });
  await db.query("UPDATE members SET email = CONCAT('changed.', email) WHERE org_member_id LIKE ?", [`${prefix}pre%`]);
  await db.query("UPDATE members SET first_name = 'Renamed' WHERE org_member_id LIKE ?", [`${prefix}pre-%`]);
  await db.query('DELETE FROM members WHERE org_member_id LIKE ?', [`${prefix}pre2-%`]);
  await insertMembers(
    db,
    members(`${prefix}off-`, 4, () => 'DL'),
  );

  // A new member written after all of the above: once it is sent and both groups have no lag,
  // everything before it has been through the pipeline.
  const marker = members(`${prefix}marker-`, 1, () => 'UA');
  await insertMembers(db, marker);
  await waitFor('the marker Welcome', async () => (await acceptedSends(`${prefix}marker-`)).length === 1, 60_000);
  await waitPipelineIdle();
  // What reached the member topic: the updates, deletes and switched-off creates did (so the
  // augmenter and emailer met them and chose to send nothing), and no create for a pre-existing row.
  const ops = new Map<string, number>();
  for (const r of await readRange(stackEnv.memberTopic, from)) {
    const m = await asMemberChange(r.value);
    if (!m?.org_member_id?.startsWith(prefix) || !m.__op) continue;
    const kind = `${m.org_member_id.slice(prefix.length).replace(/-\d+$/, '')}:${m.__op}`;
    ops.set(kind, (ops.get(kind) ?? 0) + 1);
  }
  expect(Object.fromEntries(ops)).toEqual({ 'pre:u': 20, 'pre2:u': 5, 'pre2:d': 5, 'off:c': 4, 'marker:c': 1 });
  // What reached SFMC: nothing for any of them (not merely nothing accepted), the marker once.
  const posts = attemptsOf(await sendAttempts(t0), prefix);
  expect(posts.filter((p) => !p.memberId?.startsWith(`${prefix}marker-`))).toEqual([]);
  expect(await acceptedSends(`${prefix}pre`)).toHaveLength(0);
  expect(await acceptedSends(`${prefix}off-`)).toHaveLength(0);
  expect(await acceptedSends(prefix)).toHaveLength(1);
  const posted = await expectNoSecondWelcome(prefix, t0);
  expect(posted.posts).toBe(1);
});

test('restarting the augmenter (SIGTERM) and killing the emailer (kill -9) mid-stream → still exactly N Welcomes', async () => {
  const prefix = `rs-${runId}-`;
  const rows = members(prefix, 300);
  const t0 = Date.now();
  await insertInTransactions(rows, 10, async (i) => {
    if (i === 8) stack('restart', 'augmenter');
    if (i === 18) {
      process.kill(pidOf('emailer'), 'SIGKILL');
      stack('up', 'emailer');
    }
  });
  const sends = await waitFor(
    '300 accepted sends',
    async () => {
      const s = await acceptedSends(prefix);
      return s.length >= 300 ? s : undefined;
    },
    120_000,
  );
  await waitPipelineIdle(90_000);
  const final = await acceptedSends(prefix);
  expect(final).toHaveLength(300);
  expect(new Set(final.map((s) => s.messageKey)).size).toBe(300);
  expect(sends.map((s) => s.messageKey).sort()).toEqual(rows.map((r) => welcomeMessageKey(r.org_id, r.org_member_id)).sort());
  const audit = await waitFor(
    '300 audit rows',
    async () => {
      const r = await auditRows(prefix);
      return r.length >= 300 ? r : undefined;
    },
    30_000,
  );
  expect(audit).toHaveLength(300);
  // Resends after the kill are possible (at-least-once delivery); SFMC turns them into 109110,
  // which is why the counts above are exact and not "at least". Counted at SFMC, POST by POST:
  // no member under a second key; the kill explains at most one re-POST per member (the chunk
  // it had sent but not committed, read again once), none after that.
  const posted = await expectNoSecondWelcome(prefix, t0, rows.length);
  expect(posted.mostPostsOfOneKey).toBeLessThanOrEqual(2);
  process.stdout.write(`pipeline kill -9 emailer: ${accountLine(posted)}\n`);
});
