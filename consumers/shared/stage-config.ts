/**
 * The timing of a stage's group membership and chunks, from the environment, validated so
 * that the budgets add up (see docs: failure model, "timeouts that add up"):
 *   heartbeat (session / 6) < chunk budget < session timeout,
 *   chunk budget + produce deadline (2 s) + commit deadline (1.5 s) + leaving the group (1 s)
 *     ≤ the shutdown deadline (9 s), and < the rebalance timeout (budget + 10 s),
 *   longest pause (Retry-After cap 60 s) + chunk budget < stall timeout.
 */
import { type Env, int } from './env';
import { ConfigError } from './errors';
import { SHUTDOWN_DEADLINE_MS } from './process';
import { COMMIT_DEADLINE_MS, PRODUCE_DEADLINE_MS } from './stage';

/** LeaveGroup and the disconnects after the last commit of a shutdown. */
const LEAVE_MS = 1_000;

export interface StageTuning {
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  chunkBudgetMs: number;
  isolateAfter: number;
  stallTimeoutMs: number;
  restartGraceMs: number;
}

/** The longest a Retry-After pauses a partition at once (chunk.ts DEFAULT_CHUNK_POLICY.maxPauseMs). */
const MAX_PAUSE_MS = 60_000;

export function loadStageTuning(env: Env): StageTuning {
  // 6 s is the broker's default group.min.session.timeout.ms: a kill -9'd member is noticed within it.
  const sessionTimeoutMs = int(env, 'KAFKA_SESSION_TIMEOUT_MS', 6_000, 6_000, 300_000);
  const chunkBudgetMs = int(env, 'CHUNK_BUDGET_MS', 4_000, 500, 300_000);
  if (chunkBudgetMs > (sessionTimeoutMs * 3) / 4) {
    throw new ConfigError(
      `CHUNK_BUDGET_MS (${chunkBudgetMs}) must be at most 3/4 of KAFKA_SESSION_TIMEOUT_MS (${sessionTimeoutMs}): a rebalance waits for the slowest in-flight chunk`,
    );
  }
  const afterChunk = PRODUCE_DEADLINE_MS + COMMIT_DEADLINE_MS + LEAVE_MS;
  if (chunkBudgetMs + afterChunk > SHUTDOWN_DEADLINE_MS) {
    throw new ConfigError(
      `CHUNK_BUDGET_MS (${chunkBudgetMs}) must leave ${afterChunk} ms (produce ${PRODUCE_DEADLINE_MS}, commit ${COMMIT_DEADLINE_MS}, leave ${LEAVE_MS}) inside the ${SHUTDOWN_DEADLINE_MS} ms shutdown deadline`,
    );
  }
  const stallTimeoutMs = int(env, 'STAGE_STALL_TIMEOUT_MS', 180_000, 30_000, 86_400_000);
  if (stallTimeoutMs < MAX_PAUSE_MS + chunkBudgetMs) {
    throw new ConfigError(
      `STAGE_STALL_TIMEOUT_MS (${stallTimeoutMs}) must exceed the longest pause (${MAX_PAUSE_MS} ms) plus CHUNK_BUDGET_MS (${chunkBudgetMs})`,
    );
  }
  return {
    sessionTimeoutMs,
    heartbeatIntervalMs: Math.max(500, Math.floor(sessionTimeoutMs / 6)),
    rebalanceTimeoutMs: chunkBudgetMs + 10_000,
    chunkBudgetMs,
    isolateAfter: int(env, 'POISON_ISOLATE_AFTER', 3, 1, 100),
    stallTimeoutMs,
    restartGraceMs: int(env, 'KAFKA_RESTART_GRACE_MS', 60_000, 5_000, 3_600_000),
  };
}
