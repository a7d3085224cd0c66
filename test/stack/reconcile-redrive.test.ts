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
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
});
afterAll(async () => {
  await db.end();
});

test('a missed UA member created 2 days ago (UA maxAgeSeconds: 1 day) is welcomed once by a re-drive', async () => {
  const id = `redrive-old-${runId}`;
  // Its INSERT never reached the binlog (as if the event was lost); created 2 days ago.
  await insertMembers(db, [{ org_id: 'UA', org_member_id: id, email: `${id}@example.com` }], { noBinlog: true });
  await db.query('SET SESSION sql_log_bin = 0');
  await db.query('UPDATE members SET created_at = NOW(3) - INTERVAL 2 DAY WHERE org_member_id = ?', [id]);
  await db.query('SET SESSION sql_log_bin = 1');

  const since = new Date(Date.now() - 3 * 86_400_000).toISOString();
  const r = spawnSync('node', [join(ROOT, 'dist/tools/reconcile.js'), `--since=${since}`, '--grace-minutes=0', '--json', '--redrive'], {
    encoding: 'utf8',
    env: process.env,
  });
  expect(r.status).toBe(0);
  const report = JSON.parse(r.stdout) as { redriven: number; members: { orgMemberId: string; cause: string }[] };
  expect(report.members.find((m) => m.orgMemberId === id)).toMatchObject({ cause: 'missing' });
  expect(report.redriven).toBeGreaterThanOrEqual(1);

  await waitFor("the re-driven member's Welcome", async () => (await acceptedSends(id)).length === 1, 90_000, 1000);
  expect(await acceptedSends(id)).toHaveLength(1);
});
