/**
 * Setup holds of one process: a scope (`org:UA`, `warehouse`, `registry`, the stage) whose
 * work is refused for a reason of our own setup — credentials, scope, a URL, a send
 * definition — or whose answers stayed unknown for too long. Nothing held is dead-lettered:
 * the partitions carrying it pause and retry every ≤ 10 s (each retry is the probe), and the
 * first good answer for the scope releases it and resumes every partition waiting on it at
 * once. welcome_hold{scope,reason} says so (alert WelcomeSetupHold), and so does /healthz.
 */
import type { Gauge } from 'prom-client';
import type { Logger } from './logger';

export interface Hold {
  scope: string;
  /** The answer row (or error code) that caused it. */
  reason: string;
  message: string;
  /** Epoch ms. */
  since: number;
}

export interface Holds {
  /** Idempotent: the first hold of a scope (and its reason) stands until released; logged at error level. */
  hold(scope: string, reason: string, message: string): void;
  /** Idempotent; releasing a scope that is not held costs a map lookup. */
  release(scope: string): void;
  list(): Hold[];
  onRelease(listener: (scope: string) => void): void;
}

export function createHolds(deps: { logger: Logger; gauge?: Gauge<'scope' | 'reason'>; now?: () => number }): Holds {
  const now = deps.now ?? Date.now;
  const held = new Map<string, Hold>();
  const listeners: ((scope: string) => void)[] = [];
  return {
    hold(scope, reason, message) {
      // Held already: the first reason stands (one answer row per scope, no flapping between rows).
      if (held.has(scope)) return;
      held.set(scope, { scope, reason, message, since: now() });
      deps.gauge?.set({ scope, reason }, 1);
      deps.logger.error(
        { scope, reason, why: message },
        'setup hold: our setup is refused, pausing this scope and dead-lettering nothing until a retry is answered',
      );
    },
    release(scope) {
      const current = held.get(scope);
      if (!current) return;
      held.delete(scope);
      deps.gauge?.set({ scope, reason: current.reason }, 0);
      deps.logger.warn(
        { scope, reason: current.reason, heldS: Math.round((now() - current.since) / 1000) },
        'setup hold released: a retry was answered',
      );
      for (const l of listeners) l(scope);
    },
    list: () => [...held.values()],
    onRelease: (l) => void listeners.push(l),
  };
}
