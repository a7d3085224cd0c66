/**
 * Issue 20: the documented answers of SFMC and the warehouse, served by the stand-ins while
 * signups flow (docs/contracts/answers.md), each accounted member by member like every fault
 * scenario (scenario.ts): 0 lost, 0 sent twice, 0 dead-lettered where no member was at fault,
 * no operator step. Beyond the account, each row of the summary says how many Welcomes waited
 * on the fault, which setup hold the emailer or augmenter raised, and how long after the fault
 * cleared the next Welcome went out and the backlog was gone.
 *
 * FAULTS_PROFILE=ci (what `make test` runs, about 3 minutes): 50200 throttling, a proxy's HTML
 * 400 for 30 s, a 2xx without items for 20 s, a whole-request 400 naming nobody while 1 of 500
 * recipients is bad. The full profile adds 403/20002 for 60 s, the warehouse answering 404 for
 * 60 s, SFMC down 10 min (no restart), SFMC down 2 min with the emailer killed during it, and
 * 7 emailer replicas for 6 partitions for 5 min with SFMC answering in 3 s.
 * Summary: stdout and .state/faults-answers-summary.txt.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { memberKey } from '../../consumers/shared/member';
import { rootDb } from '../support/db';
import { STATE_DIR, stackEnv } from '../support/env';
import { startStage, stopStages, waitReady, type StartedStage } from '../support/stage-process';
import { acceptedSends, dwFaults, sfmcFaults } from '../support/standins';
import { waitFor } from '../support/wait';
import { accountedScenario, killAndRestart, members, met, summaryTable, type FaultContext, type ScenarioResult } from './scenario';
import { alive, bringUp, recordedPid, restoreStack, stackAsync } from './stack-control';
import { readRange } from './topics';

const SIGNUPS = Number(process.env.FAULTS_SIGNUPS_PER_SCENARIO ?? '200');
const fullOnly = process.env.FAULTS_PROFILE === 'ci' ? test.skip : test;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const BASE_TIMEOUT_MS = Number(process.env.FAULTS_RECOVER_TIMEOUT_S ?? '300') * 1000 + 180_000;
jest.setTimeout(BASE_TIMEOUT_MS);

let db: Connection;
const results: ScenarioResult[] = [];
const details: string[] = [];
const suiteStart = Date.now();

beforeAll(async () => {
  db = await rootDb();
  db.on('error', () => undefined);
  await restoreStack();
});

afterAll(async () => {
  await stopStages().catch(() => undefined);
  const notes = await restoreStack().catch((err: unknown) => [`restoring the stack failed: ${String(err)}`]);
  await db?.end();
  const table = `${summaryTable(results, (Date.now() - suiteStart) / 1000)}\nafter the fault cleared:\n${details.join('\n')}\n${notes.map((n) => `  after the suite: ${n}\n`).join('')}`;
  writeFileSync(join(STATE_DIR, 'faults-answers-summary.txt'), table);
  process.stdout.write(`\n${table}`);
});

/** One series of a consumer's /metrics: label sets and values. */
async function metric(base: string, name: string): Promise<{ labels: string; value: number }[]> {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined))?.text().catch(() => '');
  return (text ?? '')
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => ({ labels: l.slice(name.length, l.lastIndexOf(' ')), value: Number(l.slice(l.lastIndexOf(' ') + 1)) }));
}

/** What a fault window saw: the setup holds raised, the lowest SFMC concurrency limit. */
interface Watch {
  holds: Set<string>;
  minConcurrency: number;
  stop(): Promise<void>;
}
function watch(): Watch {
  const w: Watch = { holds: new Set(), minConcurrency: Infinity, stop: async () => undefined };
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const base of [stackEnv.emailerMetrics, stackEnv.augmenterMetrics]) {
        for (const s of await metric(base, 'welcome_hold')) if (s.value === 1) w.holds.add(s.labels.replace(/,?stage="[^"]*"/, ''));
      }
      for (const s of await metric(stackEnv.emailerMetrics, 'welcome_sfmc_concurrency_limit')) w.minConcurrency = Math.min(w.minConcurrency, s.value);
      await sleep(1_000);
    }
  })();
  w.stop = async () => {
    running = false;
    await loop;
  };
  return w;
}

interface Window {
  prefix: string;
  starts: FaultContext['starts'];
  /** The fault stays until the suite clears it (after the account): no "after it cleared" figures. */
  lasting: boolean;
  startedAt: number;
  clearedAt: number;
  watch: Watch;
}

/**
 * A fault held for `holdMs` (`set` … `clear`) while the stream flows; returns what it saw.
 * `during` runs inside the window (a kill, replicas), `clear` ends the fault.
 */
function windowed(
  set: () => Promise<void>,
  /** Ends the fault; may return when it really ended (epoch ms), if earlier than its return. */
  clear: () => Promise<number | void>,
  holdMs: number,
  out: { w?: Window },
  during?: (f: FaultContext) => Promise<void>,
  lasting = false,
) {
  return async (f: FaultContext): Promise<void> => {
    const w = watch();
    const startedAt = Date.now();
    await set();
    let ended: number | void;
    try {
      await Promise.all([sleep(holdMs), during?.(f)]);
    } finally {
      ended = await clear();
    }
    out.w = { prefix: f.prefix, starts: f.starts, lasting, startedAt, clearedAt: ended ?? Date.now(), watch: w };
    f.note(`fault held ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  };
}

/**
 * The per-scenario line the issue asks for: members affected, dead-lettered, held, and the time
 * from the fault clearing to the next Welcome — both as SFMC accepted it (the stand-in's log)
 * and as the pipeline recorded it (its WelcomeSent on welcome.sent, by Kafka timestamp): SFMC may
 * have queued a Welcome during the fault whose answer we could not read (a 2xx without items).
 */
async function report(name: string, out: { w?: Window }, r: ScenarioResult | undefined): Promise<string | undefined> {
  const w = out.w;
  if (!w) return undefined;
  await w.watch.stop();
  const accepted = (await acceptedSends(w.prefix)).map((s) => Date.parse(s.receivedAt));
  const recorded = (await readRange(stackEnv.sentTopic, w.starts.get(stackEnv.sentTopic) ?? new Map()))
    .filter((rec) => rec.key?.toString().includes(`:${w.prefix}`))
    .map((rec) => rec.timestamp);
  const afterClear = (times: number[]): string => {
    const after = times.filter((t) => t >= w.clearedAt);
    if (w.lasting) return 'the fault stays (a bad recipient)';
    if (after.length === 0) return 'none waited';
    return `first ${((Math.min(...after) - w.clearedAt) / 1000).toFixed(1)} s, last ${((Math.max(...after) - w.clearedAt) / 1000).toFixed(1)} s after it cleared`;
  };
  const holds = [...w.watch.holds].join(' ') || 'none';
  const line =
    `  ${name}: affected ${accepted.filter((t) => t >= w.startedAt).length} (Welcomes accepted after the fault began), ` +
    `dead-lettered ${r?.deadLettered ?? '?'}, held ${w.lasting ? 0 : recorded.filter((t) => t >= w.clearedAt).length} (recorded only after it cleared); ` +
    `holds raised: ${holds}${Number.isFinite(w.watch.minConcurrency) ? `; SFMC concurrency limit down to ${w.watch.minConcurrency}` : ''}; ` +
    `next Welcome accepted by SFMC: ${afterClear(accepted)}; recorded (WelcomeSent): ${afterClear(recorded)}`;
  details.push(line);
  if (r) r.notes.push(line.trim());
  return line;
}

async function scenario(
  name: string,
  o: {
    signups?: number;
    set: () => Promise<void>;
    clear: () => Promise<number | void>;
    holdMs: number;
    during?: (f: FaultContext) => Promise<void>;
    expectDeadLettered?: (prefix: string) => string[];
    /** Most seconds from the fault clearing to the next Welcome SFMC accepts. */
    firstWelcomeWithinS?: number;
    mustStayUp?: ('augmenter' | 'emailer')[];
    /** Re-POSTs answered 109110 the fault explains (issue 21; default 0). */
    maxAbsorbed?: number;
    lasting?: boolean;
    /** More checks on what the fault window saw. */
    check?: (w: Window) => void;
  },
): Promise<void> {
  const out: { w?: Window } = {};
  const before = results.length;
  try {
    await accountedScenario(db, results, name, {
      signups: o.signups ?? SIGNUPS,
      inject: windowed(o.set, o.clear, o.holdMs, out, o.during, o.lasting),
      // issue 21: the answer was served (an SFMC POST of ours met it, or the warehouse answered it), or the stand-in was slowed
      faultMet: met.any(met.attempt(/answer:/), met.dw('byStatus.404'), met.sfmc('injected.latency')),
      expected: { expectDeadLettered: o.expectDeadLettered, mustStayUp: o.mustStayUp ?? ['augmenter', 'emailer'], maxAbsorbed: o.maxAbsorbed },
    });
  } finally {
    await report(name, out, results[before]);
  }
  const w = out.w as Window;
  o.check?.(w);
  if (o.firstWelcomeWithinS !== undefined) {
    const after = (await acceptedSends(w.prefix)).map((s) => Date.parse(s.receivedAt)).filter((t) => t >= w.clearedAt);
    if (after.length > 0) expect((Math.min(...after) - w.clearedAt) / 1000).toBeLessThanOrEqual(o.firstWelcomeWithinS);
  }
  // no setup hold outlives its fault
  await waitFor('no setup hold left', async () => (await metric(stackEnv.emailerMetrics, 'welcome_hold')).every((s) => s.value === 0), 60_000, 1_000);
}

/**
 * SFMC gone: every call dropped without an answer at once (the stand-in's answer fault), then
 * its process stopped (connection refused) — `stack down` alone takes seconds, in which the
 * stream's members would still be sent. The restarted stand-in starts without faults.
 */
async function sfmcDown(): Promise<void> {
  await sfmcFaults({ answer: ['token.no-answer', 'send.no-answer', 'status.no-answer'] });
  await stackAsync('down', 'sfmc-standin');
}

/** SFMC back: `stack up`; the fault ended when the stand-in was listening again (its log), not when `stack up` returned. */
async function sfmcUp(): Promise<number> {
  await bringUp('sfmc-standin');
  const lines = readFileSync(join(STATE_DIR, 'logs', 'sfmc-standin.log'), 'utf8')
    .split('\n')
    .reverse();
  const listening = lines.find((l) => l.includes('"msg":"SFMC stand-in listening"'));
  const at = listening ? Date.parse((JSON.parse(listening) as { time: string }).time) : NaN;
  return Number.isFinite(at) ? at : Date.now();
}

/** The signup at `index` of a scenario's stream (members() decides its organization and address). */
const signupAt = (prefix: string, index: number): { key: string; email: string } => {
  const m = members(prefix, index + 1)[index];
  if (!m) throw new Error(`no member ${index}`);
  return { key: memberKey(m.org_id, m.org_member_id), email: m.email };
};

// ------------------------------------------------------------------ make test (FAULTS_PROFILE=ci)

test('SFMC 429 50200 (more than 2 sends in flight, SFMC answering in 300 ms) for 30 s: the emailer lowers its concurrency until it stops', () =>
  scenario('SFMC 50200 concurrency 30 s', {
    set: () => sfmcFaults({ concurrentSends: 2, latencyMs: 300 }),
    clear: () => sfmcFaults({ concurrentSends: 0, latencyMs: 0 }),
    holdMs: 30_000,
    check: (w) => expect(w.watch.minConcurrency).toBeLessThanOrEqual(2),
  }));

test("a proxy's HTML 400 for every send for 30 s: a setup hold, nothing dead-lettered, sent once it is gone", () =>
  scenario('proxy HTML 400 30 s', {
    set: () => sfmcFaults({ answer: 'send.refused' }),
    clear: () => sfmcFaults({ answer: '' }),
    holdMs: 30_000,
    firstWelcomeWithinS: 15,
    check: (w) => expect([...w.watch.holds].join(' ')).toContain('send.refused'),
  }));

test('a 2xx without items (SFMC queued them) for 20 s: never counted as sent, never sent twice', () =>
  scenario('2xx without items 20 s', {
    set: () => sfmcFaults({ answer: 'send.2xx-no-item', answerAfterAccepting: true }),
    clear: () => sfmcFaults({ answer: '', answerAfterAccepting: false }),
    holdMs: 20_000,
    firstWelcomeWithinS: 15,
    // Accepted, but answered without items: the setup hold probes by POSTing the same keys
    // again about once a second while the fault lasts, each answered 109110 (seen: 142 members,
    // 3,200 re-POSTs in 20 s). Bound: every member of the stream, once per second of the fault
    // and a few more. A second email only if SFMC's 2-3-day window had passed.
    maxAbsorbed: SIGNUPS * 25,
  }));

const BAD = 137;
test('a whole-request 400 naming nobody for any request carrying 1 bad recipient of 500: bisected, that one dead-lettered, 499 sent', () =>
  scenario('400 naming nobody, 1 of 500 bad', {
    signups: 500,
    // the bad recipient stays bad: the fault is cleared by the suite after the account
    set: async () => undefined,
    clear: async () => undefined,
    holdMs: 0,
    lasting: true,
    during: async (f) => sfmcFaults({ answer: 'send.refused', answerFor: [signupAt(f.prefix, BAD).email] }),
    expectDeadLettered: (prefix) => [signupAt(prefix, BAD).key],
  }));

// ------------------------------------------------------------------ the full profile

fullOnly('SFMC 403 errorcode 20002 (the package lost its scope) for 60 s, then restored', () =>
  scenario('SFMC 403/20002 60 s', {
    set: () => sfmcFaults({ answer: 'send.403' }),
    clear: () => sfmcFaults({ answer: '' }),
    holdMs: 60_000,
    firstWelcomeWithinS: 15,
  }),
);

fullOnly('the warehouse answers 404 to every lookup for 60 s (a wrong route): held, nothing dead-lettered', () =>
  scenario('warehouse 404 60 s', {
    set: () => dwFaults({ answer: ['dw-lookup.404', 'dw-key.404'] }),
    clear: () => dwFaults({ answer: [] }),
    holdMs: 60_000,
    firstWelcomeWithinS: 15,
  }),
);

fullOnly(
  'SFMC down for 10 minutes (its process stopped): the consumers pause and say so, none restarts, the first Welcome within 15 s of its return',
  () =>
    scenario('SFMC down 10 min', {
      set: sfmcDown,
      clear: sfmcUp,
      holdMs: 600_000,
      firstWelcomeWithinS: 15,
      during: async (f) => {
        await sleep(300_000);
        const health = (await (await fetch(`${stackEnv.emailerMetrics}/healthz`)).json()) as { status: string };
        f.note(`emailer /healthz at 5 min: ${JSON.stringify(health).slice(0, 200)}`);
        if (health.status !== 'paused') throw new Error(`the emailer does not say it is paused: ${JSON.stringify(health)}`);
      },
    }),
  BASE_TIMEOUT_MS + 660_000,
);

fullOnly(
  'SFMC down for 2 minutes with the emailer killed and restarted during it: the first Welcome within 15 s of its return',
  () =>
    scenario('SFMC down 2 min + kill -9 emailer', {
      set: sfmcDown,
      clear: sfmcUp,
      holdMs: 120_000,
      firstWelcomeWithinS: 15,
      mustStayUp: ['augmenter'],
      during: async (f) => {
        await sleep(60_000);
        await killAndRestart('emailer', f);
      },
    }),
  BASE_TIMEOUT_MS + 180_000,
);

fullOnly(
  '7 emailer replicas for 6 partitions for 5 minutes while SFMC answers in 3 s: no replica exits',
  async () => {
    const extra: StartedStage[] = [];
    const base = Number(process.env.BENCH_INSTANCE_PORT_BASE ?? '9470');
    await scenario('7 emailers for 6 partitions 5 min', {
      signups: 25 * 300, // a stream for the whole 5 minutes, so the group has lag throughout
      set: () => sfmcFaults({ latencyMs: 3_000 }),
      clear: async () => {
        const gone = extra.filter((s) => s.child.exitCode !== null || s.child.signalCode !== null);
        const stackEmailer = alive(recordedPid('emailer'));
        await stopStages();
        await sfmcFaults({ latencyMs: 0 });
        if (gone.length > 0 || !stackEmailer)
          throw new Error(`${gone.length} extra emailer replica(s) exited during the 5 minutes (logs: ${gone.map((s) => s.log).join(', ')})`);
      },
      holdMs: 300_000,
      during: async (f) => {
        for (let i = 0; i < 6; i++) {
          const port = String(base + i);
          const s = startStage('emailer', { ...process.env, HTTP_PORT: port }, `emailer-replica-${i}`);
          extra.push(s);
          await waitReady(s, port, `emailer replica ${i}`);
        }
        f.note('6 extra emailer replicas started (7 members for 6 partitions)');
      },
    });
  },
  BASE_TIMEOUT_MS + 600_000,
);
