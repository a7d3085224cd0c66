/**
 * Issue 20, item 3: the mass-email guard as shipped (config/welcome-orgs.json, unchanged). An
 * import of 30 AA rows in one transaction sends the first maxPerTransaction (10) and holds the
 * rest; one-row AA signups committed right after it are welcomed, not held; `make release-held`
 * sends the held ones, each once. (AA, not UA: the UA breaker tests need UA's window empty.)
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { GUARD_HEADERS } from '../../consumers/emailer/guards';
import { insertMembers, rootDb, waitBreakerWindowBelow, type MemberRow } from '../support/db';
import { ROOT, runId } from '../support/env';
import { TopicTap } from '../support/kafka';
import { waitPipelineIdle } from '../support/pipeline';
import { acceptedSends } from '../support/standins';
import { waitFor } from '../support/wait';

jest.setTimeout(240_000);

const SHIPPED = join(ROOT, 'config/welcome-orgs.json');
function emailerWith(file: string | undefined): void {
  const env = { ...process.env };
  if (file) env.WELCOME_ORGS_FILE = file;
  else delete env.WELCOME_ORGS_FILE;
  execFileSync(join(ROOT, 'stack/bin/stack'), ['restart', 'emailer'], { env, stdio: 'ignore' });
}
const row = (org: string, id: string): MemberRow => ({ org_id: org, org_member_id: id, email: `${id}@example.com`, first_name: 'I' });

let db: Connection;
let held: TopicTap;
beforeAll(async () => {
  db = await rootDb();
  held = await new TopicTap('welcome.held').start();
  emailerWith(SHIPPED);
});
afterAll(async () => {
  emailerWith(process.env.WELCOME_ORGS_FILE);
  await held.stop();
  await db.end();
});

test('shipped guard: an import of 30 AA rows in one transaction sends 10 and holds 20; one-row signups beside it are sent; a release sends each held member once', async () => {
  const imp = `impg-${runId}-`;
  const one = `oneg-${runId}-`;
  // The 13 need AA's allowance (300/min): an earlier test's AA members may still fill the window.
  await waitBreakerWindowBelow(db, 'AA', 287);
  await insertMembers(
    db,
    Array.from({ length: 30 }, (_, i) => row('AA', `${imp}${String(i).padStart(2, '0')}`)),
  );
  for (let i = 0; i < 3; i++) await insertMembers(db, [row('AA', `${one}${i}`)]);

  await waitFor(
    'the signups and the first rows of the import',
    async () => (await acceptedSends(one)).length === 3 && (await acceptedSends(imp)).length === 10,
    90_000,
    500,
  );
  const heldImport = (): TopicTap['records'] => held.records.filter((r) => r.key?.toString().startsWith(`AA:${imp}`));
  await waitFor('20 held', async () => heldImport().length === 20, 60_000, 500);
  await waitPipelineIdle();
  expect((await acceptedSends(imp)).map((s) => String(s.attributes.MemberId)).sort()).toEqual(
    Array.from({ length: 10 }, (_, i) => `${imp}${String(i).padStart(2, '0')}`),
  );
  expect(new Set(heldImport().map((r) => r.headers[GUARD_HEADERS.heldGuard]?.toString()))).toEqual(new Set(['import']));
  expect(held.records.filter((r) => r.key?.toString().startsWith(`AA:${one}`))).toHaveLength(0);

  const out = execFileSync('node', [join(ROOT, 'dist/tools/held.js'), 'release', 'AA'], { encoding: 'utf8', env: process.env });
  expect(out).toMatch(/released \d+ held Welcome/);
  await waitFor('the released Welcomes', async () => (await acceptedSends(imp)).length === 30, 90_000, 500);
  await waitPipelineIdle();
  const sent = await acceptedSends(imp);
  expect(new Set(sent.map((s) => s.messageKey)).size).toBe(30);
  expect(sent).toHaveLength(30);
});
