/**
 * Every answer an outside service can give us, mapped to exactly one verdict. The tables
 * themselves (sfmc-answers.ts, dw-answers.ts, registry-answers.ts) are data: ordered rows,
 * each a predicate over the answer, a verdict, what the pipeline then does, and an example
 * answer. The first row that matches is the answer's row; every table ends with a row that
 * matches anything (unknown), so no answer is left without a verdict.
 *
 * The same rows are rendered into docs/contracts/answers.md (tools/answer-tables.ts), run one
 * by one by test/unit/shared/answer-tables.test.ts, and served on demand by the stand-ins'
 * fault APIs, so a stack test can meet each answer for real.
 */
import { PipelineError } from './errors';

/**
 * - ok: the call did its job for this key (for SFMC's send: SFMC names the recipient as queued,
 *   or as already queued, 109110);
 * - member: an error the service attaches to this recipient or member → dead letter with the reason;
 * - slow-down: come back later (429, 5xx, no answer) → pause and retry, never an attempt, never a dead letter;
 * - setup: our configuration or credentials are refused → hold, alert, dead-letter nothing, resume on a good answer;
 * - unknown: any other shape → not done; retried, bisected, and treated as setup if it persists.
 */
export type Verdict = 'ok' | 'member' | 'slow-down' | 'setup' | 'unknown';
export const VERDICTS: readonly Verdict[] = ['ok', 'member', 'slow-down', 'setup', 'unknown'];

export type Call = 'sfmc-token' | 'sfmc-send' | 'sfmc-status' | 'dw-lookup' | 'dw-key' | 'registry-schema';

/** What came back from one request; status 0 = no answer at all (timeout, refused, reset). */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed body; undefined when empty or not JSON. */
  json: unknown;
  isJson: boolean;
  text: string;
  /** The keys the request asked about (SFMC messageKeys, warehouse member refs), in request order. */
  keys: readonly string[];
}

/** An answer as a server sends it: for the table test and the stand-ins' fault APIs. */
export interface ExampleAnswer {
  /** 0: the connection is dropped without an answer. */
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface AnswerRow {
  /** Stable id: metrics label, docs anchor, the stand-ins' `answer` fault. */
  id: string;
  call: Call;
  /** The answer, in words. */
  answer: string;
  verdict: Verdict;
  /** What the pipeline does with it. */
  then: string;
  /** Where the answer is documented (a contract page), or "ours" for a rule of ours. */
  source: string;
  /** Whether this answer is about `key` (rows about the whole answer ignore the key). */
  matches(a: Answer, key: string | undefined): boolean;
  /** An answer of this row to a request for `keys`. */
  example(keys: readonly string[]): ExampleAnswer;
  /** unknown rows only: a refusal that retrying cannot change (a 4xx): bisected at once. */
  bisect?: boolean;
}

/** The first row of `table` about `key`; every table's last row matches anything. */
export function classify(table: readonly AnswerRow[], a: Answer, key?: string): AnswerRow {
  const row = table.find((r) => r.matches(a, key));
  if (!row) throw new Error(`answer table of ${table[0]?.call ?? '?'} has no catch-all row`);
  return row;
}

/**
 * A failure that an answer (or its absence) decided. `scope` is what a setup hold stops:
 * `org:<id>` for one organization's SFMC sends, `warehouse`, `registry`, or the stage.
 * Retried inside a client only when the same request may succeed (slow-down, and an unknown
 * answer that is not a refusal).
 */
export class AnswerError extends PipelineError {
  readonly verdict: Verdict;
  readonly row: string;
  readonly scope: string;
  readonly retryAfterMs: number | undefined;
  readonly bisect: boolean;

  constructor(row: AnswerRow, message: string, options: { scope: string; retryAfterMs?: number; cause?: unknown }) {
    const retriable = row.verdict === 'slow-down' || (row.verdict === 'unknown' && !row.bisect);
    super(row.id.toUpperCase().replace(/[.-]/g, '_'), message, { transient: retriable, cause: options.cause });
    this.verdict = row.verdict;
    this.row = row.id;
    this.scope = options.scope;
    this.retryAfterMs = options.retryAfterMs;
    this.bisect = row.bisect === true;
  }
}

/** Counts each answer by call, row and verdict (welcome_outside_answers_total). */
export type AnswerCounter = (row: AnswerRow) => void;

// ---------------------------------------------------------------- helpers the tables share

export type Json = Record<string, unknown>;
export const asRecord = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
export const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const asNumber = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export const noAnswer = (a: Answer): boolean => a.status === 0;
export const is2xx = (a: Answer): boolean => a.status >= 200 && a.status < 300;
/** 408 and 5xx: the service (or a gateway) cannot serve now. */
export const isUnavailable = (a: Answer): boolean => a.status === 408 || (a.status >= 500 && a.status < 600);

/** Example bodies. */
export const jsonBody = (status: number, body: unknown, headers: Record<string, string> = {}): ExampleAnswer => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});
export const htmlBody = (status: number, title: string): ExampleAnswer => ({
  status,
  headers: { 'content-type': 'text/html' },
  body: `<html><head><title>${status} ${title}</title></head><body><h1>${title}</h1><hr>proxy</body></html>`,
});
export const NO_ANSWER: ExampleAnswer = { status: 0 };

/** An Answer from an example, as the client would read it (for tests and the docs). */
export function toAnswer(example: ExampleAnswer, keys: readonly string[]): Answer {
  const text = example.body ?? '';
  let json: unknown;
  let isJson = false;
  if (text.trim()) {
    try {
      json = JSON.parse(text) as unknown;
      isJson = true;
    } catch {
      json = undefined;
    }
  }
  const headers: Answer['headers'] = {};
  for (const [k, v] of Object.entries(example.headers ?? {})) headers[k.toLowerCase()] = v;
  return { status: example.status, headers, json, isJson, text, keys };
}

/** A one-line description of an answer for logs and dead-letter reasons (never the body's secrets: bodies here carry none). */
export function describeAnswer(a: Answer): string {
  if (a.status === 0) return 'no answer';
  const body = asRecord(a.json);
  if (!a.isJson) return `HTTP ${a.status} with ${a.text.trim() ? 'a non-JSON body' : 'an empty body'}`;
  const code = asNumber(body?.['errorcode']) ?? asNumber(body?.['errorCode']) ?? asNumber(body?.['error_code']) ?? asString(body?.['error']);
  const code2 = asString(body?.['code']);
  const message = asString(body?.['message']) ?? asString(body?.['error_description']) ?? '';
  const shownCode = code ?? code2;
  return `HTTP ${a.status}${shownCode !== undefined ? `, code ${shownCode}` : ''}${message ? `: ${message.slice(0, 200)}` : ''}`;
}
