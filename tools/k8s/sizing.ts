/**
 * CPU and memory of each consumer for a stated design signup rate, from measured figures:
 * CPU seconds per 1,000 Welcomes from the bench's cost line (docs/performance.md, the latest
 * full `make bench`; a test holds these numbers to that line), and each stage's resident memory
 * as the container test measured it (make test-containers). Pure: figures and rate in, resources out.
 */
export interface StageCost {
  /** CPU seconds per 1,000 Welcomes, gross (idle polling included), at 500/s. */
  cpuSecondsPer1000: number;
  /** Resident memory of one instance, MiB: the highest seen while it worked. */
  rssMiB: number;
}

/** Which run the figures come from (shown in the rendered manifests' annotations). */
export const COST_SOURCE =
  'docs/performance.md: make bench 2026-12-01 16:58 UTC (CPU per 1,000 at 500/s); RSS: make test-containers 2026-12-07 (peak VmHWM)';

export const STAGE_COSTS: Record<'augmenter' | 'emailer' | 'delivery-status', StageCost> = {
  augmenter: { cpuSecondsPer1000: 0.59, rssMiB: 112 },
  emailer: { cpuSecondsPer1000: 0.28, rssMiB: 122 },
  'delivery-status': { cpuSecondsPer1000: 0.14, rssMiB: 130 },
};

/** Bursts above the design rate, GC and startup: requests are this multiple of the steady cost. */
export const CPU_HEADROOM = 2;
/**
 * Memory limit over the measured resident size: the container test's peak came from 45 members,
 * and Node's heap grows with a full chunk (500 records) in flight per partition.
 */
export const MEMORY_HEADROOM = 2;
const MIN_CPU_MILLIS = 50;

export interface Resources {
  requests: { cpu: string; memory: string };
  limits: { memory: string };
}

/**
 * requests.cpu = cost × rate / 1,000 × headroom, spread over `replicas` (KEDA adds replicas on
 * lag, so each is sized for its share at the minimum count); memory request = limit (no
 * overcommit of a process that cannot shed memory). No CPU limit: throttling a consumer adds
 * latency to every Welcome, and requests already reserve what the design rate needs.
 */
export function stageResources(cost: StageCost, signupsPerSecond: number, replicas = 1): Resources {
  const millis = Math.max(
    MIN_CPU_MILLIS,
    Math.ceil((((cost.cpuSecondsPer1000 * signupsPerSecond) / 1000) * CPU_HEADROOM * 1000) / replicas / 10) * 10,
  );
  const memory = `${Math.ceil((cost.rssMiB * MEMORY_HEADROOM) / 32) * 32}Mi`;
  return { requests: { cpu: `${millis}m`, memory }, limits: { memory } };
}
