/**
 * One fault scenario on the real stack: a steady stream of signups, a fault injected at about
 * a quarter of the stream, recovery (as a supervisor would do it), then a member-by-member
 * account of where every signup ended up:
 *   sent          the SFMC stand-in accepted exactly one send with the member's messageKey
 *   skipped       the member's organization is switched off (DL): no send, no dead letter
 *   dead-lettered a DLQ record (augmenter, emailer or the audit sink) about the member
 *   lost          none of the above
 * and the audit table must hold one row per sent member. Duplicates are counted on every POST
 * that reached the SFMC stand-in (test/support/accounting.ts), not on its accepted-sends list,
 * which keeps one send per messageKey: a member POSTed under two messageKeys, or an address
 * given two, fails the scenario; re-POSTs of one key answered 109110 are a figure bounded by
 * what the scenario's fault explains (`maxAbsorbed`). Each scenario also shows its fault was
 * met, by the stand-ins' and the stack's counters before and after it (`faultMet`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { memberKey } from '../../consumers/shared/member';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { insertMembers, query, rootDb, type MemberRow } from '../support/db';
import { runId, STATE_DIR, stackEnv } from '../support/env';
import { committedOffsets, endOffsets } from '../support/kafka';
import { acceptedSends, type AcceptedSend } from '../support/standins';
import { account, counterDiff, dwCounters, sendAttempts, sfmcCounters } from '../support/accounting';
import { waitFor } from '../support/wait';
import { alive, bringUp, kill9, recordedPid, restoreStack, SERVICES, superviseOnce, watchdogRestarts, type Service } from './stack-control';
import { asAugmented, asMemberChange, header, readRange, startOffsets, type Offsets, type Rec } from './topics';

export const AUDIT_DLQ = process.env.AUDIT_DLQ_TOPIC ?? 'welcome.audit.dlq';
const TOPICS = [stackEnv.memberTopic, stackEnv.augmentedTopic, stackEnv.sentTopic, stackEnv.augmenterDlq, stackEnv.emailerDlq, AUDIT_DLQ];

/** Signups per second of the stream (in transactions of ROWS_PER_TX rows). */
export const RATE = Number(process.env.FAULTS_RATE ?? '25');
const ROWS_PER_TX = 10;
const RECOVER_TIMEOUT_MS = Number(process.env.FAULTS_RECOVER_TIMEOUT_S ?? '300') * 1000;

export interface ScenarioResult {
  fault: string;
  signups: number;
  sent: number;
  /** Members POSTed to SFMC under two or more different messageKeys (a second email). */
  duplicates: number;
  /** Addresses POSTed two or more different messageKeys. */
  secondMessages: number;
  /** Re-POSTs of a key the stand-in answered 109110 (absorbed inside SFMC's window; a second email after it). */
  rePostsAbsorbed: number;
  /** Re-POSTs of a key after a POST that met a fault (429, 5xx, 401, dropped): the retry by design. */
  rePostsAfterFault: number;
  /** The bound on rePostsAbsorbed that the scenario's fault explains. */
  maxAbsorbed: number;
  /** What the counters showed of the fault (before/after differences). */
  faultShown: string;
  lost: number;
  deadLettered: number;
  skipped: number;
  /** WelcomeSent records whose SFMC outcome was 109110 (a resend SFMC absorbed). */
  resendsAbsorbed: number;
  /** Members with more than one WelcomeSent on welcome.sent (at-least-once; the sink upserts). */
  multiWelcomeSent: number;
  /** Creates on the CDC topic beyond one per member (a source connector that re-read its binlog). */
  reEmittedCreates: number;
  /** From the fault until the scenario's last member was sent. */
  recoverS: number | undefined;
  /** Worst commit→accepted-by-SFMC latency of any member in the scenario. */
  maxLatencyS: number | undefined;
  /** From the fault until both groups had committed past the scenario and every sent member had its audit row. */
  idleS: number | undefined;
  notes: string[];
  problems: string[];
}

/** Counters before → after a scenario, as differences: what the fault did, seen by the stand-ins and the stack. */
export interface FaultEvidence {
  /** The SFMC stand-in's /__standin/stats, after − before (`injected.fail429`, `rejectedByCode.109110`, `tokenRequests`...). */
  sfmc: Record<string, number>;
  /** The warehouse stand-in's /__standin/stats, after − before (`byStatus.503`, `lookups`...). */
  dw: Record<string, number>;
  /** Services whose recorded pid changed (killed or restarted, and back). */
  restarted: Service[];
  /** Task restarts the Connect watchdog made. */
  watchdogRestarts: number;
  /** Outcomes of the POSTs for the scenario's members at the SFMC stand-in (`429`, `5xx:503`, `answer:400`, `unauthorized`...). */
  attempts: Record<string, number>;
}

/** A scenario's proof that its fault reached the pipeline: the problem when it did not. */
export type FaultMet = (e: FaultEvidence) => string | undefined;

export interface FaultContext {
  prefix: string;
  signups: number;
  starts: Map<string, Offsets>;
  note(text: string): void;
  /** Resolves when this share of the stream has been committed to the members table. */
  inserted(share: number): Promise<void>;
}

export type Inject = (ctx: FaultContext) => Promise<void>;

export interface ScenarioOptions {
  signups: number;
  inject: Inject;
  /** Share of the stream written before the fault (default 0.25). */
  faultAt?: number;
  /** Members (memberKey) the fault makes undeliverable: they must end dead-lettered with a reason, all others sent. */
  expectDeadLettered?: (prefix: string) => string[];
  /** Shows the fault was met (required: a scenario whose fault never happened proves nothing). */
  faultMet?: FaultMet;
  /** Re-POSTs answered 109110 the fault explains (default 0); a function of the creates the source re-emitted for a source fault. */
  maxAbsorbed?: AbsorbedBound;
}

export type AbsorbedBound = number | ((figures: { reEmittedCreates: number }) => number);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const slug = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '')
    .slice(0, 10);

/** Two enabled organizations; every 20th member in DL, which is switched off: skipped, never sent. */
export function members(prefix: string, n: number): MemberRow[] {
  return Array.from({ length: n }, (_, i) => ({
    org_id: i % 20 === 19 ? 'DL' : i % 2 === 0 ? 'UA' : 'AA',
    org_member_id: `${prefix}${String(i).padStart(5, '0')}`,
    email: `${prefix}${i}@example.com`,
    first_name: i % 3 === 0 ? null : `First${i}`,
    last_name: `Last${i}`,
    locale: i % 2 === 0 ? 'en-US' : 'fr-FR',
  }));
}

const enabled = (r: MemberRow): boolean => r.org_id !== 'DL';

/** Members (by org:orgMemberId) some dead-letter topic holds, with the reason it gives. */
async function deadLetters(prefix: string, starts: Map<string, Offsets>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const reason = (r: Rec, stage: string): string =>
    `${header(r.headers, 'dlq.stage') ?? stage}: ${header(r.headers, 'dlq.error.code') ?? header(r.headers, '__connect.errors.exception.class.name') ?? '?'} ${header(r.headers, 'dlq.attempts') ? `[attempts ${header(r.headers, 'dlq.attempts')}] ` : ''}${header(r.headers, 'dlq.reason') ?? header(r.headers, '__connect.errors.exception.message') ?? ''}`.trim();
  for (const r of await readRange(stackEnv.augmenterDlq, starts.get(stackEnv.augmenterDlq) ?? new Map())) {
    const m = await asMemberChange(r.value);
    if (m?.org_member_id?.startsWith(prefix)) out.set(memberKey(m.org_id ?? '?', m.org_member_id), reason(r, 'augmenter'));
  }
  for (const r of await readRange(stackEnv.emailerDlq, starts.get(stackEnv.emailerDlq) ?? new Map())) {
    const m = await asAugmented(r.value);
    if (m?.org_member_id.startsWith(prefix)) out.set(memberKey(m.org_id, m.org_member_id), reason(r, 'emailer'));
  }
  for (const r of await readRange(AUDIT_DLQ, starts.get(AUDIT_DLQ) ?? new Map())) {
    const key = r.key?.toString() ?? '';
    if (key.includes(`:${prefix}`)) out.set(key, reason(r, 'audit-sink'));
  }
  return out;
}

async function auditRows(db: Connection, prefix: string): Promise<Set<string>> {
  const rows = await query<RowDataPacket>(db, 'SELECT org_id, org_member_id FROM loyalty.new_members_sent_to_salesforce WHERE org_member_id LIKE ?', [
    `${prefix}%`,
  ]);
  return new Set(rows.map((r) => memberKey(String(r.org_id), String(r.org_member_id))));
}

/** The group has committed past every record written up to `ends` (later traffic of others does not matter). */
async function committedPast(group: string, topic: string, ends: Offsets): Promise<boolean> {
  const done = await committedOffsets(group, topic);
  return [...ends].every(([p, end]) => end === 0n || (done.get(p) ?? -1n) >= end);
}

let scenarioSeq = 0;

/** What a scenario must show beyond the account every scenario passes (0 lost, 0 sent twice). */
export interface Expect {
  /** Members (memberKey, from the scenario's prefix) that must end dead-lettered with a reason. */
  expectDeadLettered?: (prefix: string) => string[];
  /** Worst commit → SFMC latency allowed (issue 10: ≤ 12 s for every kill -9 of a consumer at 25/s). */
  maxLatencyS?: number;
  /** Services that must heal without a restart (no "was down" from the supervisor). */
  mustStayUp?: Service[];
  /** Re-POSTs of one messageKey answered 109110 that the fault explains (default 0). */
  maxAbsorbed?: AbsorbedBound;
}

/**
 * One scenario as a test: run it, restore the stack whatever happened (so the next scenario
 * starts whole), keep its result for the suite's table, then assert the member-by-member account.
 */
export async function accountedScenario(
  db: Connection,
  results: ScenarioResult[],
  name: string,
  o: { signups: number; inject: Inject; faultAt?: number; faultMet: FaultMet; expected?: Expect },
): Promise<void> {
  const expected = o.expected ?? {};
  let result: ScenarioResult | undefined;
  try {
    result = await runScenario(db, name, {
      signups: o.signups,
      inject: o.inject,
      faultAt: o.faultAt,
      expectDeadLettered: expected.expectDeadLettered,
      faultMet: o.faultMet,
      maxAbsorbed: expected.maxAbsorbed,
    });
  } finally {
    const restored = await restoreStack().catch((err: unknown) => [`restoring the stack failed: ${String(err)}`]);
    if (result) {
      result.notes.push(...restored.map((n) => `after recovery: ${n}`));
      results.push(result);
    }
  }
  const r = result as ScenarioResult;
  expect(r.problems).toEqual([]);
  expect(r.lost).toBe(0);
  expect(r.duplicates).toBe(0);
  expect(r.secondMessages).toBe(0);
  expect(r.rePostsAbsorbed).toBeLessThanOrEqual(r.maxAbsorbed);
  expect(r.sent + r.skipped + r.deadLettered).toBe(r.signups);
  if (expected.maxLatencyS !== undefined) expect(r.maxLatencyS).toBeLessThanOrEqual(expected.maxLatencyS);
  for (const s of expected.mustStayUp ?? []) expect(r.notes.filter((n) => n.startsWith(`${s} was down`))).toEqual([]);
}

export async function runScenario(db: Connection, name: string, o: ScenarioOptions): Promise<ScenarioResult> {
  const prefix = `f${++scenarioSeq}${slug(name)}-${runId}-`;
  const rows = members(prefix, o.signups);
  const expected = rows.filter(enabled);
  const notes: string[] = [];
  const problems: string[] = [];
  const starts = new Map<string, Offsets>();
  for (const t of TOPICS) starts.set(t, await startOffsets(t));
  const restartsBefore = await watchdogRestarts();
  // The counters before: the fault is shown by their differences afterwards.
  const sfmcBefore = await sfmcCounters();
  const dwBefore = await dwCounters();
  const pidsBefore = new Map(SERVICES.map((s) => [s, recordedPid(s)]));
  const attemptsFrom = Date.now();
  // The signups' own connection: a scenario may restart the database under it.
  let conn = db;

  // ---- the stream, with the fault at `faultAt` of it
  const insertedAt = new Map<string, number>();
  let insertedCount = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const ctx: FaultContext = {
    prefix,
    signups: o.signups,
    starts,
    note: (t) => notes.push(t),
    inserted: (share) =>
      new Promise<void>((resolve) => {
        const n = Math.min(o.signups, Math.ceil(share * o.signups));
        if (insertedCount >= n) resolve();
        else waiters.push({ n, resolve });
      }),
  };
  const faultRow = Math.floor(((o.faultAt ?? 0.25) * o.signups) / ROWS_PER_TX) * ROWS_PER_TX;
  let faultAt = 0;
  let injection: Promise<void> | undefined;
  let injectError: unknown;
  const t0 = Date.now();
  for (let i = 0; i < rows.length; i += ROWS_PER_TX) {
    if (i === faultRow) {
      faultAt = Date.now();
      injection = o.inject(ctx).catch((err: unknown) => {
        injectError = err;
      });
    }
    const chunk = rows.slice(i, i + ROWS_PER_TX);
    conn = await insertSurvivingRestarts(conn, chunk, db);
    const at = Date.now();
    for (const r of chunk) insertedAt.set(r.org_member_id, at);
    insertedCount += chunk.length;
    for (const w of waiters.filter((x) => insertedCount >= x.n)) w.resolve();
    // pacing of the generator (a steady stream), not a wait for an outcome
    const due = t0 + ((i + ROWS_PER_TX) / RATE) * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  waiters.forEach((w) => w.resolve());
  await injection;
  if (injectError) problems.push(`injecting the fault failed: ${String(injectError).slice(0, 600)}`);

  // ---- recovery: supervise until every enabled member is sent or dead-lettered and both groups are past our records
  let sends: AcceptedSend[] = [];
  let dlq = new Map<string, string>();
  let audit = new Set<string>();
  const wanted = new Set(expected.map((r) => welcomeMessageKey(r.org_id, r.org_member_id)));
  const covered = (): boolean => {
    const sentKeys = new Set(sends.map((s) => s.messageKey));
    return expected.every((r) => sentKeys.has(welcomeMessageKey(r.org_id, r.org_member_id)) || dlq.has(memberKey(r.org_id, r.org_member_id)));
  };
  const deadline = Date.now() + RECOVER_TIMEOUT_MS;
  let phase = 'every member sent or dead-lettered';
  let idleAt = 0;
  try {
    await waitFor(
      phase,
      async () => {
        notes.push(...(await superviseOnce()));
        sends = await acceptedSends(prefix);
        if (sends.filter((s) => wanted.has(s.messageKey)).length < wanted.size) dlq = await deadLetters(prefix, starts);
        return covered();
      },
      deadline - Date.now(),
      1_000,
    );
    phase = 'both groups to commit past the scenario, the audit table to hold every sent member';
    const ends = { members: await endOffsets(stackEnv.memberTopic), augmented: await endOffsets(stackEnv.augmentedTopic) };
    await waitFor(
      phase,
      async () => {
        notes.push(...(await superviseOnce()));
        if (!(await committedPast('welcome-augmenter', stackEnv.memberTopic, ends.members))) return false;
        if (!(await committedPast('welcome-emailer', stackEnv.augmentedTopic, ends.augmented))) return false;
        sends = await acceptedSends(prefix);
        dlq = await deadLetters(prefix, starts);
        audit = await auditRows(conn, prefix);
        const sentKeys = new Set(sends.map((s) => s.messageKey));
        const idle = expected.every((r) => {
          const k = memberKey(r.org_id, r.org_member_id);
          return !sentKeys.has(welcomeMessageKey(r.org_id, r.org_member_id)) || audit.has(k) || dlq.has(k);
        });
        if (idle) idleAt = Date.now();
        return idle;
      },
      Math.max(10_000, deadline - Date.now()),
      1_000,
    );
  } catch (err) {
    problems.push(`not recovered within ${RECOVER_TIMEOUT_MS / 1000} s (${phase}): ${String(err).slice(0, 300)}`);
  }

  // ---- the account, member by member
  sends = await acceptedSends(prefix);
  dlq = await deadLetters(prefix, starts);
  audit = await auditRows(conn, prefix);
  const restartsAfter = await watchdogRestarts();
  let watchdogMade = 0;
  for (const [connector, n] of restartsAfter) {
    const before = restartsBefore.get(connector) ?? 0;
    const made = n >= before ? n - before : n; // a counter below its start: the watchdog itself was restarted
    watchdogMade += made;
    if (made > 0) notes.push(`connect-watchdog restarted ${connector} ×${made}`);
  }
  // Every POST that reached SFMC for our members (their first is after attemptsFrom).
  const attempts = account(await sendAttempts(attemptsFrom), prefix);
  let creates = 0;
  for (const r of await readRange(stackEnv.memberTopic, starts.get(stackEnv.memberTopic) ?? new Map())) {
    const m = await asMemberChange(r.value);
    if (m?.org_member_id?.startsWith(prefix) && m.__op === 'c') creates++;
  }
  const bound = o.maxAbsorbed ?? 0;
  const maxAbsorbed = typeof bound === 'number' ? bound : bound({ reEmittedCreates: Math.max(0, creates - o.signups) });
  notes.push(
    `SFMC saw ${attempts.posts} POSTs of ${attempts.keys} keys: ${attempts.absorbed} re-POSTs absorbed by 109110 (bound ${maxAbsorbed}), ${attempts.refused} after a fault; ${JSON.stringify(attempts.outcomes)}`,
  );
  const evidence: FaultEvidence = {
    sfmc: counterDiff(sfmcBefore, await sfmcCounters()),
    dw: counterDiff(dwBefore, await dwCounters()),
    restarted: SERVICES.filter((s) => recordedPid(s) !== pidsBefore.get(s)),
    watchdogRestarts: watchdogMade,
    attempts: attempts.outcomes,
  };
  const shown = shownText(evidence);
  if (!o.faultMet) problems.push('the scenario names no check that its fault was met');
  else {
    const unmet = o.faultMet(evidence);
    if (unmet) problems.push(`the fault was not met: ${unmet} (counters: ${shown})`);
  }
  if (attempts.membersWithSecondKey.length > 0)
    problems.push(
      `${attempts.membersWithSecondKey.length} member(s) POSTed under a second messageKey: ${attempts.membersWithSecondKey.slice(0, 5).join(', ')}`,
    );
  if (attempts.addressesWithSecondMessage.length > 0)
    problems.push(
      `${attempts.addressesWithSecondMessage.length} address(es) given a second messageKey: ${attempts.addressesWithSecondMessage.slice(0, 5).join(', ')}`,
    );
  if (attempts.absorbed > maxAbsorbed)
    problems.push(`${attempts.absorbed} re-POSTs absorbed by 109110, more than the ${maxAbsorbed} the fault explains`);
  if (conn !== db) await conn.end().catch(() => undefined);
  const sendsByKey = new Map<string, AcceptedSend[]>();
  for (const s of sends) sendsByKey.set(s.messageKey, [...(sendsByKey.get(s.messageKey) ?? []), s]);
  const welcomeSent = new Map<string, number>();
  let resendsAbsorbed = 0;
  for (const r of await readRange(stackEnv.sentTopic, starts.get(stackEnv.sentTopic) ?? new Map())) {
    const key = r.key?.toString() ?? '';
    if (!key.includes(`:${prefix}`)) continue;
    welcomeSent.set(key, (welcomeSent.get(key) ?? 0) + 1);
    if (header(r.headers, 'welcome.outcome') === 'duplicate') resendsAbsorbed++;
  }

  let sent = 0,
    skipped = 0,
    deadLettered = 0,
    lost = 0,
    maxLatency = 0,
    lastSend = 0;
  const lostIds: string[] = [];
  for (const r of rows) {
    const k = memberKey(r.org_id, r.org_member_id);
    const got = sendsByKey.get(welcomeMessageKey(r.org_id, r.org_member_id)) ?? [];
    if (!enabled(r)) {
      if (got.length > 0) problems.push(`${k}: organization switched off, but a Welcome was sent`);
      else if (dlq.has(k)) deadLettered++;
      else skipped++;
      continue;
    }
    if (got.length > 0) {
      sent++;
      const at = Math.min(...got.map((s) => Date.parse(s.receivedAt)));
      lastSend = Math.max(lastSend, at);
      maxLatency = Math.max(maxLatency, at - (insertedAt.get(r.org_member_id) ?? at));
      if (!audit.has(k) && !dlq.has(k)) problems.push(`${k}: sent but no audit row and no audit dead letter`);
    } else if (dlq.has(k)) deadLettered++;
    else {
      lost++;
      lostIds.push(r.org_member_id);
    }
  }
  for (const [k, reason] of dlq) notes.push(`dead-lettered ${k}: ${reason.slice(0, 160)}`);
  if (lost > 0) problems.push(`${lost} member(s) lost (no send, no dead letter): ${lostIds.slice(0, 10).join(', ')}${lost > 10 ? ', …' : ''}`);
  // Every fault here is transient: the design pauses on them, so nothing may be dead-lettered —
  // except the members a scenario makes undeliverable on purpose, which must be, with a reason.
  const expectedDead = new Set(o.expectDeadLettered?.(prefix) ?? []);
  // A sink with errors.tolerance=none still copies the record that failed its task to the audit
  // DLQ, then re-reads and writes it after the watchdog's restart: a member welcomed once with
  // its audit row is not dead-lettered, whatever copy the DLQ holds (noted, not a problem).
  const welcomed = (k: string): boolean =>
    audit.has(k) &&
    rows.some((r) => memberKey(r.org_id, r.org_member_id) === k && (sendsByKey.get(welcomeMessageKey(r.org_id, r.org_member_id))?.length ?? 0) === 1);
  const ghosts = [...dlq.keys()].filter((k) => !expectedDead.has(k) && welcomed(k));
  if (ghosts.length > 0)
    notes.push(
      `${ghosts.length} audit-sink DLQ copies of members welcomed once with their audit row (the record that failed the task, written after its restart)`,
    );
  const unexpectedDead = [...dlq.keys()].filter(
    (k) => !expectedDead.has(k) && !welcomed(k) && rows.some((r) => memberKey(r.org_id, r.org_member_id) === k),
  );
  if (unexpectedDead.length > 0)
    problems.push(`${unexpectedDead.length} member(s) dead-lettered by a transient fault: ${unexpectedDead.slice(0, 5).join(', ')}`);
  for (const k of expectedDead) {
    const reason = dlq.get(k);
    if (!reason) problems.push(`${k}: expected in a dead-letter topic, is not`);
    else if (!/\[attempts \d+\]/.test(reason) || reason.length < 30) problems.push(`${k}: dead letter without attempts or reason: ${reason}`);
    if (sendsByKey.has(welcomeMessageKey(k.split(':')[0] ?? '', k.split(':').slice(1).join(':'))))
      problems.push(`${k}: dead-lettered, yet a Welcome was sent`);
  }
  if (creates < o.signups) problems.push(`only ${creates} creates on ${stackEnv.memberTopic} for ${o.signups} signups`);

  return {
    fault: name,
    signups: o.signups,
    sent,
    duplicates: attempts.membersWithSecondKey.length,
    secondMessages: attempts.addressesWithSecondMessage.length,
    rePostsAbsorbed: attempts.absorbed,
    rePostsAfterFault: attempts.refused,
    maxAbsorbed,
    faultShown: shown,
    lost,
    deadLettered,
    skipped,
    resendsAbsorbed,
    multiWelcomeSent: [...welcomeSent.values()].filter((n) => n > 1).length,
    reEmittedCreates: Math.max(0, creates - o.signups),
    recoverS: lastSend > 0 && faultAt > 0 ? Math.max(0, lastSend - faultAt) / 1000 : undefined,
    maxLatencyS: sent > 0 ? maxLatency / 1000 : undefined,
    idleS: idleAt > 0 && faultAt > 0 ? (idleAt - faultAt) / 1000 : undefined,
    notes: [...new Set(notes)],
    problems,
  };
}

/** The non-zero differences, short: `sfmc injected.fail429 +30, dw byStatus.503 +12, restarted emailer`. */
function shownText(e: FaultEvidence): string {
  const part = (name: string, d: Record<string, number>, keys: RegExp): string[] =>
    Object.entries(d)
      .filter(([k, v]) => v > 0 && keys.test(k))
      .map(([k, v]) => `${name} ${k} +${v}`);
  return [
    ...part('sfmc', e.sfmc, /^(injected|rejectedByCode|unauthorized|tokenRequests)/),
    ...part('dw', e.dw, /^byStatus\.[^2]/),
    ...(e.restarted.length ? [`restarted ${e.restarted.join(' ')}`] : []),
    ...(e.watchdogRestarts ? [`watchdog restarts ${e.watchdogRestarts}`] : []),
    ...Object.entries(e.attempts)
      .filter(([k]) => k !== 'accepted')
      .map(([k, v]) => `POSTs ${k} ×${v}`),
  ].join(', ');
}

/** Fault checks the suites share: each names the counter that shows its fault reached the pipeline. */
export const met = {
  /** The SFMC stand-in's counter rose by at least `n` (e.g. `injected.fail429`). */
  sfmc:
    (counter: string, n = 1): FaultMet =>
    (e) =>
      (e.sfmc[counter] ?? 0) >= n ? undefined : `SFMC ${counter} rose by ${e.sfmc[counter] ?? 0}, expected ≥ ${n}`,
  /** The warehouse stand-in's counter rose by at least `n` (e.g. `byStatus.503`). */
  dw:
    (counter: string, n = 1): FaultMet =>
    (e) =>
      (e.dw[counter] ?? 0) >= n ? undefined : `warehouse ${counter} rose by ${e.dw[counter] ?? 0}, expected ≥ ${n}`,
  /** The service runs under a new pid afterwards (it was killed or restarted, and is back). */
  restarted:
    (...services: Service[]): FaultMet =>
    (e) => {
      const missing = services.filter((s) => !e.restarted.includes(s));
      return missing.length === 0 ? undefined : `${missing.join(', ')} kept the pid it had before the fault`;
    },
  /** At least `n` POSTs of the scenario's members met an outcome matching `outcome` (e.g. /^429$/, /answer:/). */
  attempt:
    (outcome: RegExp, n = 1): FaultMet =>
    (e) => {
      const got = Object.entries(e.attempts)
        .filter(([k]) => outcome.test(k))
        .reduce((a, [, v]) => a + v, 0);
      return got >= n ? undefined : `${got} POSTs of the scenario's members met ${outcome.source}, expected ≥ ${n}`;
    },
  /** One of the checks holds (a fault that may show in either of two places). */
  any:
    (...checks: FaultMet[]): FaultMet =>
    (e) => {
      const misses = checks.map((c) => c(e));
      return misses.some((m) => m === undefined) ? undefined : misses.join('; ');
    },
  /** Every check holds. */
  all:
    (...checks: FaultMet[]): FaultMet =>
    (e) =>
      checks.map((c) => c(e)).find((x) => x !== undefined),
};

// ------------------------------------------------------------------------- fault helpers

/**
 * One signup transaction, as the application writing members would do it through a database
 * restart: on a lost connection, reconnect and try again; a duplicate key means the lost
 * attempt had committed. Returns the connection to use next.
 */
async function insertSurvivingRestarts(conn: Connection, rows: MemberRow[], original: Connection): Promise<Connection> {
  const deadline = Date.now() + RECOVER_TIMEOUT_MS;
  for (let current = conn; ;) {
    try {
      await insertMembers(current, rows);
      return current;
    } catch (err) {
      if ((err as { code?: string }).code === 'ER_DUP_ENTRY') return current;
      if (Date.now() > deadline) throw err;
      if (current !== original) await current.end().catch(() => undefined);
      await sleep(250);
      current = await rootDb()
        .then((c) => {
          c.on('error', () => undefined); // a restart closes it; the next insert notices
          return c;
        })
        .catch(() => current);
    }
  }
}

/** kill -9 by recorded pid, then `stack up` (what a supervisor does with a crashed process). */
export async function killAndRestart(service: Service, ctx: FaultContext): Promise<void> {
  const pid = kill9(service);
  await waitFor(`${service} pid ${pid} to be gone`, async () => !alive(pid), 10_000, 20);
  const raced = await bringUp(service);
  ctx.note(`kill -9 pid ${pid}; back up`);
  if (raced) ctx.note(raced);
}

/** The consumer's own account of its shutdown, from its log after `since`. */
function shutdownVerdict(service: Service, since: number): string {
  const lines = readFileSync(join(STATE_DIR, 'logs', `${service}.log`), 'utf8')
    .split('\n')
    .slice(-2000);
  for (const line of lines.reverse()) {
    try {
      const entry = JSON.parse(line) as { time?: number | string; msg?: string };
      const t = typeof entry.time === 'number' ? entry.time : Date.parse(String(entry.time));
      if (t < since) break;
      if (entry.msg === 'stopped cleanly') return 'clean';
      if (entry.msg?.startsWith('shutdown deadline passed')) return 'deadline';
      if (entry.msg === 'error while stopping') return 'error';
    } catch {
      // not a JSON line (startup noise)
    }
  }
  return 'no shutdown log line';
}

/**
 * SIGTERM under load: the process must exit within 10 s, and what it committed must be done —
 * every one of our input records below the committed offset has its output (or dead letter,
 * or is a member of a switched-off organization, which has none). Then `stack up` brings it back.
 */
export async function sigtermAndCheck(service: 'augmenter' | 'emailer', ctx: FaultContext): Promise<number> {
  const pid = recordedPid(service);
  if (pid === undefined || !alive(pid)) throw new Error(`${service} is not running`);
  const t0 = Date.now();
  process.kill(pid, 'SIGTERM');
  await waitFor(`${service} to exit after SIGTERM`, async () => !alive(pid), 15_000, 20);
  const exitMs = Date.now() - t0;
  const verdict = shutdownVerdict(service, t0 - 1000);
  ctx.note(`SIGTERM → exit in ${(exitMs / 1000).toFixed(1)} s (${verdict})`);

  const [input, output, dlqTopic, group] =
    service === 'augmenter'
      ? [stackEnv.memberTopic, stackEnv.augmentedTopic, stackEnv.augmenterDlq, 'welcome-augmenter']
      : [stackEnv.augmentedTopic, stackEnv.sentTopic, stackEnv.emailerDlq, 'welcome-emailer'];
  const committed = await committedOffsets(group, input);
  const done = new Set<string>();
  for (const t of [output, dlqTopic]) {
    for (const r of await readRange(t, ctx.starts.get(t) ?? new Map())) {
      if (t === stackEnv.sentTopic) done.add(r.key?.toString() ?? '');
      else {
        const m = service === 'augmenter' && t === dlqTopic ? await asMemberChange(r.value) : await asAugmented(r.value);
        if (m?.org_id && m.org_member_id) done.add(memberKey(m.org_id, m.org_member_id));
      }
    }
  }
  let committedOurs = 0;
  const undone: string[] = [];
  for (const r of await readRange(input, ctx.starts.get(input) ?? new Map())) {
    if (r.offset >= (committed.get(r.partition) ?? 0n)) continue;
    let m: { org_id: string | null; org_member_id: string | null } | undefined;
    if (service === 'augmenter') {
      const change = await asMemberChange(r.value);
      m = change?.__op === 'c' ? change : undefined; // updates, deletes, heartbeats have no output by design
    } else m = await asAugmented(r.value);
    if (!m?.org_id || !m.org_member_id?.startsWith(ctx.prefix)) continue;
    committedOurs++;
    if (m.org_id === 'DL' && service === 'emailer') continue; // switched off: skipped, no output by design
    const k = memberKey(m.org_id, m.org_member_id);
    if (!done.has(k)) undone.push(k);
  }
  ctx.note(`${committedOurs} of our records committed at exit`);
  const raced = await bringUp(service);
  if (raced) ctx.note(raced);
  if (undone.length > 0)
    throw new Error(`committed offsets ran ahead of the work: ${undone.length} committed record(s) without output: ${undone.slice(0, 5).join(', ')}`);
  if (exitMs > 10_000) throw new Error(`${service} took ${exitMs} ms to exit after SIGTERM (limit 10 s)`);
  return exitMs;
}

// ------------------------------------------------------------------------- the table

const fmt = (n: number | undefined, digits = 1): string => (n === undefined ? '—' : n.toFixed(digits));

export function summaryTable(results: ScenarioResult[], suiteSeconds: number): string {
  const head = [
    'fault',
    'signups',
    'sent',
    'skipped',
    'second keys',
    'lost',
    'dead-lettered',
    '109110 absorbed',
    're-POSTs 109110/bound',
    're-POSTs after fault',
    're-emitted creates',
    'recover s',
    'max latency s',
    'idle s',
    'result',
  ];
  const body = results.map((r) => [
    r.fault,
    String(r.signups),
    String(r.sent),
    String(r.skipped),
    String(r.duplicates + r.secondMessages),
    String(r.lost),
    String(r.deadLettered),
    String(r.resendsAbsorbed),
    `${r.rePostsAbsorbed}/${r.maxAbsorbed}`,
    String(r.rePostsAfterFault),
    String(r.reEmittedCreates),
    fmt(r.recoverS),
    fmt(r.maxLatencyS),
    fmt(r.idleS),
    r.problems.length === 0 ? 'ok' : 'FAIL',
  ]);
  const total = results.reduce((a, r) => a + r.signups, 0);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const out = [
    `FAULT INJECTION SUMMARY (run ${runId}, ${results.length} scenarios, ${total} signups at ${RATE}/s, suite ${suiteSeconds.toFixed(0)} s)`,
    line(head),
    `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...body.map(line),
    '',
    'notes:',
    ...results.flatMap((r) =>
      [`fault shown by: ${r.faultShown || 'no counter moved'}`, ...r.notes, ...r.problems.map((p) => `PROBLEM: ${p}`)].map(
        (n) => `  ${r.fault}: ${n}`,
      ),
    ),
  ];
  return `${out.join('\n')}\n`;
}
