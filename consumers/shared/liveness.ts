/**
 * Is this process still able to do its work? Judged on the process, not its group: liveness
 * fails — once, for good — when the kafkajs consumer crashed and will not restart, stopped
 * without being asked to, did not re-join within `restartGraceMs` of a crash it restarts from,
 * or when it owns partitions with records waiting and no chunk attempt of its own has finished
 * for `stallTimeoutMs`. An attempt that ends in a pause (throttled, a setup hold, an outage)
 * counts: such a replica is alive and says why it waits (metrics, /healthz); a replica with no
 * partitions (more replicas than partitions) is never stalled; a hung one is. The caller exits
 * the process on failure, so its supervisor starts a fresh one. Readiness is separate
 * (consumer-process.ts).
 */
export interface LivenessOptions {
  /** Owned partitions with lag and no attempt finished for this long → failed. */
  stallTimeoutMs: number;
  /** A crash kafkajs restarts from must be followed by a group join within this. */
  restartGraceMs: number;
  now?: () => number;
}

export interface Liveness {
  /** A chunk attempt of this process finished with a classified answer (done, paused, held). */
  attempted(): void;
  /** Lag per partition of the input topic, as just measured; only this process's partitions count. */
  lag(partitions: readonly { partition: number; lag: number }[]): void;
  crashed(restart: boolean, why: string): void;
  /** Joined the group with these partitions of the input topic. */
  joined(partitions: readonly number[]): void;
  /**
   * The consumer stopped and nobody asked it to. kafkajs emits STOP on every crash too (its
   * onCrash disconnects first), before CRASH says whether it restarts: so a stop is judged
   * like a restarting crash — it must be followed by a group join within restartGraceMs.
   */
  stopped(): void;
  /** Periodic check of the time-based conditions. */
  check(): void;
  /** Undefined while live; the reason once failed. */
  failure(): string | undefined;
  onFail(listener: (reason: string) => void): void;
}

export function createLiveness(o: LivenessOptions): Liveness {
  const now = o.now ?? Date.now;
  let lastAttempt = now();
  let crashedAt: number | undefined;
  let failed: string | undefined;
  let owned = new Set<number>();
  const listeners: ((reason: string) => void)[] = [];

  const fail = (reason: string): void => {
    if (failed !== undefined) return;
    failed = reason;
    listeners.forEach((l) => l(reason));
  };

  return {
    attempted: () => void (lastAttempt = now()),
    lag(partitions) {
      const waiting = partitions.filter((p) => owned.has(p.partition) && p.lag > 0);
      if (waiting.length === 0)
        lastAttempt = now(); // nothing of ours to do is not a stall
      else if (now() - lastAttempt > o.stallTimeoutMs) {
        const total = waiting.reduce((a, p) => a + p.lag, 0);
        fail(
          `no chunk attempt finished for ${Math.round((now() - lastAttempt) / 1000)} s while partition(s) ${waiting.map((p) => p.partition).join(', ')} of this process lag ${total} record(s) (limit ${o.stallTimeoutMs / 1000} s)`,
        );
      }
    },
    crashed(restart, why) {
      owned = new Set();
      if (!restart) fail(`kafka consumer crashed and will not restart: ${why}`);
      else crashedAt ??= now();
    },
    joined(partitions) {
      crashedAt = undefined;
      owned = new Set(partitions);
      lastAttempt = Math.max(lastAttempt, now() - o.stallTimeoutMs / 2); // a fresh member gets time to catch up
    },
    stopped() {
      crashedAt ??= now();
    },
    check() {
      if (crashedAt !== undefined && now() - crashedAt > o.restartGraceMs) {
        fail(`kafka consumer stopped or crashed ${Math.round((now() - crashedAt) / 1000)} s ago and has not re-joined its group`);
      }
    },
    failure: () => failed,
    onFail: (l) => void listeners.push(l),
  };
}
