/**
 * Issue 12, items 1-4 on the real stack: pre-existing members never welcomed (seed command,
 * then REPLACE INTO / delete + insert), the age guard, the send-rate breaker (a bulk load of
 * one organization held while another keeps flowing, then released with one command: one
 * Welcome each), and the reconciliation naming each cause, then re-driving the missing ones.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { GUARD_HEADERS } from '../../consumers/emailer/guards';
import { insertMembers, query, rootDb, waitBreakerWindowBelow, type MemberRow } from '../support/db';
import { ROOT, runId, stackEnv } from '../support/env';
import { TopicTap } from '../support/kafka';
import { waitPipelineIdle } from '../support/pipeline';
import { acceptedSends } from '../support/standins';
import { expectNoSecondWelcome, postsFor } from '../support/accounting';
import { waitFor } from '../support/wait';

jest.setTimeout(420_000);

const heldUa = (): number => Number(/^\s+UA\s+(\d+)/m.exec(tool('held', 'status'))?.[1] ?? 0);
const tool = (name: string, ...args: string[]): string =>
  execFileSync('node', [join(ROOT, 'dist/tools', `${name}.js`), ...args], { encoding: 'utf8', env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
const row = (org: string, id: string): MemberRow => ({ org_id: org, org_member_id: id, email: `${id}@example.com`, first_name: 'T' });

/** Restarts the emailer with another Welcome config (null: the one the suite runs with). */
function emailerWithOrgs(orgs: Record<string, unknown> | null): void {
  const env = { ...process.env };
  if (orgs) {
    const file = join(mkdtempSync(join(tmpdir(), 'orgs-')), 'welcome-orgs.json');
    writeFileSync(file, JSON.stringify(orgs));
    env.WELCOME_ORGS_FILE = file;
  } // null: the suite's own file (make test-stack: the unguarded one), as the emailer ran before
  execFileSync(join(ROOT, 'stack/bin/stack'), ['restart', 'emailer'], { env, stdio: 'ignore' });
}

interface Reconciled {
  missing: number;
  redriven: number;
  members: { org: string; orgMemberId: string; cause: string; detail: string }[];
}
function reconcile(...args: string[]): { code: number | null; result: Reconciled } {
  const since = new Date(Date.now() - 3 * 86_400_000).toISOString();
  const r = spawnSync('node', [join(ROOT, 'dist/tools/reconcile.js'), `--since=${since}`, '--grace-minutes=0', '--json', ...args], {
    encoding: 'utf8',
    env: process.env,
  });
  if (r.status !== 0 && r.status !== 3) throw new Error(`reconcile exited ${r.status}: ${r.stderr}`);
  return { code: r.status, result: JSON.parse(r.stdout) as Reconciled };
}

let db: Connection;
let skipped: TopicTap;
const defaults = JSON.parse(readFileSync(join(ROOT, 'config/welcome-orgs.json'), 'utf8')) as Record<string, object>;

beforeAll(async () => {
  db = await rootDb();
  skipped = await new TopicTap('welcome.skipped').start();
});
afterAll(async () => {
  emailerWithOrgs(null);
  await skipped.stop();
  await db.end();
});

const skipOf = (key: string): string | undefined =>
  skipped.records.find((r) => r.key?.toString() === key)?.headers[GUARD_HEADERS.skipReason]?.toString();

test('pre-existing members (seeded) get no Welcome when deleted and inserted again or REPLACEd; the seed is idempotent', async () => {
  const a = row('UA', `pre-a-${runId}`);
  const b = row('AA', `pre-b-${runId}`);
  await insertMembers(db, [a, b], { noBinlog: true }); // existed before the switch-on
  const first = tool('seed-preexisting');
  expect(first).toMatch(/done in [\d.]+ s: [1-9][\d,]* newly recorded/);
  expect(tool('seed-preexisting')).toMatch(/done in [\d.]+ s: 0 newly recorded/);

  const step = Date.now();
  await db.query('DELETE FROM members WHERE org_member_id = ?', [a.org_member_id]);
  await insertMembers(db, [a]);
  await db.query('REPLACE INTO members (org_id, org_member_id, email) VALUES (?, ?, ?)', [b.org_id, b.org_member_id, b.email]);
  const marker = row('UA', `pre-marker-${runId}`);
  await insertMembers(db, [marker]);
  await waitFor('the marker Welcome', async () => (await acceptedSends(marker.org_member_id)).length === 1, 60_000);
  await waitPipelineIdle();
  // Nothing reached SFMC for either: no POST at all, not merely no accepted send.
  expect(await postsFor([a.org_member_id, b.org_member_id], step)).toEqual([]);
  expect(await acceptedSends(`pre-a-${runId}`)).toHaveLength(0);
  expect(await acceptedSends(`pre-b-${runId}`)).toHaveLength(0);
  await waitFor('skip traces', async () => skipOf(`UA:${a.org_member_id}`) && skipOf(`AA:${b.org_member_id}`), 20_000);
  expect(skipOf(`UA:${a.org_member_id}`)).toBe('pre-existing');
  expect(skipOf(`AA:${b.org_member_id}`)).toBe('pre-existing');
});

test('least privilege: the emailer may read the pre-existing table, not write it', async () => {
  const { createConnection } = await import('mysql2/promise');
  const emailer = await createConnection({
    host: '127.0.0.1',
    port: stackEnv.dbPort,
    user: process.env.EMAILER_DB_USER ?? 'welcome_emailer',
    password: process.env.EMAILER_DB_PASSWORD ?? '',
    database: 'loyalty',
  });
  try {
    await expect(emailer.query('SELECT COUNT(*) FROM welcome_preexisting_members')).resolves.toBeDefined();
    await expect(emailer.query("INSERT INTO welcome_preexisting_members (org_id, org_member_id) VALUES ('UA', 'nope')")).rejects.toThrow(/denied/);
    await expect(emailer.query('SELECT COUNT(*) FROM members')).rejects.toThrow(/denied/);
  } finally {
    await emailer.end();
  }
});

test('age guard: a UA row created 2 days before its commit is skipped as too-old; AA (no maximum) is sent', async () => {
  const old = `aged-${runId}`;
  const oldAa = `aged-aa-${runId}`;
  await db.query(
    "INSERT INTO members (org_id, org_member_id, email, created_at) VALUES ('UA', ?, ?, NOW(3) - INTERVAL 2 DAY), ('AA', ?, ?, NOW(3) - INTERVAL 2 DAY)",
    [old, `${old}@example.com`, oldAa, `${oldAa}@example.com`],
  );
  await waitFor('AA Welcome', async () => (await acceptedSends(oldAa)).length === 1, 60_000);
  await waitPipelineIdle();
  expect(await acceptedSends(old)).toHaveLength(0);
  await waitFor('skip trace', async () => skipOf(`UA:${old}`), 20_000);
  expect(skipOf(`UA:${old}`)).toBe('too-old');
});

test('breaker: a bulk load of 2,000 UA rows sends 200 and holds the rest while AA keeps flowing; reconcile names every cause; release-held sends each held member once', async () => {
  const ceiling = 200;
  const BULK = 2000;
  const heldBefore = heldUa(); // an earlier run's, on a reused stack
  const attemptsFrom = Date.now();
  // The bulk is one INSERT (one transaction): the import guard is off here, so the breaker alone meets it.
  emailerWithOrgs({ ...defaults, UA: { ...defaults.UA, maxPerMinute: ceiling, maxPerTransaction: undefined } });
  await waitBreakerWindowBelow(db, 'UA', 1); // the window is shared and kept: an earlier test's UA members would use the allowance
  const bulk = Array.from({ length: BULK }, (_, i) => row('UA', `bulk-${runId}-${i}`));
  const flowing: string[] = [];
  let stop = false;
  const trickle = (async () => {
    for (let i = 0; !stop; i++) {
      const r = row('AA', `flow-${runId}-${i}`);
      await insertMembers(db, [r]);
      flowing.push(r.org_member_id);
      await new Promise((res) => setTimeout(res, 250));
    }
  })();
  const t0 = Date.now();
  await insertMembers(db, bulk);
  await waitFor(
    'the bulk to be processed',
    async () => {
      const text = await (await fetch(`${stackEnv.emailerMetrics}/metrics`)).text();
      // one series per guard (ceiling, import): their sum
      const held = [...text.matchAll(/welcome_held_total\{org="UA"[^}]*\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      return held >= BULK - ceiling;
    },
    180_000,
    1000,
  );
  const metrics = await (await fetch(`${stackEnv.emailerMetrics}/metrics`)).text();
  expect(metrics).toMatch(/welcome_breaker_open\{org="UA"[^}]*\} 1/);
  stop = true;
  await trickle;
  await waitPipelineIdle(120_000);
  const sentBulk = await acceptedSends(`bulk-${runId}-`);
  expect(sentBulk).toHaveLength(ceiling);
  // AA never waited on UA's breaker: every AA member of the same minutes got its Welcome.
  const sentFlow = await acceptedSends(`flow-${runId}-`);
  expect(flowing.length).toBeGreaterThan(5);
  expect(new Set(sentFlow.map((s) => s.attributes.MemberId))).toEqual(new Set(flowing));
  process.stdout.write(
    `breaker: bulk of ${BULK} processed in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${sentBulk.length} sent, ${BULK - sentBulk.length} held; ${sentFlow.length} AA sent meanwhile\n`,
  );
  expect(heldUa() - heldBefore).toBe(BULK - ceiling);

  // Reconciliation, with one member per cause made on purpose.
  const dead = row('QF', `rc-dead-${runId}`); // QF is not in the Welcome config: emailer DLQ
  const badEmail = { ...row('UA', `rc-badmail-${runId}`), email: 'not-an-address' }; // augmenter DLQ
  const disabled = row('DL', `rc-off-${runId}`);
  const lost = row('AA', `rc-lost-${runId}`); // its change event never reached the pipeline
  const unaudited = row('AA', `rc-unaudited-${runId}`); // welcomed, then its audit row is lost
  await insertMembers(db, [dead, badEmail, disabled, unaudited]);
  await insertMembers(db, [lost], { noBinlog: true });
  await waitFor(
    "the unaudited member's audit row",
    async () => (await query(db, 'SELECT 1 FROM new_members_sent_to_salesforce WHERE org_member_id = ?', [unaudited.org_member_id])).length === 1,
    60_000,
  );
  await waitPipelineIdle();
  await db.query('DELETE FROM new_members_sent_to_salesforce WHERE org_member_id = ?', [unaudited.org_member_id]);

  const t1 = Date.now();
  const { code, result } = reconcile();
  process.stdout.write(`reconcile: ${((Date.now() - t1) / 1000).toFixed(1)} s\n`);
  expect(code).toBe(3);
  const cause = (id: string) => result.members.find((m) => m.orgMemberId === id);
  expect(cause(dead.org_member_id)).toMatchObject({ cause: 'dead-lettered', detail: expect.stringMatching(/^emailer UNKNOWN_ORG/) });
  expect(cause(badEmail.org_member_id)).toMatchObject({ cause: 'dead-lettered', detail: expect.stringMatching(/^augmenter INVALID_EMAIL/) });
  expect(cause(disabled.org_member_id)).toMatchObject({ cause: 'skipped', detail: 'org-disabled' });
  expect(cause(`aged-${runId}`)).toMatchObject({ cause: 'skipped', detail: 'too-old' });
  expect(cause(`bulk-${runId}-${BULK - 1}`)).toMatchObject({ cause: 'held' });
  expect(result.members.filter((m) => m.orgMemberId.startsWith(`bulk-${runId}-`) && m.cause === 'held')).toHaveLength(BULK - ceiling);
  expect(cause(lost.org_member_id)).toMatchObject({ cause: 'missing' });
  expect(cause(unaudited.org_member_id)).toMatchObject({ cause: 'missing' });
  // Pre-existing members are not "without a Welcome": they never get one by design.
  expect(cause(`pre-a-${runId}`)).toBeUndefined();
  const prom = readFileSync(join(process.env.STATE_DIR ?? join(ROOT, '.state'), 'metrics', 'welcome_reconcile.prom'), 'utf8');
  expect(prom).toMatch(new RegExp(`welcome_reconcile_missing_members ${result.missing}\\n`));
  expect(prom).toMatch(/welcome_reconcile_members\{org="UA",cause="held"\} \d+/);

  // Release: every held member gets exactly one Welcome; a second release finds nothing.
  emailerWithOrgs(null);
  expect(tool('held', 'release', 'UA')).toMatch(new RegExp(`released ${heldBefore + BULK - ceiling} held Welcome\\(s\\) of UA`));
  expect(heldUa()).toBe(0);
  await waitFor('the released Welcomes', async () => (await acceptedSends(`bulk-${runId}-`)).length >= BULK, 240_000, 2000);
  expect(tool('held', 'release', 'UA')).toMatch(/released 0 held/);
  await waitPipelineIdle(120_000);
  const all = await acceptedSends(`bulk-${runId}-`);
  expect(all).toHaveLength(BULK);
  expect(new Set(all.map((s) => s.messageKey)).size).toBe(BULK);
  // Every POST that reached SFMC: each bulk member under one key, none re-POSTed (held, then released once).
  await expectNoSecondWelcome(`bulk-${runId}-`, attemptsFrom);

  // Redrive the missing: the lost member gets its Welcome, the unaudited one no second email.
  const redriven = reconcile('--redrive');
  expect(redriven.result.redriven).toBeGreaterThanOrEqual(2);
  await waitFor("the lost member's Welcome", async () => (await acceptedSends(lost.org_member_id)).length === 1, 60_000);
  await waitFor(
    "the unaudited member's audit row again",
    async () => (await query(db, 'SELECT 1 FROM new_members_sent_to_salesforce WHERE org_member_id = ?', [unaudited.org_member_id])).length === 1,
    60_000,
  );
  await waitPipelineIdle();
  expect(await acceptedSends(unaudited.org_member_id)).toHaveLength(1);
  // Its audit row was gone, so the already-sent guard could not stop the re-drive: one re-POST of
  // its key, absorbed by 109110 — the one resend this step explains; never a second key.
  await expectNoSecondWelcome(unaudited.org_member_id, attemptsFrom, 1);
  const after = reconcile();
  expect(after.result.members.find((m) => m.orgMemberId === lost.org_member_id)).toBeUndefined();
  expect(after.result.members.find((m) => m.orgMemberId === unaudited.org_member_id)).toBeUndefined();
  expect(after.result.members.filter((m) => m.orgMemberId.startsWith(`bulk-${runId}-`))).toHaveLength(0);
});
