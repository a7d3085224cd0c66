/**
 * Scaling with SFMC answering like SFMC: the stand-in holds every call for a realistic
 * latency (its `latencyMs` fault, BENCH_SFMC_LATENCY_MS), and the bench runs
 *  - a cost step: one instance of each consumer at a fixed, comfortable rate — the CPU
 *    seconds each process spends per 1,000 Welcomes, gross and above its idle use, so the
 *    capacity of a bigger machine can be computed from it;
 *  - one step per instance count (1, 2, 3 of each consumer, same groups): a fixed offered rate
 *    above what one instance delivers, and what was delivered per second — the ratio to one
 *    instance says whether replicas buy throughput — with the CPU of each instance.
 * Whatever the emailer does with a slow SFMC (one call per partition at a time, or several)
 * is what this measures: it changes nothing in the consumers.
 */
import type { Admin } from 'kafkajs';
import type { Pool } from 'mysql2/promise';
import { insertAtRate, type BenchMember } from './inserter';
import { startInstance, waitReady, type Instance } from './instances';
import { cpuBetween, cpuSample, groupMembers, metricsOf, timeSplit, type CpuSample } from './probes';
import type { SendCollector } from './sends';
import { sleep, summarize, type Summary } from './stats';

export interface ScalingOptions {
  root: string;
  logsDir: string;
  runId: string;
  pool: Pool;
  admin: Admin;
  collector: SendCollector;
  members: Map<string, BenchMember>;
  sfmcUrl: string;
  latencyMs: number;
  instanceCounts: number[];
  rate: number;
  stepMs: number;
  costRate: number;
  costStepMs: number;
  drainMs: number;
  maxInFlight: number;
  rowsPerTxn: number;
  /** Extra instance i of a stage listens on portBase + i (augmenter) and portBase + 5 + i (emailer). */
  portBase: number;
  /** Started extra instances are pushed here, so the caller stops them (also on failure). */
  extra: Instance[];
  stackMetricsUrls: string[];
  /** CPU of every process (stack's by recorded pid, the bench's, the extra instances'). */
  pids: () => Record<string, number>;
  /** Each process's CPU (% of one core) with the stack idle, from the bench's preflight. */
  idleCpuPct: Record<string, number>;
  log: (line: string) => void;
}

export interface ScaleStep {
  instances: number;
  offered: number;
  inserted: number;
  delivered: number;
  /** Step members delivered ÷ (last delivery − first delivery): capacity when it fell behind. */
  deliveredPerS: number;
  /** Delivered ≥ 95 % of the offered rate and drained: the step shows the rate, not a ceiling. */
  keptUp: boolean;
  drainedMs: number | undefined;
  latency: Summary;
  /** % of one core over the step and its drain, per process; `instances` holds the consumers'. */
  cpuPct: Record<string, number>;
  consumerCpuPct: Record<string, number>;
  machineCpuPct: number;
  emailerHttpShare: number;
  ratioToOne?: number;
}

export interface CostStep {
  rate: number;
  seconds: number;
  delivered: number;
  /** CPU seconds per 1,000 Welcomes, per process: all it used, and what it used above idle. */
  cpuSPer1000: Record<string, { gross: number; aboveIdle: number }>;
  machineCpuPct: number;
}

export interface ScalingResult {
  sfmcLatencyMs: number;
  cost: CostStep;
  steps: ScaleStep[];
  bottleneck: string;
}

const isConsumer = (name: string): boolean => /^(bench-)?(augmenter|emailer)(-\d+)?$/.test(name);

async function setLatency(url: string, latencyMs: number): Promise<void> {
  const res = await fetch(`${url}/__standin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ latencyMs }),
  });
  if (!res.ok) throw new Error(`SFMC stand-in faults answered ${res.status}: ${await res.text()}`);
}

/** Inserts at `rate` for `stepMs`, waits for every member of the step (≤ drainMs), CPU over both. */
async function step(o: ScalingOptions, phase: string, rate: number, stepMs: number, metricsUrls: string[]) {
  const mine = (): BenchMember[] => [...o.members.values()].filter((m) => m.phase === phase);
  const cpu0: CpuSample = cpuSample(o.pids());
  const m0 = await metricsOf(metricsUrls);
  const t0 = Date.now();
  const ins = await insertAtRate({
    pool: o.pool,
    runId: o.runId,
    phase,
    rate,
    durationMs: stepMs,
    maxInFlight: o.maxInFlight,
    rowsPerTxn: o.rowsPerTxn,
    members: o.members,
  });
  const drainStart = Date.now();
  let drainedMs: number | undefined;
  while (Date.now() - drainStart < o.drainMs) {
    await o.collector.pollOnce().catch(() => undefined);
    if (mine().every((m) => m.cdcAt !== undefined)) {
      drainedMs = Date.now() - drainStart;
      break;
    }
    await sleep(250);
  }
  const cpu = cpuBetween(cpu0, cpuSample(o.pids()));
  const m1 = await metricsOf(metricsUrls);
  const members = mine();
  const at = members.flatMap((m) => (m.cdcAt !== undefined ? [m.cdcAt] : []));
  const seconds = (Date.now() - t0) / 1000;
  return { ins, members, at, cpu, seconds, drainedMs, split: timeSplit(m0, m1), t0 };
}

export async function runScaling(o: ScalingOptions): Promise<ScalingResult> {
  await setLatency(o.sfmcUrl, o.latencyMs);
  try {
    // ---- cost: one instance each, a rate every process handles without backlog
    o.log(`   cost: ${o.costRate}/s for ${o.costStepMs / 1000} s, one instance each, SFMC latency ${o.latencyMs} ms`);
    const c = await step(o, 'cost', o.costRate, o.costStepMs, o.stackMetricsUrls);
    const thousands = c.at.length / 1000;
    const cpuSPer1000: CostStep['cpuSPer1000'] = {};
    for (const [name, pct] of Object.entries(c.cpu.procs)) {
      if (thousands <= 0) break;
      const idle = o.idleCpuPct[name] ?? 0;
      cpuSPer1000[name] = {
        gross: +(((pct / 100) * c.seconds) / thousands).toFixed(3),
        aboveIdle: +(((Math.max(0, pct - idle) / 100) * c.seconds) / thousands).toFixed(3),
      };
    }
    const cost: CostStep = { rate: o.costRate, seconds: +c.seconds.toFixed(1), delivered: c.at.length, cpuSPer1000, machineCpuPct: c.cpu.machinePct };

    // ---- throughput per instance count
    const steps: ScaleStep[] = [];
    for (const n of o.instanceCounts) {
      for (let i = o.extra.length / 2 + 2; i <= n; i++) {
        o.extra.push(
          startInstance(o.root, o.logsDir, 'augmenter', i, o.portBase + i),
          startInstance(o.root, o.logsDir, 'emailer', i, o.portBase + 5 + i),
        );
      }
      await Promise.all(o.extra.map((e) => waitReady(e, 90_000)));
      const deadline = Date.now() + 90_000;
      for (;;) {
        const [a, e] = await Promise.all([groupMembers(o.admin, 'welcome-augmenter'), groupMembers(o.admin, 'welcome-emailer')]);
        if (a.state === 'Stable' && e.state === 'Stable' && a.members >= n && e.members >= n) break;
        if (Date.now() > deadline) throw new Error(`consumer groups not stable with ${n} members each after 90 s`);
        await sleep(500);
      }
      const urls = [...o.stackMetricsUrls, ...o.extra.map((e) => `http://127.0.0.1:${e.port}`)];
      const s = await step(o, `scale-x${n}`, o.rate, o.stepMs, urls);
      const first = Math.min(...s.at);
      const last = Math.max(...s.at);
      const deliveredPerS = s.at.length > 1 && last > first ? Math.round((s.at.length / (last - first)) * 1000) : 0;
      const consumerCpuPct = Object.fromEntries(Object.entries(s.cpu.procs).filter(([name]) => isConsumer(name)));
      const share = s.split.emailer.batchS > 0 ? s.split.emailer.httpS / s.split.emailer.batchS : 0;
      const r: ScaleStep = {
        instances: n,
        offered: o.rate,
        inserted: s.ins.inserted,
        delivered: s.at.length,
        deliveredPerS,
        keptUp: s.drainedMs !== undefined && deliveredPerS >= o.rate * 0.95 && s.ins.achievedRate >= o.rate * 0.95,
        drainedMs: s.drainedMs,
        latency: summarize(s.members.flatMap((m) => (m.cdcAt !== undefined ? [m.cdcAt - m.committedAt] : []))),
        cpuPct: s.cpu.procs,
        consumerCpuPct,
        machineCpuPct: s.cpu.machinePct,
        emailerHttpShare: +share.toFixed(2),
      };
      const one = steps[0];
      if (one && one.deliveredPerS > 0) r.ratioToOne = +(r.deliveredPerS / one.deliveredPerS).toFixed(2);
      steps.push(r);
      o.log(
        `   ${n} instance(s) each: offered ${o.rate}/s (inserted ${Math.round(s.ins.achievedRate)}/s), delivered ${deliveredPerS}/s` +
          `${r.ratioToOne !== undefined ? ` = ${r.ratioToOne}× one` : ''}${r.keptUp ? ' (kept up: a rate, not a ceiling)' : ''}; ` +
          `p50 ${Math.round(r.latency.p50)} ms; emailer waits on SFMC ${Math.round(share * 100)}% of batch time; ` +
          `consumers' CPU ${Object.entries(consumerCpuPct)
            .map(([k, v]) => `${k} ${v}%`)
            .join(', ')}; machine ${s.cpu.machinePct}%`,
      );
    }
    return { sfmcLatencyMs: o.latencyMs, cost, steps, bottleneck: scalingVerdict(steps, o.rate) };
  } finally {
    await setLatency(o.sfmcUrl, 0).catch(() => undefined);
  }
}

/** What held delivered throughput in the scaling steps, in one sentence. */
export function scalingVerdict(steps: ScaleStep[], rate: number): string {
  const last = steps[steps.length - 1];
  if (!last) return 'no step ran';
  if (steps.every((s) => s.keptUp)) return `every instance count kept up with ${rate}/s: raise BENCH_SCALE_RATE to find a ceiling`;
  const one = steps[0] as ScaleStep;
  // Both can hold at once (on a shared 2-core box they do): name each that applies.
  const held: string[] = [];
  if (one.emailerHttpShare > 0.5)
    held.push(`SFMC latency (the emailer waits on it ${Math.round(one.emailerHttpShare * 100)}% of batch time with one instance)`);
  if (last.machineCpuPct >= 90)
    held.push(
      `machine CPU (${last.machineCpuPct}% of all cores at ${last.instances} instances: replicas share the cores with Kafka, Connect and the DB)`,
    );
  if (held.length > 0) return held.join('; ');
  return `neither SFMC waits nor the machine's CPU: see cpuPct per process in the JSON`;
}
