/**
 * The `answer` fault both stand-ins share: rows of the answer tables (consumers/shared/*-answers.ts)
 * that a stand-in serves on demand, so a stack test can meet each documented answer for real.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnswerRow, ExampleAnswer } from '../consumers/shared/answers';

/** An `answer` fault value (a row id, a list of them, or "" for none) checked against `rows`: at most one row per call. */
export function answerIds(value: unknown, rows: ReadonlyMap<string, AnswerRow>): string[] {
  const ids = value === '' ? [] : typeof value === 'string' ? [value] : value;
  if (!Array.isArray(ids) || !ids.every((id): id is string => typeof id === 'string' && rows.has(id))) {
    throw new Error(`answer must be a row id or a list of them, one of ${[...rows.keys()].join(', ')} (or "")`);
  }
  const calls = ids.map((id) => rows.get(id)?.call);
  if (new Set(calls).size !== calls.length) throw new Error('answer names two rows of the same call');
  return ids;
}

/** An answer-table row's answer; status 0 = the connection dropped without one. */
export function writeExample(req: IncomingMessage, res: ServerResponse, answer: ExampleAnswer): void {
  if (answer.status === 0) {
    req.socket.destroy();
    return;
  }
  const body = answer.body ?? '';
  res.writeHead(answer.status, { 'content-length': Buffer.byteLength(body), ...answer.headers });
  res.end(body);
}
