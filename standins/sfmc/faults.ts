/**
 * Faults of the SFMC stand-in that are not in state.ts's FaultSettings (kept apart so the
 * send-log work on state and this fault work do not meet):
 * - holdSends / holdMs: the next N send requests are held open for holdMs before they are
 *   processed and answered — like an SFMC that takes longer than the caller waits. The send is
 *   still accepted after the hold (the client may have given up meanwhile), as a real server
 *   would do with a request it already received: the retry must then meet 109110, not a second email.
 * - answer: any row of SFMC's answer tables (consumers/shared/sfmc-answers.ts), served on
 *   demand: to every request of the row's call (token, send or status), or with answerFor only
 *   to send requests carrying one of those recipients (address, contactKey or messageKey);
 *   answerCount requests (0: until cleared); answerAfterAccepting: the request is processed
 *   first (its sends accepted), then the row's answer replaces SFMC's — a 2xx without items
 *   after queuing, the case where a blind "sent" and a blind resend both go wrong.
 * - concurrentSends: more send requests than this in flight at once are answered 429 50200
 *   ("temporarily blocked", the send.429-50200 row), as SFMC does for one installed package.
 */
import { type AnswerRow, type ExampleAnswer } from '../../consumers/shared/answers';
import { answerIds } from '../answer-faults';
import { SEND_ANSWERS, STATUS_ANSWERS, TOKEN_ANSWERS } from '../../consumers/shared/sfmc-answers';

export interface ExtraFaults {
  holdSends: number;
  holdMs: number;
  /** Row ids, at most one per call ([] = none). */
  answer: string[];
  answerFor: string[];
  answerCount: number;
  answerAfterAccepting: boolean;
  /** 0: no limit. */
  concurrentSends: number;
}

export const NO_EXTRA: Readonly<ExtraFaults> = Object.freeze({
  holdSends: 0,
  holdMs: 0,
  answer: [],
  answerFor: [],
  answerCount: 0,
  answerAfterAccepting: false,
  concurrentSends: 0,
});

const ROWS: ReadonlyMap<string, AnswerRow> = new Map([...TOKEN_ANSWERS, ...SEND_ANSWERS, ...STATUS_ANSWERS].map((r) => [r.id, r]));

const COUNTS = ['holdSends', 'holdMs', 'answerCount', 'concurrentSends'] as const;

/** Takes this module's keys out of a fault patch; throws a message for an invalid value. */
export function splitExtraPatch(body: unknown): { extra: Partial<ExtraFaults>; rest: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { extra: {}, rest: body };
  const rest: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const extra: Partial<ExtraFaults> = {};
  for (const key of COUNTS) {
    if (!(key in rest)) continue;
    const value = rest[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new Error(`${key} must be a non-negative integer`);
    extra[key] = value;
    delete rest[key];
  }
  if ('answer' in rest) {
    extra.answer = answerIds(rest['answer'], ROWS);
    delete rest['answer'];
  }
  if ('answerFor' in rest) {
    const value = rest['answerFor'];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
      throw new Error('answerFor must be an array of addresses, contactKeys or messageKeys');
    extra.answerFor = [...value];
    delete rest['answerFor'];
  }
  if ('answerAfterAccepting' in rest) {
    if (typeof rest['answerAfterAccepting'] !== 'boolean') throw new Error('answerAfterAccepting must be true or false');
    extra.answerAfterAccepting = rest['answerAfterAccepting'];
    delete rest['answerAfterAccepting'];
  }
  return { extra, rest };
}

/** Consumes one held send; the milliseconds to hold this request (0: none). */
export function takeHold(faults: ExtraFaults): number {
  if (faults.holdSends <= 0 || faults.holdMs <= 0) return 0;
  faults.holdSends -= 1;
  return faults.holdMs;
}

/** The recipients of a send body, as answerFor matches them. */
export function recipientsOf(body: unknown): { to?: unknown; contactKey?: unknown; messageKey?: unknown }[] {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { recipients?: unknown; recipient?: unknown };
  if (Array.isArray(b.recipients)) return b.recipients.filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null);
  return typeof b.recipient === 'object' && b.recipient !== null ? [b.recipient as Record<string, unknown>] : [];
}

/**
 * The row's answer for this request, if the answer fault applies to it (consuming one count);
 * `keys`: the request's messageKeys (the single send's from its path), `route`: which call it is.
 */
export function takeAnswer(faults: ExtraFaults, route: AnswerRow['call'], keys: readonly string[], body: unknown): ExampleAnswer | undefined {
  const row = faults.answer.map((id) => ROWS.get(id)).find((r) => r?.call === route);
  if (!row) return undefined;
  if (faults.answerFor.length > 0) {
    const wanted = new Set(faults.answerFor);
    const hit = recipientsOf(body).some((r) => [r.to, r.contactKey, r.messageKey].some((v) => typeof v === 'string' && wanted.has(v)));
    if (!hit && !keys.some((k) => wanted.has(k))) return undefined;
  }
  if (faults.answerCount > 0) {
    faults.answerCount -= 1;
    if (faults.answerCount === 0) faults.answer = []; // the last one: cleared
  }
  return row.example(keys);
}

/** 50200 for a send request beyond the concurrent limit (`inFlight` counts this one). */
export function tooMany(faults: ExtraFaults & { inFlight: number }, keys: readonly string[]): ExampleAnswer | undefined {
  if (faults.concurrentSends <= 0 || faults.inFlight <= faults.concurrentSends) return undefined;
  return (ROWS.get('send.429-50200') as AnswerRow).example(keys);
}
