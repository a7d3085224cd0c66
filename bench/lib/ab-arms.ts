/**
 * The pure half of `make bench-ab`: what an arm is, the order the arms run in, and the
 * per-arm comparison. An arm is a set of settings, each for one target:
 *   augmenter:KEY=VALUE / emailer:KEY=VALUE — an environment variable of that consumer
 *     (the driver restarts it with the variable set);
 *   connector:KEY=VALUE — a key of the members-source connector's config (the driver PUTs it).
 * BENCH_AB_A and BENCH_AB_B hold one arm each, settings separated by ';' (empty: defaults).
 */
import type { HopTable } from './hops';

export type Target = 'augmenter' | 'emailer' | 'connector';
export const TARGETS: readonly Target[] = ['augmenter', 'emailer', 'connector'];

export interface Arm {
  name: string;
  settings: Record<Target, Record<string, string>>;
}

export function parseArm(name: string, spec: string | undefined): Arm {
  const settings: Arm['settings'] = { augmenter: {}, emailer: {}, connector: {} };
  for (const part of (spec ?? '')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(augmenter|emailer|connector):([A-Za-z0-9_.]+)=(.*)$/.exec(part);
    if (!m) throw new Error(`BENCH_AB_${name}: "${part}" is not target:KEY=VALUE (target: ${TARGETS.join(', ')})`);
    settings[m[1] as Target][m[2] as string] = m[3] as string;
  }
  return { name, settings };
}

export const describeArm = (a: Arm): string =>
  TARGETS.flatMap((t) => Object.entries(a.settings[t]).map(([k, v]) => `${t}:${k}=${v}`)).join('; ') || '(defaults)';

/** Consumers whose settings differ between two arms: those are restarted at a switch. */
export function consumersToRestart(from: Arm | undefined, to: Arm): ('augmenter' | 'emailer')[] {
  return (['augmenter', 'emailer'] as const).filter((t) => !from || !sameSettings(from.settings[t], to.settings[t]));
}

export const connectorChanges = (from: Arm | undefined, to: Arm): boolean => !from || !sameSettings(from.settings.connector, to.settings.connector);

function sameSettings(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] === b[k]);
}

/**
 * A, B, B, A, A, B, …: each arm `rounds` times, the order flipped every round, so a change in the
 * machine's background load hits both. With A always first, a load that kept falling (or rising)
 * through the run favoured B (or A) in every round (seen 2026-12-01 16:25: every step, HTTP
 * included, shrank phase after phase); flipped, a steady trend cancels over two rounds.
 */
export function schedule(arms: readonly [Arm, Arm], rounds: number): { arm: Arm; round: number }[] {
  return Array.from({ length: rounds * 2 }, (_, i) => {
    const round = Math.floor(i / 2) + 1;
    const first = round % 2 === 1 ? 0 : 1;
    return { arm: arms[i % 2 === 0 ? first : 1 - first] as Arm, round };
  });
}

/** A stage's chunks in one phase, from its own metrics: means per chunk, and the mean wait of a record before its chunk started. */
export interface StageChunks {
  chunks: number;
  recordsPerChunk: number;
  chunkMs: number;
  httpMsPerChunk: number;
  /** welcome_chunk_step_seconds per step (handler, produce, commit, audit-read): mean ms per chunk. */
  stepMs: Record<string, number>;
  /** welcome_record_wait_seconds: mean ms from the record's Kafka timestamp to its chunk's start. */
  waitMs: number;
}

export interface PhaseResult {
  arm: string;
  round: number;
  /** Machine CPU % (both cores) while the phase ran: what else was running shows here. */
  machineCpuPct: number;
  endToEnd: { p50: number; p99: number; n: number };
  /** Per stage: chunks handled, records per chunk, ms per chunk and its HTTP ms (the stage's own metrics). */
  stages?: Record<string, StageChunks>;
}

/** One row per hop: each arm's p50 and p99 (all its phases pooled) and B ÷ A. */
export function compareArms(a: HopTable, b: HopTable): { hop: string; a: { p50: number; p99: number }; b: { p50: number; p99: number } }[] {
  return a.rows.map((row, i) => {
    const other = b.rows[i];
    if (!other || other.hop !== row.hop) throw new Error(`hop tables differ at row ${i}`);
    return { hop: row.hop, a: { p50: row.summary.p50, p99: row.summary.p99 }, b: { p50: other.summary.p50, p99: other.summary.p99 } };
  });
}
