/**
 * Fault injection for the stand-in, set at runtime over HTTP (POST /__standin/faults) so that
 * tests and the benchmark, even in another process, can script latency, throttling and outages,
 * and serve any row of the warehouse's answer tables (consumers/shared/dw-answers.ts) on demand.
 */
import type { AnswerRow, ExampleAnswer } from '../../consumers/shared/answers';
import { KEY_ANSWERS, LOOKUP_ANSWERS } from '../../consumers/shared/dw-answers';
import { answerIds } from '../answer-faults';

const ROWS: ReadonlyMap<string, AnswerRow> = new Map([...LOOKUP_ANSWERS, ...KEY_ANSWERS].map((r) => [r.id, r]));

export interface Faults {
  /** Added before every API answer (/v1/*). */
  latencyMs: number;
  /** The next N API requests answer 429 with Retry-After: retryAfterS. */
  fail429: number;
  retryAfterS: number;
  /** The next N API requests answer 503. */
  fail5xx: number;
  /** Every API request and /healthz answer 503 until set back to false (an outage). */
  down: boolean;
  /** Random share (0..1) of API requests answering 503. */
  failShare: number;
  /** The next N lookups (batch or single) answer 200 with a body that is not JSON. */
  malformedJson: number;
  /** Every lookup that asks for one of these member ids answers 200 with a body that is not JSON, until cleared (a record that fails "transiently" forever). */
  malformedFor: string[];
  /** Rows of the answer tables served instead of the stand-in's own answer, at most one per call (dw-lookup, dw-key). */
  answer: string[];
  /** Only to requests asking for one of these member ids ([]: every request of the row's call). */
  answerFor: string[];
  /** How many requests still get the answer (0: until cleared). */
  answerCount: number;
}

export const NO_FAULTS: Readonly<Faults> = Object.freeze({
  latencyMs: 0,
  fail429: 0,
  retryAfterS: 1,
  fail5xx: 0,
  down: false,
  failShare: 0,
  malformedJson: 0,
  malformedFor: [],
  answer: [],
  answerFor: [],
  answerCount: 0,
});

const COUNTS = ['latencyMs', 'fail429', 'retryAfterS', 'fail5xx', 'malformedJson', 'answerCount'] as const;

/**
 * Merges a partial update into the current faults (fields not given keep their value).
 * Returns an error message instead when the update is not valid, so a typo in a test fails loudly.
 */
export function mergeFaults(current: Faults, update: unknown): Faults | string {
  if (typeof update !== 'object' || update === null || Array.isArray(update)) return 'body must be a JSON object';
  const input = update as Record<string, unknown>;
  const next: Faults = { ...current };
  for (const name of Object.keys(input)) {
    const value = input[name];
    if ((COUNTS as readonly string[]).includes(name)) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) return `${name} must be a non-negative integer`;
      next[name as (typeof COUNTS)[number]] = value;
    } else if (name === 'down') {
      if (typeof value !== 'boolean') return 'down must be true or false';
      next.down = value;
    } else if (name === 'malformedFor' || name === 'answerFor') {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return `${name} must be an array of member ids`;
      next[name] = [...value];
    } else if (name === 'answer') {
      try {
        next.answer = answerIds(value, ROWS);
      } catch (err) {
        return (err as Error).message;
      }
    } else if (name === 'failShare') {
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) return 'failShare must be a number from 0 to 1';
      next.failShare = value;
    } else {
      return `unknown fault "${name}"`;
    }
  }
  return next;
}

export type InjectedFailure = { status: 429; retryAfterS: number } | { status: 503; reason: string };

/**
 * Decides whether this API request fails, consuming one count of a one-shot fault.
 * Order: outage, then 429s, then 5xx bursts, then the random share.
 */
export function takeFailure(faults: Faults, random: () => number): InjectedFailure | undefined {
  if (faults.down) return { status: 503, reason: 'down' };
  if (faults.fail429 > 0) {
    faults.fail429 -= 1;
    return { status: 429, retryAfterS: faults.retryAfterS };
  }
  if (faults.fail5xx > 0) {
    faults.fail5xx -= 1;
    return { status: 503, reason: 'fail5xx' };
  }
  if (faults.failShare > 0 && random() < faults.failShare) return { status: 503, reason: 'failShare' };
  return undefined;
}

/** Consumes one malformed-JSON count; true when this lookup must answer garbage (always when it asks for a malformedFor member). */
export function takeMalformed(faults: Faults, memberIds: readonly string[] = []): boolean {
  if (faults.malformedFor.length > 0 && memberIds.some((id) => faults.malformedFor.includes(id))) return true;
  if (faults.malformedJson <= 0) return false;
  faults.malformedJson -= 1;
  return true;
}

/**
 * The row's answer for this request when the answer fault applies to it (consuming one count).
 * `refs`: the members asked about, as member refs (orgId NUL memberId).
 */
export function takeAnswer(faults: Faults, route: AnswerRow['call'], refs: readonly string[]): ExampleAnswer | undefined {
  const row = faults.answer.map((id) => ROWS.get(id)).find((r) => r?.call === route);
  if (!row) return undefined;
  if (faults.answerFor.length > 0 && !refs.some((ref) => faults.answerFor.includes(ref.slice(ref.indexOf('\u0000') + 1)))) return undefined;
  if (faults.answerCount > 0) {
    faults.answerCount -= 1;
    if (faults.answerCount === 0) faults.answer = [];
  }
  return row.example(refs);
}
