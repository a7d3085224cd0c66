/**
 * The throughput ramp: steps of rising insert rates; each step is "sustained" when the
 * inserts kept the rate, at least 97 % of what was inserted during the step was delivered
 * during it, the end-to-end backlog (inserted, not yet accepted by SFMC) stayed bounded, and
 * what was left drained within the next few seconds. Past the configured rates the ramp goes
 * on (×1.5) until a step fails, so every run names a ceiling: at that step the backlog is
 * located hop by hop (DB → Debezium → augmenter → emailer) and the hop's time split and CPU
 * say what it waits for. (Issue 25: the old verdict called a 4,000/s step that delivered
 * 3,644/s sustained, and a ramp whose every step passed named no ceiling.)
 */
import type { Admin } from 'kafkajs';
import type { Pool } from 'mysql2/promise';
import { insertAtRate, type BenchMember } from './inserter';
import { cpuBetween, cpuSample, metricsOf, pipelinePoint, timeSplit, type Topics } from './probes';
import type { SendCollector } from './sends';
import { sleep, slope, summarize, type Summary } from './stats';

export interface StepResult {
  offered: number;
  inserted: number;
  achievedInsertRate: number;
  delivered: number;
  deliveredRate: number;
  backlogEnd: number;
  backlogSlopePerS: number;
  sustained: boolean;
  why: string;
  latency: Summary;
  drainedMs: number | undefined;
  backlogByHop: Record<string, number>;
  cpuPct: Record<string, number>;
  machineCpuPct: number;
  timeSplit: ReturnType<typeof timeSplit>;
}

export interface RampResult {
  label: string;
  steps: StepResult[];
  maxSustained: number;
  bottleneck: string;
  evidence: string;
}

export interface RampOptions {
  label: string;
  runId: string;
  pool: Pool;
  admin: Admin;
  topics: Topics;
  collector: SendCollector;
  members: Map<string, BenchMember>;
  rates: number[];
  stepMs: number;
  drainMs: number;
  /** A sustained step's backlog is gone within this long after the step (default 3 s). */
  drainWithinMs?: number;
  /** The ramp goes on past `rates` (×1.5) until a step fails, up to this rate (default 32,000/s). */
  maxRate?: number;
  maxInFlight: number;
  rowsPerTxn: number;
  pids: () => Record<string, number>;
  metricsUrls: string[];
  log: (line: string) => void;
}

/**
 * Why a step was not sustained (none: it was). A growing backlog counts only once it is more than
 * half a second of inflow at the step's end: the backlog is sampled against deliveries the
 * collector has seen, which arrive in polls, so a backlog of a few chunks shows a slope that is
 * the polling's, not a stage falling behind (seen: 1,000/s, 134 pending at the end, slope 50/s).
 */
export function unsustained(s: {
  rate: number;
  achievedRate: number;
  backlogSlopePerS: number;
  backlogEnd: number;
  /** Rows inserted during the step, and how many of them were delivered (accepted by SFMC) before it ended. */
  inserted?: number;
  delivered?: number;
}): string[] {
  const reasons: string[] = [];
  if (s.achievedRate < s.rate * 0.95) reasons.push(`inserts reached only ${Math.round(s.achievedRate)}/s`);
  if (s.inserted !== undefined && s.delivered !== undefined && s.delivered < s.inserted * 0.97)
    reasons.push(
      `delivered ${s.delivered} of ${s.inserted} inserted during the step (${Math.floor((s.delivered / Math.max(1, s.inserted)) * 100)} % < 97 %)`,
    );
  if (s.backlogSlopePerS > s.rate * 0.05 && s.backlogEnd > s.rate * 0.5) reasons.push(`backlog grew ${Math.round(s.backlogSlopePerS)}/s`);
  if (s.backlogEnd > Math.max(100, s.rate * 1.5)) reasons.push(`${s.backlogEnd} not yet sent at step end (> 1.5 s of inflow)`);
  return reasons;
}

/** Why the drain after a step disqualifies it (undefined: it drained in time). */
export function drainedLate(drainedMs: number | undefined, withinMs: number): string | undefined {
  if (drainedMs === undefined) return 'did not drain';
  return drainedMs > withinMs ? `backlog drained only ${(drainedMs / 1000).toFixed(1)} s after the step (> ${withinMs / 1000} s)` : undefined;
}

/** The step after `rate` at index `i` of `rates`: the next configured one, then ×1.5 (rounded to 500) up to `maxRate`. */
export function nextRate(rates: number[], i: number, maxRate: number): number | undefined {
  if (i + 1 < rates.length) return rates[i + 1];
  const last = rates[i] ?? 0;
  const next = Math.ceil((last * 1.5) / 500) * 500;
  return next > last && next <= maxRate ? next : undefined;
}

const pendingOf = (ms: BenchMember[]): number => ms.filter((m) => m.cdcAt === undefined).length;

export async function runRamp(o: RampOptions): Promise<RampResult> {
  const steps: StepResult[] = [];
  const rates = [...o.rates];
  for (let i = 0; i < rates.length; i++) {
    const rate = rates[i] as number;
    const phase = `${o.label}-${rate}`;
    const cpu0 = cpuSample(o.pids());
    const [m0, p0] = await Promise.all([metricsOf(o.metricsUrls), pipelinePoint(o.admin, o.topics)]);
    const t0 = Date.now();
    const mine = (): BenchMember[] => [...o.members.values()].filter((m) => m.phase === phase);
    const backlog: { x: number; y: number }[] = [];
    const ins = await insertAtRate({
      pool: o.pool,
      runId: o.runId,
      phase,
      rate,
      durationMs: o.stepMs,
      maxInFlight: o.maxInFlight,
      rowsPerTxn: o.rowsPerTxn,
      members: o.members,
      onTick: (inserted, elapsed) => backlog.push({ x: elapsed / 1000, y: inserted - mine().filter((m) => m.cdcAt !== undefined).length }),
    });
    const tEnd = Date.now();
    await o.collector.pollOnce().catch(() => undefined);
    const [m1, p1] = await Promise.all([metricsOf(o.metricsUrls), pipelinePoint(o.admin, o.topics)]);
    const cpu = cpuBetween(cpu0, cpuSample(o.pids()));
    const members = mine();
    const backlogEnd = pendingOf(members);
    const cdcWritten = p1.cdcEnd - p0.cdcEnd;
    const backlogByHop = {
      'DB (not inserted)': Math.max(0, Math.round((rate * o.stepMs) / 1000) - ins.inserted),
      'Debezium (committed, not in topic)': Math.max(0, ins.inserted - cdcWritten),
      'augmenter (lag)': Math.max(0, p1.augmenterLag - p0.augmenterLag),
      'emailer (lag)': Math.max(0, p1.emailerLag - p0.emailerLag),
    };
    const delivered = members.filter((m) => m.cdcAt !== undefined && m.cdcAt <= tEnd).length;
    const second = backlog.filter((b) => b.x >= o.stepMs / 2000);
    const backlogSlopePerS = slope(second);
    const reasons = unsustained({ rate, achievedRate: ins.achievedRate, backlogSlopePerS, backlogEnd, inserted: ins.inserted, delivered });
    // drain before the next step, so each step starts from an empty pipeline
    const drainStart = Date.now();
    let drainedMs: number | undefined;
    while (Date.now() - drainStart < o.drainMs) {
      await o.collector.pollOnce().catch(() => undefined);
      if (pendingOf(members) === 0) {
        drainedMs = Date.now() - drainStart;
        break;
      }
      await sleep(250);
    }
    const late = drainedLate(drainedMs, o.drainWithinMs ?? 3_000);
    if (late) reasons.push(late);
    const latency = summarize(members.filter((m) => m.cdcAt !== undefined).map((m) => (m.cdcAt as number) - m.committedAt));
    const step: StepResult = {
      offered: rate,
      inserted: ins.inserted,
      achievedInsertRate: Math.round(ins.achievedRate),
      delivered,
      deliveredRate: Math.round((delivered / (tEnd - t0)) * 1000),
      backlogEnd,
      backlogSlopePerS: Math.round(backlogSlopePerS),
      sustained: reasons.length === 0,
      why: reasons.join('; ') || 'bounded',
      latency,
      drainedMs,
      backlogByHop,
      cpuPct: cpu.procs,
      machineCpuPct: cpu.machinePct,
      timeSplit: timeSplit(m0, m1),
    };
    steps.push(step);
    o.log(
      `  ${o.label} ${rate}/s: inserted ${step.achievedInsertRate}/s, delivered ${step.deliveredRate}/s, backlog at end ${backlogEnd}, p50 ${Math.round(latency.p50)} ms p99 ${Math.round(latency.p99)} ms, CPU ${cpu.machinePct}% → ${step.sustained ? 'sustained' : `NOT sustained (${step.why})`}`,
    );
    if (!step.sustained) break;
    const next = nextRate(rates, i, o.maxRate ?? 32_000);
    if (next !== undefined && i + 1 === rates.length) {
      o.log(`  ${o.label}: every configured step sustained, going on at ${next}/s until one fails`);
      rates.push(next);
    }
  }
  const ok = steps.filter((s) => s.sustained);
  const failed = steps.find((s) => !s.sustained);
  const { bottleneck, evidence } = failed
    ? locate(failed)
    : { bottleneck: 'not reached', evidence: `every step up to ${rates[rates.length - 1]}/s was sustained (BENCH_RAMP_MAX caps the ramp)` };
  return { label: o.label, steps, maxSustained: ok.length ? Math.max(...ok.map((s) => s.offered)) : 0, bottleneck, evidence };
}

/** Where the backlog sat when the lag stopped being bounded, and what that hop waited on. */
export function locate(s: StepResult): { bottleneck: string; evidence: string } {
  const [hop, size] = Object.entries(s.backlogByHop).sort((a, b) => b[1] - a[1])[0] ?? ['unknown', 0];
  const cpu = Object.entries(s.cpuPct)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([p, v]) => `${p} ${v}%`)
    .join(', ');
  const share = (x: { batchS: number; httpS: number }): number => (x.batchS > 0 ? x.httpS / x.batchS : 0);
  let bottleneck = hop.replace(/ \(.*\)$/, '');
  if (hop.startsWith('augmenter') && share(s.timeSplit.augmenter) > 0.5) bottleneck = 'warehouse API (augmenter waits on lookups)';
  if (hop.startsWith('emailer') && share(s.timeSplit.emailer) > 0.5) bottleneck = 'SFMC stand-in (emailer waits on sends)';
  if (s.machineCpuPct >= 90) bottleneck += `; machine CPU-bound (${s.machineCpuPct}% of all cores)`;
  const evidence =
    `at ${s.offered}/s: ${Math.round(size)} records backed up in ${hop}; ` +
    `HTTP share of batch time: augmenter ${Math.round(share(s.timeSplit.augmenter) * 100)}%, emailer ${Math.round(share(s.timeSplit.emailer) * 100)}%; ` +
    `CPU (% of one core): ${cpu}; machine ${s.machineCpuPct}%`;
  return { bottleneck, evidence };
}
