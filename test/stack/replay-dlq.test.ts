/**
 * Issue 4: a dead letter is re-driven through the stage it failed in once the cause is
 * fixed, idempotently — replaying again sends nothing twice. Issue 12: a send definition SFMC
 * refuses holds the Welcome instead of dead-lettering it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { DLQ_HEADERS } from '../../consumers/shared/stage';
import { insertMembers, rootDb } from '../support/db';
import { ROOT, runId, stackEnv } from '../support/env';
import { produceRaw, TopicTap } from '../support/kafka';
import { waitPipelineIdle } from '../support/pipeline';
import { acceptedSends } from '../support/standins';
import { expectNoSecondWelcome, metricValue, postsFor } from '../support/accounting';
import { waitFor } from '../support/wait';

jest.setTimeout(240_000);

const replay = (stage: string): string =>
  execFileSync('node', [join(ROOT, 'dist/tools/dlq.js'), 'replay', stage], { encoding: 'utf8', env: process.env });

/** Restarts the emailer with another Welcome config (as an operator editing the file would). */
function emailerWithOrgs(orgs: Record<string, { definitionKey: string; enabled: boolean }> | null): void {
  const env = { ...process.env };
  if (orgs) {
    const file = join(mkdtempSync(join(tmpdir(), 'orgs-')), 'welcome-orgs.json');
    writeFileSync(file, JSON.stringify(orgs));
    env.WELCOME_ORGS_FILE = file;
  } // null: the suite's own file (make test-stack: the unguarded one), as the emailer ran before
  execFileSync(join(ROOT, 'stack/bin/stack'), ['restart', 'emailer'], { env, stdio: 'ignore' });
}

let db: Connection;
let dlq: TopicTap;
beforeAll(async () => {
  db = await rootDb();
  dlq = await new TopicTap(stackEnv.emailerDlq).start();
});
afterAll(async () => {
  emailerWithOrgs(null);
  await dlq.stop();
  await db.end();
});

test('unknown organization → DLQ; wrong template → held (not dead-lettered, alert raised); fixed config → exactly one Welcome; replay again → nothing new', async () => {
  const defaults = JSON.parse(readFileSync(join(ROOT, 'config/welcome-orgs.json'), 'utf8')) as Record<
    string,
    { definitionKey: string; enabled: boolean }
  >;
  replay('emailer'); // start from a clean slate: earlier dead letters are not this test's
  const id = `replay-${runId}`;
  const t0 = Date.now();
  await insertMembers(db, [{ org_id: 'QF', org_member_id: id, email: `${id}@example.com` }]);
  const mine = (code: string) => dlq.records.find((r) => r.value?.includes(Buffer.from(id)) && r.headers[DLQ_HEADERS.errorCode]?.toString() === code);
  const first = await waitFor('UNKNOWN_ORG dead letter', async () => mine('UNKNOWN_ORG'), 60_000);
  expect(first.headers[DLQ_HEADERS.attempts]?.toString()).toBe('1');

  // The operator adds QF, but with a template SFMC does not have: a setup error, so the
  // emailer holds the Welcome (partition paused, retried) and raises the alert gauge,
  // instead of dead-lettering it (issue 12).
  emailerWithOrgs({ ...defaults, QF: { definitionKey: 'welcome-qf-missing', enabled: true } });
  expect(replay('emailer')).toMatch(/replayed \d+ record\(s\)/);
  const refused = async (): Promise<boolean> =>
    /welcome_sfmc_definition_refused\{[^}]*org="QF"[^}]*\} 1/.test(await (await fetch(`${stackEnv.emailerMetrics}/metrics`)).text());
  await waitFor('the definition-refused alert gauge for QF', refused, 60_000);
  expect(mine('SFMC_109111')).toBeUndefined();
  expect(await acceptedSends(id)).toHaveLength(0);

  // Fixed: QF uses an existing template. The held record goes through by itself: no replay.
  emailerWithOrgs({ ...defaults, QF: { definitionKey: 'welcome-aa', enabled: true } });
  await waitFor('the Welcome', async () => (await acceptedSends(id)).length === 1, 60_000);
  await waitFor(
    'the audit row',
    async () => {
      const [rows] = await db.query<RowDataPacket[]>('SELECT 1 FROM new_members_sent_to_salesforce WHERE org_member_id = ?', [id]);
      return rows.length === 1;
    },
    30_000,
  );
  expect(await refused()).toBe(false);
  expect(dlq.records.filter((r) => r.value?.includes(Buffer.from(id)))).toHaveLength(1); // only the UNKNOWN_ORG one

  // Replaying again finds nothing new; re-driving the very same record by hand is skipped as
  // already sent. Shown by what reaches SFMC — no POST at all for the welcomed member after the
  // step (a re-POST would be absorbed by 109110 inside SFMC's window, a second email after it) —
  // and by the emailer's own already-sent count rising (a difference: earlier skips in this
  // process do not count). Other dead letters may have arrived meanwhile; this member is what matters.
  const step = Date.now();
  const skippedBefore = await metricValue(stackEnv.emailerMetrics, 'welcome_records_skipped_total', 'reason="already-sent"');
  expect(replay('emailer')).toMatch(/replayed \d+ record\(s\)/);
  // The dead letter as `dlq replay` puts it back: key, value and its dlq.* headers, byte for byte.
  await produceRaw(stackEnv.augmentedTopic, [{ key: `QF:${id}`, value: first.value, headers: first.headers }]);
  await waitFor(
    'the re-driven record skipped as already sent',
    async () => (await metricValue(stackEnv.emailerMetrics, 'welcome_records_skipped_total', 'reason="already-sent"')) > skippedBefore,
    60_000,
  );
  await waitPipelineIdle();
  expect(await postsFor([id], step)).toEqual([]);
  expect(await acceptedSends(id)).toHaveLength(1);
  await expectNoSecondWelcome(id, t0);
});
