/**
 * What a failed record means for its partition, from the error its handler reported. Pure.
 * The verdicts come from the answer tables (answers.ts); errors that are not answers are
 * sorted the same way: a dependency that is away → slow-down, our configuration refused →
 * setup, anything else (a bug, an encode error) → unknown, so only proof can make it a dead letter.
 */
import { AnswerError } from './answers';
import { HttpError, PipelineError, errorCode, isTransient } from './errors';

export type Failure =
  /** Come back later: pause (Retry-After, else backoff); not an attempt, never a dead letter. */
  | { kind: 'slow-down'; retryAfterMs?: number }
  /** Our setup is refused: hold `scope`, alert, pause; never a dead letter. */
  | { kind: 'setup'; scope: string; reason: string }
  /** Unknown: retried, then bisected; `bisect`: at once (a refusal the same request will meet again). */
  | { kind: 'unknown'; scope: string; reason: string; bisect: boolean };

/** Errors about our configuration, not the records, that are not answers of a table. */
export const SETUP_ERROR_CODES: ReadonlySet<string> = new Set(['CONFIG', 'REGISTRY_AUTH', 'SFMC_BAD_INSTANCE_URL']);

export function classifyFailure(err: unknown, stage: string): Failure {
  if (err instanceof AnswerError) {
    if (err.verdict === 'slow-down') return { kind: 'slow-down', retryAfterMs: err.retryAfterMs };
    if (err.verdict === 'setup') return { kind: 'setup', scope: err.scope, reason: err.row };
    // An unknown answer, or a member verdict that reached us as a whole-request failure: proof decides.
    return { kind: 'unknown', scope: err.scope, reason: err.row, bisect: err.bisect || err.verdict === 'member' };
  }
  if (err instanceof HttpError && err.transient && err.retryAfterMs !== undefined) return { kind: 'slow-down', retryAfterMs: err.retryAfterMs };
  if (err instanceof PipelineError && SETUP_ERROR_CODES.has(err.code)) {
    return { kind: 'setup', scope: err.code === 'REGISTRY_AUTH' ? 'registry' : stage, reason: err.code };
  }
  // A dependency that did not answer in time (audit table, Kafka produce, the budget itself).
  if (err instanceof PipelineError && isTransient(err)) return { kind: 'slow-down' };
  // A refusal the same input will meet again (a permanent PipelineError), or a plain Error (a bug, an encode error).
  return { kind: 'unknown', scope: stage, reason: errorCode(err), bisect: err instanceof PipelineError };
}

/** The failure that decides for the partition when several records failed: slow-down, then setup, then the first unknown. */
export function worstFailure(failures: readonly Failure[]): Failure | undefined {
  const slow = failures.filter((f): f is Extract<Failure, { kind: 'slow-down' }> => f.kind === 'slow-down');
  if (slow.length > 0) {
    const asked = slow.map((f) => f.retryAfterMs).filter((ms): ms is number => ms !== undefined);
    return { kind: 'slow-down', ...(asked.length > 0 ? { retryAfterMs: Math.max(...asked) } : {}) };
  }
  return failures.find((f) => f.kind === 'setup') ?? failures[0];
}
