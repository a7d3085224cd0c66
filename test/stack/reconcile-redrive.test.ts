/**
 * Issue 20, item 7: `make reconcile ARGS=--redrive` re-drives a member whose change event never
 * reached the pipeline. Stamped with the time of the re-drive, a member older than its
 * organization's maxAgeSeconds was judged too old by the age guard and could never be
 * recovered. A re-drive carries the row's own created_at as its commit time: the member was
 * missed, not restored (docs/operations.md, "Reconciliation").
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { insertMembers, rootDb } from '../support/db';
import { ROOT, runId } from '../support/env';
import { acceptedSends } from '../support/standins';
import { expectNoSecondWelcome, postsFor } from '../support/accounting';
import { query } from '../support/db';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
});
afterAll(async () => {
  await db.end();
});

test('a missed UA member created 2 days ago (UA maxAgeSeconds: 1 day) is welcomed once by a re-drive; a member already welcomed gets no POST', async () => {
  const id = `redrive-old-${runId}`;
  const t0 = Date.now();
  // A member welcomed the normal way, its audit row written: the re-drive must leave it alone.
  const welcomed = `redrive-welcomed-${runId}`;
  await insertMembers(db, [{ org_id: 'AA', org_member_id: welcomed, email: `${welcomed}@example.com` }]);
  await waitFor(
    'the welcomed member and its audit row',
    async () => {
      const sent = (await acceptedSends(welcomed)).length === 1;
      return sent && (await query(db, 'SELECT 1 FROM new_members_sent_to_salesforce WHERE org_member_id = ?', [welcomed])).length === 1;
    },
    60_000,
  );
  // Its INSERT never reached the binlog (as if the event was lost); created 2 days ago.
  await insertMembers(db, [{ org_id: 'UA', org_member_id: id, email: `${id}@example.com` }], { noBinlog: true });
  await db.query('SET SESSION sql_log_bin = 0');
  await db.query('UPDATE members SET created_at = NOW(3) - INTERVAL 2 DAY WHERE org_member_id = ?', [id]);
  await db.query('SET SESSION sql_log_bin = 1');

  const since = new Date(Date.now() - 3 * 86_400_000).toISOString();
  const step = Date.now();
  const r = spawnSync('node', [join(ROOT, 'dist/tools/reconcile.js'), `--since=${since}`, '--grace-minutes=0', '--json', '--redrive'], {
    encoding: 'utf8',
    env: process.env,
  });
  expect(r.status).toBe(0);
  const report = JSON.parse(r.stdout) as { redriven: number; members: { orgMemberId: string; cause: string }[] };
  expect(report.members.find((m) => m.orgMemberId === id)).toMatchObject({ cause: 'missing' });
  expect(report.redriven).toBeGreaterThanOrEqual(1);
  expect(report.members.find((m) => m.orgMemberId === welcomed)).toBeUndefined(); // welcomed: not re-driven

  await waitFor("the re-driven member's Welcome", async () => (await acceptedSends(id)).length === 1, 90_000, 1000);
  expect(await acceptedSends(id)).toHaveLength(1);
  // What reached SFMC after the re-drive: the missed member's one POST, none for the welcomed one.
  expect((await postsFor([id], step)).map((a) => a.outcome)).toEqual(['accepted']);
  expect(await postsFor([welcomed], step)).toEqual([]);
  await expectNoSecondWelcome(`redrive-`, t0);
});
