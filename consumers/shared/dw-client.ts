import { performance } from 'node:perf_hooks';
import { AnswerError, type Answer, type AnswerCounter, type AnswerRow, classify, describeAnswer } from './answers';
import { KEY_ANSWERS, LOOKUP_ANSWERS, lookupEntries, MAX_SUBSCRIBER_KEY_LENGTH, memberRef } from './dw-answers';
import { ConfigError, HttpError, PipelineError } from './errors';
import { createHttpAgent, requestJson, type JsonResponse } from './http';
import type { Logger } from './logger';
import { parseRetryAfter, withRetry, type Budget, type RetryPolicy } from './retry';

export { MAX_SUBSCRIBER_KEY_LENGTH, memberRef } from './dw-answers';

/**
 * Client of the warehouse Subscriber Key API (contract: docs/contracts/dw-key-api.md).
 * Works unchanged against the real endpoint and the local stand-in: only baseUrl and token differ.
 *
 * Every answer is read through the answer tables (dw-answers.ts):
 * - a member the answer names as wrong (UNKNOWN_ORG, INVALID_MEMBER_ID, a key too long) comes
 *   back as `{ ok: false }`: a dead letter for that record only;
 * - anything else throws an AnswerError (scope `warehouse`): slow-down and unknown answers are
 *   retried here inside the budget, then thrown for the stage to pause, bisect or hold; setup
 *   (401/403, a 404 on the URL) is never retried here and never a member's fault.
 * One member alone is asked with the single lookup (GET), more with the batch lookup (POST).
 */
export interface Member {
  orgId: string;
  memberId: string;
}

export type KeyResult =
  | { ok: true; subscriberKey: string }
  | { ok: false; code: 'UNKNOWN_ORG' | 'INVALID_MEMBER_ID' | 'INVALID_SUBSCRIBER_KEY' | (string & {}); message: string };

export interface DwKeyClientConfig {
  baseUrl: string;
  apiToken: string;
  /** Deadline of each HTTP call (headers and body together); retries each get their own. */
  requestTimeoutMs: number;
  retry: RetryPolicy;
  /** Successful keys kept in memory (keys never change); 0 disables the cache. */
  cacheSize?: number;
  keepAliveTimeoutMs?: number;
  connections?: number;
}

export interface DwKeyClientDeps {
  logger: Logger;
  /** Metrics hook, called once per HTTP call. */
  onHttp?: (route: 'lookup' | 'key' | 'health', status: number | 'error', ms: number) => void;
  /** Metrics hook: the answer-table row of each member's answer. */
  onAnswer?: AnswerCounter;
  /** Metrics hook, called before each retry of a lookup (after a transient failure). */
  onRetry?: (route: 'lookup') => void;
}

export interface DwKeyClient {
  /** One result per distinct member, keyed by memberRef(orgId, memberId). */
  /** With a budget, every attempt and wait of the lookup fits inside it (or the lookup throws). */
  lookup(members: readonly Member[], budget?: Budget): Promise<Map<string, KeyResult>>;
  health(): Promise<boolean>;
  close(): Promise<void>;
}

export const MAX_LOOKUP_ITEMS = 500;
export const DEFAULT_CACHE_SIZE = 10_000;
/** What a hold of the warehouse is called (holds.ts). */
export const WAREHOUSE_SCOPE = 'warehouse';

export function createDwKeyClient(config: DwKeyClientConfig, deps: DwKeyClientDeps): DwKeyClient {
  let base: URL;
  try {
    base = new URL(config.baseUrl);
  } catch {
    throw new ConfigError(`DW key API base URL is not a URL: "${config.baseUrl}"`);
  }
  if (!(config.requestTimeoutMs > 0)) throw new ConfigError('DW key API requestTimeoutMs must be positive');
  const prefix = base.pathname.replace(/\/+$/, '');
  const log = deps.logger.child({ component: 'dw-client', dwOrigin: base.origin });
  const cache = new LruCache<string, string>(config.cacheSize ?? DEFAULT_CACHE_SIZE);
  const agent = createHttpAgent({ connections: config.connections ?? 4, keepAliveTimeoutMs: config.keepAliveTimeoutMs ?? 4_000 });
  // Built once; the token lives only in this header, never in a message or a log line.
  const authorization = `Bearer ${config.apiToken}`;

  async function call(
    route: 'lookup' | 'key' | 'health',
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    leftMs = Infinity,
  ): Promise<JsonResponse> {
    const timeoutMs = Math.max(1, Math.min(config.requestTimeoutMs, leftMs));
    const started = performance.now();
    try {
      // One deadline for the whole exchange (shared http.ts), so a slow trickle cannot outlast it.
      const res = await requestJson({
        method,
        url: `${base.origin}${prefix}${path}`,
        headers: { authorization },
        body,
        timeoutMs,
        dispatcher: agent,
        target: `dw-${route}`,
      });
      deps.onHttp?.(route, res.status, performance.now() - started);
      return res;
    } catch (err) {
      deps.onHttp?.(route, 'error', performance.now() - started);
      throw toTransportError(err, timeoutMs);
    }
  }

  /** An exchange as the answer tables read it; a transport failure is the answer "none" (status 0). */
  async function answerOf(
    route: 'lookup' | 'key',
    method: 'GET' | 'POST',
    path: string,
    keys: readonly string[],
    body: unknown,
    leftMs: number,
  ): Promise<Answer> {
    try {
      const res = await call(route, method, path, body, leftMs);
      return { status: res.status, headers: res.headers, json: res.json, isJson: res.isJson, text: res.text, keys };
    } catch (err) {
      if (err instanceof HttpError && (err.code === 'DW_TIMEOUT' || err.code === 'DW_UNAVAILABLE')) {
        log.debug({ route, err: err.message }, 'DW key API gave no answer');
        return { status: 0, headers: {}, json: undefined, isJson: false, text: '', keys };
      }
      throw err;
    }
  }

  const failure = (row: AnswerRow, a: Answer): AnswerError =>
    new AnswerError(row, `DW key API answered ${describeAnswer(a)} (${row.id}: ${row.verdict})`, {
      scope: WAREHOUSE_SCOPE,
      retryAfterMs: parseRetryAfter(a.headers['retry-after']),
    });

  /** Per member its result; a whole-answer failure (the same non-member row for all) is thrown. */
  function resultsOf(table: readonly AnswerRow[], a: Answer, chunk: readonly Member[]): Map<string, KeyResult> {
    const results = new Map<string, KeyResult>();
    for (const m of chunk) {
      const ref = memberRef(m.orgId, m.memberId);
      const row = classify(table, a, ref);
      deps.onAnswer?.(row);
      if (row.verdict === 'ok') results.set(ref, { ok: true, subscriberKey: subscriberKeyOf(a, ref) });
      else if (row.verdict === 'member') results.set(ref, memberError(a, ref, row));
      else throw failure(row, a);
    }
    return results;
  }

  // Lookups are idempotent (a key, once created, never changes), so retrying is safe.
  async function lookupChunk(chunk: readonly Member[], leftMs: number): Promise<Map<string, KeyResult>> {
    const refs = chunk.map((m) => memberRef(m.orgId, m.memberId));
    if (chunk.length === 1) {
      const m = chunk[0] as Member;
      const path = `/v1/subscriber-keys/${encodeURIComponent(m.orgId)}/${encodeURIComponent(m.memberId)}`;
      return resultsOf(KEY_ANSWERS, await answerOf('key', 'GET', path, refs, undefined, leftMs), chunk);
    }
    return resultsOf(LOOKUP_ANSWERS, await answerOf('lookup', 'POST', '/v1/subscriber-keys:lookup', refs, { members: chunk }, leftMs), chunk);
  }

  return {
    async lookup(members, budget) {
      const wanted = new Map<string, Member>();
      for (const m of members) wanted.set(memberRef(m.orgId, m.memberId), { orgId: m.orgId, memberId: m.memberId });
      const found = new Map<string, KeyResult>();
      const misses: Member[] = [];
      for (const [ref, member] of wanted) {
        const cached = cache.get(ref);
        if (cached !== undefined) found.set(ref, { ok: true, subscriberKey: cached });
        else misses.push(member);
      }
      // One request per ≤500 members, one after the other: during an outage we stop at the first
      // failing chunk instead of hammering the warehouse with all of them.
      for (let i = 0; i < misses.length; i += MAX_LOOKUP_ITEMS) {
        const chunk = misses.slice(i, i + MAX_LOOKUP_ITEMS);
        const results = await withRetry(
          (_attempt, leftMs) => lookupChunk(chunk, leftMs),
          config.retry,
          {
            onRetry: (err, attempt, delayMs) => {
              deps.onRetry?.('lookup');
              log.warn({ err: summarize(err), attempt, delayMs, members: chunk.length }, 'dw key lookup failed; retrying');
            },
          },
          budget,
        );
        for (const [ref, result] of results) {
          found.set(ref, result);
          if (result.ok) cache.set(ref, result.subscriberKey); // failures are never cached
        }
      }
      return new Map([...wanted.keys()].map((ref) => [ref, found.get(ref) as KeyResult]));
    },

    async health() {
      try {
        return (await call('health', 'GET', '/healthz')).status === 200;
      } catch (err) {
        log.debug({ err: summarize(err) }, 'dw key API health check failed');
        return false;
      }
    },

    async close() {
      cache.clear();
      await agent.close();
    },
  };
}

/** The key the answer gives `ref` (batch or single), once its row said ok. */
function subscriberKeyOf(a: Answer, ref: string): string {
  const entry = lookupEntries(a)?.get(ref);
  if (entry?.kind === 'key') return entry.subscriberKey as string;
  return (a.json as { subscriberKey: string }).subscriberKey;
}

/** A member the answer names as wrong: its code and message. */
function memberError(a: Answer, ref: string, row: AnswerRow): KeyResult {
  const entry = lookupEntries(a)?.get(ref);
  if (entry?.kind === 'error') return { ok: false, code: entry.code, message: entry.message };
  if (row.id.endsWith('bad-key')) {
    const key = entry?.kind === 'key' ? entry.subscriberKey : (a.json as { subscriberKey?: unknown } | undefined)?.subscriberKey;
    const length = typeof key === 'string' ? key.length : 0;
    return {
      ok: false,
      code: 'INVALID_SUBSCRIBER_KEY',
      message: `subscriber key is empty or longer than ${MAX_SUBSCRIBER_KEY_LENGTH} characters (${length})`,
    };
  }
  const body = (a.json ?? {}) as { code?: unknown; error?: unknown; message?: unknown };
  const code = typeof body.code === 'string' ? body.code : typeof body.error === 'string' ? body.error : 'REJECTED';
  return { ok: false, code, message: typeof body.message === 'string' ? body.message : describeAnswer(a) };
}

/** requestJson's transport errors, in this API's own codes (what the augmenter's metrics and tests speak). */
function toTransportError(err: unknown, timeoutMs: number): HttpError {
  if (err instanceof HttpError && err.code !== 'HTTP_TIMEOUT' && err.code !== 'HTTP_NETWORK') return err;
  const cause = err instanceof HttpError ? err.cause : err;
  const { name, code } = (cause ?? {}) as { name?: string; code?: string };
  const timedOut =
    (err instanceof HttpError && err.code === 'HTTP_TIMEOUT') || name === 'TimeoutError' || (code !== undefined && /TIMEOUT/.test(code));
  return timedOut
    ? new HttpError('DW_TIMEOUT', `DW key API did not answer within ${timeoutMs} ms`, { transient: true, cause: err })
    : new HttpError('DW_UNAVAILABLE', `DW key API unreachable (${code ?? name ?? 'error'})`, { transient: true, cause: err });
}

const summarize = (err: unknown): { code?: string; status?: number; message?: string } =>
  err instanceof HttpError
    ? { code: err.code, status: err.status, message: err.message }
    : err instanceof PipelineError
      ? { code: err.code, message: err.message }
      : { message: String(err) };

/** Least-recently-used map on top of Map's insertion order (re-inserted on read). */
class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }

  clear(): void {
    this.map.clear();
  }
}
