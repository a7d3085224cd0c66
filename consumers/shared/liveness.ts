/**
 * Is this consumer still able to do its work? Liveness fails — once, for good — when the
 * kafkajs consumer crashed and will not restart, stopped without being asked to, did not
 * re-join within `restartGraceMs` of a crash it restarts from, or when the stage committed
 * nothing for `stallTimeoutMs` while its group has lag. The caller exits the process on
 * failure, so whatever supervises it (Kubernetes, Docker, systemd, the fault suite) starts a
 * fresh one. Readiness is separate (consumer-process.ts).
 */
export interface LivenessOptions {
  /** No commit for this long while the group has lag → failed. */
  stallTimeoutMs: number;
  /** A crash kafkajs restarts from must be followed by a group join within this. */
  restartGraceMs: number;
  now?: () => number;
}

export interface Liveness {
  /** A chunk was committed. */
  progress(): void;
  /** Total lag of the group on the input topic, as just measured. */
  lag(total: number): void;
  crashed(restart: boolean, why: string): void;
  joined(): void;
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
  let lastProgress = now();
  let crashedAt: number | undefined;
  let failed: string | undefined;
  const listeners: ((reason: string) => void)[] = [];

  const fail = (reason: string): void => {
    if (failed !== undefined) return;
    failed = reason;
    listeners.forEach((l) => l(reason));
  };

  return {
    progress: () => void (lastProgress = now()),
    lag(total) {
      if (total <= 0)
        lastProgress = now(); // nothing to do is not a stall
      else if (now() - lastProgress > o.stallTimeoutMs) {
        fail(
          `no offset committed for ${Math.round((now() - lastProgress) / 1000)} s while the group lags ${total} record(s) (limit ${o.stallTimeoutMs / 1000} s)`,
        );
      }
    },
    crashed(restart, why) {
      if (!restart) fail(`kafka consumer crashed and will not restart: ${why}`);
      else crashedAt ??= now();
    },
    joined() {
      crashedAt = undefined;
      lastProgress = Math.max(lastProgress, now() - o.stallTimeoutMs / 2); // a fresh member gets time to catch up
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
