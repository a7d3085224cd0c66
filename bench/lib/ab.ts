/**
 * `make bench-ab`: two settings compared in one run on the running stack, interleaved
 * A, B, B, A, … (BENCH_AB_ROUNDS each, the order flipped every round) so that the shared machine's background load falls
 * on both arms alike. Each phase: switch to the arm (restart the consumers whose settings
 * change, PUT the connector config if it changes), sign up at BENCH_AB_RATE for a warm-up that
 * is not counted, then for BENCH_AB_PHASE_S measured, and wait until every member of the phase
 * was accepted by SFMC before the next switch (a restart must not delay a phase's tail).
 * Prints per phase the end-to-end p50/p99 and machine CPU, then per hop each arm's p50/p99 with
 * all its phases pooled; writes bench/results/bench-ab-<time>.json. At the end the stack is
 * put back to its defaults. Arms: see ab-arms.ts; e.g.
 *   BENCH_AB_A='emailer:SFMC_CONCURRENT_REQUESTS=1' BENCH_AB_B='' make bench-ab
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createKafka } from '../../consumers/shared/kafka';
import { kafkaFromEnv } from '../../consumers/shared/kafka-security';
import { createLogger } from '../../consumers/shared/logger';
import { createRegistry } from '../../consumers/shared/registry';
import {
  compareArms,
  connectorChanges,
  consumersToRestart,
  describeArm,
  parseArm,
  schedule,
  type Arm,
  type PhaseResult,
  type StageChunks,
} from './ab-arms';
import { HopTracker, auditTimes, hopTable, type HopTable } from './hops';
import { createBenchPool, insertAtRate, type BenchMember } from './inserter';
import { cpuBetween, cpuSample, metricsOf, stackPids, timeSplit } from './probes';
import { labelValues, sumOf } from '../../tools/pipeline-status';
import { createConnectClient } from '../../tools/connect-client';
import { SendCollector } from './sends';
import { fmtMs, sleep, summarize } from './stats';

const env = process.env;
const ROOT = join(__dirname, '..', '..');
const stateDir = env.STATE_DIR ?? join(ROOT, '.state');
const cfg = {
  rate: Number(env.BENCH_AB_RATE ?? 100),
  phaseS: Number(env.BENCH_AB_PHASE_S ?? 30),
  warmupS: Number(env.BENCH_AB_WARMUP_S ?? 5),
  rounds: Number(env.BENCH_AB_ROUNDS ?? 3),
  drainS: Number(env.BENCH_AB_DRAIN_S ?? 30),
  connector: env.BENCH_AB_CONNECTOR ?? 'members-source',
  outDir: env.BENCH_OUT ?? join(ROOT, 'bench', 'results'),
};
const arms: [Arm, Arm] = [parseArm('A', env.BENCH_AB_A), parseArm('B', env.BENCH_AB_B)];
const sfmcUrl = env.SFMC_AUTH_URL ?? 'http://127.0.0.1:8090';
const connectApi = createConnectClient(env);
const topics = { member: env.MEMBER_TOPIC ?? 'cdc.loyalty.members', augmented: env.AUGMENTED_TOPIC ?? 'welcome.members.augmented' };
const readyUrl = {
  augmenter: `http://127.0.0.1:${env.AUGMENTER_HTTP_PORT ?? 9464}/readyz`,
  emailer: `http://127.0.0.1:${env.EMAILER_HTTP_PORT ?? 9465}/readyz`,
};
const metricsUrls = [readyUrl.augmenter.replace(/\/readyz$/, ''), readyUrl.emailer.replace(/\/readyz$/, '')];
const log = (line: string): void => void process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return true;
    await sleep(everyMs);
  }
  log(`  (gave up waiting for ${what} after ${timeoutMs / 1000} s)`);
  return false;
}

/** `stack restart <consumer>` with the arm's variables on top of the stack's environment. */
async function restartConsumer(name: 'augmenter' | 'emailer', vars: Record<string, string>): Promise<void> {
  const code = await new Promise<number | null>((resolve, reject) => {
    const p = spawn(join(ROOT, 'stack', 'bin', 'stack'), ['restart', name], {
      cwd: ROOT,
      env: { ...env, ...vars },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    p.on('error', reject);
    p.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`stack restart ${name} exited ${code}`);
  if (!(await until(`${name} ready`, async () => (await fetch(readyUrl[name])).ok, 90_000, 500))) throw new Error(`${name} did not become ready`);
}

async function connectorConfig(): Promise<Record<string, string>> {
  const res = await connectApi.fetch(`/connectors/${cfg.connector}/config`);
  if (!res.ok) throw new Error(`GET connector ${cfg.connector} config answered ${res.status}: is it registered (make connectors)?`);
  return (await res.json()) as Record<string, string>;
}

async function putConnector(config: Record<string, string>): Promise<void> {
  const res = await connectApi.fetch(`/connectors/${cfg.connector}/config`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(config),
  });
  if (!res.ok) throw new Error(`PUT connector ${cfg.connector} answered ${res.status}: ${await res.text()}`);
  const running = async (): Promise<boolean> => {
    const s = (await (await connectApi.fetch(`/connectors/${cfg.connector}/status`)).json()) as {
      connector: { state: string };
      tasks: { state: string }[];
    };
    return s.connector.state === 'RUNNING' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING');
  };
  await sleep(1_000); // the reconfiguration restarts the task; RUNNING before that is the old one
  if (!(await until(`${cfg.connector} RUNNING`, running, 60_000, 500))) throw new Error(`${cfg.connector} not RUNNING after PUT`);
}

async function main(): Promise<void> {
  const runId = `${Date.now().toString(36)}`;
  const started = new Date();
  log(`bench-ab run ${runId}: ${JSON.stringify({ ...cfg, outDir: undefined })}`);
  log(`  A: ${describeArm(arms[0])}`);
  log(`  B: ${describeArm(arms[1])}`);
  const pool = createBenchPool(join(stateDir, 'mariadb', 'mariadb.sock'), 16);
  const kafkaEnv = kafkaFromEnv(env, (p) => readFileSync(p, 'utf8'));
  const kafka = createKafka(
    { brokers: kafkaEnv.brokers, security: kafkaEnv.security, clientId: `bench-ab-${runId}` },
    createLogger('bench', 'fatal'),
  );
  const members = new Map<string, BenchMember>();
  const baseConnector = await connectorConfig();
  const idle0 = cpuSample(stackPids(stateDir));
  await sleep(2_000);
  const backgroundCpuPct = cpuBetween(idle0, cpuSample(stackPids(stateDir))).machinePct;
  log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}; CPU before start ${backgroundCpuPct}% (load avg ${loadavg()[0]?.toFixed(2)})`);

  const hops = new HopTracker(kafka, createRegistry(env.REGISTRY_URL ?? 'http://127.0.0.1:8081'), topics, `bench-ab-hops-${runId}`);
  await hops.start();
  const collector = new SendCollector(sfmcUrl, members, started.getTime() - 1_000).start(250);
  const phases: PhaseResult[] = [];
  let current: Arm | undefined;
  try {
    for (const { arm, round } of schedule(arms, cfg.rounds)) {
      for (const c of consumersToRestart(current, arm)) await restartConsumer(c, arm.settings[c]);
      if (connectorChanges(current, arm)) await putConnector({ ...baseConnector, ...arm.settings.connector });
      current = arm;
      await insertAtRate({
        pool,
        runId,
        phase: `abwarm${arm.name}${round}`,
        rate: cfg.rate,
        durationMs: cfg.warmupS * 1000,
        maxInFlight: 32,
        members,
      });
      const phase = `ab${arm.name}${round}`;
      const cpu0 = cpuSample(stackPids(stateDir));
      const metrics0 = await metricsOf(metricsUrls);
      await insertAtRate({ pool, runId, phase, rate: cfg.rate, durationMs: cfg.phaseS * 1000, maxInFlight: 32, members });
      const machineCpuPct = cpuBetween(cpu0, cpuSample(stackPids(stateDir))).machinePct;
      const mine = [...members.values()].filter((m) => m.phase === phase);
      await until(`phase ${phase} delivered`, () => mine.every((m) => m.cdcAt !== undefined), cfg.drainS * 1000);
      const e2e = summarize(mine.flatMap((m) => (m.cdcAt === undefined ? [] : [m.cdcAt - m.committedAt])));
      const stages = chunkTimes(metrics0, await metricsOf(metricsUrls));
      phases.push({ arm: arm.name, round, machineCpuPct, endToEnd: { p50: e2e.p50, p99: e2e.p99, n: e2e.n }, stages });
      log(`  ${arm.name}${round}: end to end p50 ${fmtMs(e2e.p50)}  p99 ${fmtMs(e2e.p99)}  n=${e2e.n}/${mine.length}  machine CPU ${machineCpuPct}%`);
      for (const [stage, c] of Object.entries(stages)) {
        const steps = Object.entries(c.stepMs)
          .map(([step, ms]) => `${step} ${fmtMs(ms)}`)
          .join(', ');
        log(
          `      ${stage.padEnd(9)} ${c.chunks} chunks, ${c.recordsPerChunk.toFixed(1)} records each, ${fmtMs(c.chunkMs)} per chunk of which HTTP ${fmtMs(c.httpMsPerChunk)}; steps ${steps}; a record waited ${fmtMs(c.waitMs)} before its chunk`,
        );
      }
    }
    const measured = [...members.values()].filter((m) => /^ab[AB]\d+$/.test(m.phase));
    const prefix = `bench-${runId}-ab`;
    await until(
      'the audit rows of every measured member',
      async () => (await auditTimes(pool, prefix)).size >= measured.length,
      cfg.drainS * 1000,
      1_000,
    );
    const audited = await auditTimes(pool, prefix);
    const tables = arms.map((a) =>
      hopTable(
        measured.filter((m) => m.phase.startsWith(`ab${a.name}`)),
        hops.cdcTopicAt,
        hops.augmentedAt,
        audited,
      ),
    ) as [HopTable, HopTable];
    printComparison(tables, phases);
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    mkdirSync(cfg.outDir, { recursive: true });
    const path = join(cfg.outDir, `bench-ab-${stamp}.json`);
    const result = {
      runId,
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      config: { ...cfg, outDir: undefined },
      arms: arms.map((a) => ({ name: a.name, settings: describeArm(a) })),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, backgroundCpuPct },
      phases,
      hops: { A: tables[0], B: tables[1] },
    };
    writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path}`);
  } finally {
    log('restoring the defaults');
    const defaults = parseArm('defaults', '');
    for (const c of consumersToRestart(current, defaults)) await restartConsumer(c, {}).catch((e: unknown) => log(`  restart ${c}: ${String(e)}`));
    if (current && connectorChanges(current, defaults)) await putConnector(baseConnector).catch((e: unknown) => log(`  connector: ${String(e)}`));
    await collector.stop();
    await hops.stop();
    await pool.end();
  }
}

/**
 * Per stage, what its chunks looked like during the phase (between two scrapes of its own
 * metrics): how many, how full, how long each took and how much of that was its HTTP call.
 * The rest of a hop (hop time − chunk time) is waiting: for the fetch round, a worker, the commit.
 */
function chunkTimes(before: Record<string, number>, after: Record<string, number>): Record<string, StageChunks> {
  // A consumer restarted at the switch starts its counters from 0: then `after` alone is the phase (and its warm-up).
  const since = (stage: string): Record<string, number> =>
    sumOf(after, 'welcome_batch_seconds_count', { stage }) >= sumOf(before, 'welcome_batch_seconds_count', { stage }) ? before : {};
  const out: Record<string, StageChunks> = {};
  for (const stage of ['augmenter', 'emailer'] as const) {
    const b = since(stage);
    const d = (name: string, match: Record<string, string>): number => sumOf(after, name, match) - sumOf(b, name, match);
    const chunks = d('welcome_batch_seconds_count', { stage });
    const t = timeSplit(b, after)[stage];
    const stepMs: Record<string, number> = {};
    for (const step of labelValues(after, 'welcome_chunk_step_seconds_sum', 'step', { stage }))
      stepMs[step] = (d('welcome_chunk_step_seconds_sum', { stage, step }) * 1000) / chunks;
    const waitMs = (d('welcome_record_wait_seconds_sum', { stage }) * 1000) / d('welcome_record_wait_seconds_count', { stage });
    out[stage] = {
      chunks,
      recordsPerChunk: t.records / chunks,
      chunkMs: (t.batchS * 1000) / chunks,
      httpMsPerChunk: (t.httpS * 1000) / chunks,
      stepMs,
      waitMs,
    };
  }
  return out;
}

function printComparison(t: [HopTable, HopTable], phases: PhaseResult[]): void {
  const w = [38, 9, 9, 9, 9, 7];
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(w[i] ?? 9) : c.padStart(w[i] ?? 9))).join('  ');
  const ratio = (b: number, a: number): string => (Number.isFinite(a) && a > 0 ? `${(b / a).toFixed(2)}×` : '—');
  const out = [
    '',
    `A/B @ ${cfg.rate}/s, ${cfg.rounds} × ${cfg.phaseS} s per arm, interleaved (A ${t[0].complete}/${t[0].total}, B ${t[1].complete}/${t[1].total} members seen at every hop)`,
    `  A: ${describeArm(arms[0])}`,
    `  B: ${describeArm(arms[1])}`,
    `   ${row(['hop', 'A p50', 'B p50', 'A p99', 'B p99', 'B÷A p99'])}`,
  ];
  for (const r of compareArms(t[0], t[1]))
    out.push(`   ${row([r.hop, fmtMs(r.a.p50), fmtMs(r.b.p50), fmtMs(r.a.p99), fmtMs(r.b.p99), ratio(r.b.p99, r.a.p99)])}`);
  const cpu = (arm: string): string =>
    phases
      .filter((p) => p.arm === arm)
      .map((p) => `${p.machineCpuPct}%`)
      .join(', ');
  out.push(`   machine CPU per phase: A ${cpu('A')}; B ${cpu('B')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-ab failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
