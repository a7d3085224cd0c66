/**
 * What the bench watches besides the stand-in: records per topic, consumer lag per group,
 * CPU per stack process (from /proc, by the pids the stack recorded) and the consumers'
 * own metrics — enough to say which hop a backlog sits in and what it is waiting for.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { groupLag } from '../../consumers/shared/kafka';
import { scrape, sumOf, type Series } from '../../tools/pipeline-status';

export interface Topics {
  member: string;
  augmented: string;
  sent: string;
}

export interface PipelinePoint {
  t: number;
  /** records ever written to the CDC topic (sum of high watermarks) */
  cdcEnd: number;
  augmenterLag: number;
  emailerLag: number;
}

export async function topicEnd(admin: Admin, topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((a, p) => a + Number(p.high), 0);
}

export async function pipelinePoint(admin: Admin, topics: Topics): Promise<PipelinePoint> {
  const [cdcEnd, aug, em] = await Promise.all([
    topicEnd(admin, topics.member),
    groupLag(admin, 'welcome-augmenter', topics.member),
    groupLag(admin, 'welcome-emailer', topics.augmented),
  ]);
  return { t: Date.now(), cdcEnd, augmenterLag: aug.reduce((a, p) => a + p.lag, 0), emailerLag: em.reduce((a, p) => a + p.lag, 0) };
}

export async function groupMembers(admin: Admin, group: string): Promise<{ state: string; members: number }> {
  const { groups } = await admin.describeGroups([group]);
  const g = groups[0];
  return { state: g?.state ?? 'unknown', members: g?.members.length ?? 0 };
}

// ------------------------------------------------------------------ CPU
const TICKS = 100; // USER_HZ on Linux

function procTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return undefined;
  }
}

function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { busy: total - idle, total };
}

export interface CpuSample {
  t: number;
  procs: Record<string, number | undefined>;
  machine: { busy: number; total: number };
}

/** The stack's services by recorded pid, plus anything extra (the bench itself, extra consumers). */
export function stackPids(stateDir: string, extra: Record<string, number> = {}): Record<string, number> {
  const dir = join(stateDir, 'pids');
  const out: Record<string, number> = {};
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.pid'))) {
      const pid = Number(readFileSync(join(dir, f), 'utf8').trim());
      if (pid > 0) out[f.replace(/\.pid$/, '')] = pid;
    }
  }
  return { ...out, ...extra };
}

export function cpuSample(pids: Record<string, number>): CpuSample {
  const procs: Record<string, number | undefined> = {};
  for (const [name, pid] of Object.entries(pids)) procs[name] = procTicks(pid);
  return { t: Date.now(), procs, machine: machineTicks() };
}

/** % of one core per process, and of the whole machine (100 % = all cores busy). */
export function cpuBetween(a: CpuSample, b: CpuSample): { procs: Record<string, number>; machinePct: number } {
  const seconds = (b.t - a.t) / 1000;
  const procs: Record<string, number> = {};
  for (const [name, end] of Object.entries(b.procs)) {
    const start = a.procs[name];
    // a process restarted in between (same name, new pid) has fewer ticks: no figure for it
    if (end !== undefined && start !== undefined && end >= start && seconds > 0) procs[name] = Math.round(((end - start) / TICKS / seconds) * 100);
  }
  const total = b.machine.total - a.machine.total;
  return { procs, machinePct: total > 0 ? Math.round(((b.machine.busy - a.machine.busy) / total) * 100) : NaN };
}

// ------------------------------------------------------------------ consumer metrics
export async function metricsOf(urls: string[]): Promise<Series> {
  return (await scrape(urls)).series;
}

/** Seconds spent per stage in the batch loop vs. in its HTTP dependency, between two scrapes. */
export interface StageTime {
  batchS: number;
  httpS: number;
  records: number;
  retries: number;
  pauses: number;
}

export function timeSplit(before: Series, after: Series): { augmenter: StageTime; emailer: StageTime } {
  const d = (name: string, match: Record<string, string>): number => sumOf(after, name, match) - sumOf(before, name, match);
  return {
    augmenter: {
      batchS: d('welcome_batch_seconds_sum', { stage: 'augmenter' }),
      httpS: d('welcome_http_request_seconds_sum', { stage: 'augmenter', target: 'dw-lookup' }),
      records: d('welcome_records_consumed_total', { stage: 'augmenter' }),
      retries: d('welcome_retries_total', { stage: 'augmenter' }),
      pauses: d('welcome_partition_pauses_total', { stage: 'augmenter' }),
    },
    emailer: {
      batchS: d('welcome_batch_seconds_sum', { stage: 'emailer' }),
      httpS: d('welcome_http_request_seconds_sum', { stage: 'emailer', target: 'sfmc-send' }),
      records: d('welcome_records_consumed_total', { stage: 'emailer' }),
      retries: d('welcome_retries_total', { stage: 'emailer' }),
      pauses: d('welcome_partition_pauses_total', { stage: 'emailer' }),
    },
  };
}
