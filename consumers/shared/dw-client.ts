import { performance } from 'node:perf_hooks';
import { ConfigError, HttpError } from './errors';
import { createHttpAgent, requestJson } from './http';
import type { Logger } from './logger';
import { parseRetryAfter, withRetry, type Budget, type RetryPolicy } from './retry';

/**
 * Client of the warehouse Subscriber Key API (contract: docs/contracts/dw-key-api.md).
 * Works unchanged against the real endpoint and the local stand-in: only baseUrl and token differ.
 *
 * Error policy, which the augmenter relies on:
 * - per-member problems (UNKNOWN_ORG, INVALID_MEMBER_ID, INVALID_SUBSCRIBER_KEY) come back as
 *   `{ ok: false }` results: permanent for that record only;
 * - anything wrong with the API itself throws an HttpError. Transient ones (timeouts, connection
 *   errors, 429, 5xx, garbage bodies) are retried here and, once retries are exhausted, still
 *   thrown as transient so the augmenter pauses the partition: they never become per-member errors;
 * - 400/401/403 are permanent HttpErrors (our request or our credentials are wrong).
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
  onHttp?: (route: 'lookup' | 'health', status: number | 'error', ms: number) => void;
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
/** SFMC's limit for a subscriber/contact key. */
export const MAX_SUBSCRIBER_KEY_LENGTH = 254;
export const DEFAULT_CACHE_SIZE = 10_000;

/** NUL cannot appear in an org id or a valid member id, so the pair maps to one string unambiguously. */
export const memberRef = (orgId: string, memberId: string): string => `${orgId}\u0000${memberId}`;

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

  async function call(route: 'lookup' | 'health', method: 'GET' | 'POST', path: string, body?: unknown, leftMs = Infinity) {
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

  // Lookups are idempotent (a key, once created, never changes), so retrying a POST is safe.
  async function lookupChunk(chunk: readonly Member[], leftMs: number): Promise<Map<string, KeyResult>> {
    const res = await call('lookup', 'POST', '/v1/subscriber-keys:lookup', { members: chunk }, leftMs);
    if (res.status !== 200) throw statusError(res.status, res.headers['retry-after'], res.text);
    return parseLookupResponse(chunk, res.text);
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

/**
 * Checks that every requested member appears exactly once, in `keys` or `errors`, with the right types.
 * A body that is not JSON or breaks the shape throws a TRANSIENT DW_MALFORMED_RESPONSE: a warehouse
 * (or a proxy in front of it) returning garbage is the warehouse's problem, not the records'. Making it
 * permanent would dead-letter healthy members during a warehouse incident; transient makes the
 * augmenter retry and then pause until the API answers properly again.
 */
export function parseLookupResponse(requested: readonly Member[], text: string): Map<string, KeyResult> {
  const malformed = (why: string): HttpError =>
    new HttpError('DW_MALFORMED_RESPONSE', `DW key API answered 200 with an unusable body: ${why}`, { status: 200, transient: true });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw malformed('not JSON');
  }
  if (typeof body !== 'object' || body === null) throw malformed('not an object');
  const { keys = [], errors = [] } = body as { keys?: unknown; errors?: unknown };
  if (!Array.isArray(keys) || !Array.isArray(errors)) throw malformed('keys/errors are not arrays');

  const pending = new Set(requested.map((m) => memberRef(m.orgId, m.memberId)));
  const results = new Map<string, KeyResult>();
  const claim = (entry: unknown, field: 'subscriberKey' | 'code'): Record<string, unknown> => {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof e.orgId !== 'string' || typeof e.memberId !== 'string' || typeof e[field] !== 'string') {
      throw malformed(`an entry lacks string orgId, memberId or ${field}`);
    }
    const ref = memberRef(e.orgId, e.memberId);
    if (!pending.delete(ref)) throw malformed('a member was not requested or appears twice');
    return e;
  };
  for (const entry of keys) {
    const e = claim(entry, 'subscriberKey');
    const key = e.subscriberKey as string;
    results.set(
      memberRef(e.orgId as string, e.memberId as string),
      key.length > 0 && key.length <= MAX_SUBSCRIBER_KEY_LENGTH
        ? { ok: true, subscriberKey: key }
        : {
            ok: false,
            code: 'INVALID_SUBSCRIBER_KEY',
            message: `subscriber key is empty or longer than ${MAX_SUBSCRIBER_KEY_LENGTH} characters (${key.length})`,
          },
    );
  }
  for (const entry of errors) {
    const e = claim(entry, 'code');
    results.set(memberRef(e.orgId as string, e.memberId as string), {
      ok: false,
      code: e.code as string,
      message: typeof e.message === 'string' ? e.message : '',
    });
  }
  if (pending.size > 0) throw malformed(`${pending.size} requested member(s) missing from the answer`);
  return results;
}

function statusError(status: number, retryAfter: string | string[] | undefined, text: string): HttpError {
  if (status === 401 || status === 403) {
    // Deliberately says nothing about the token itself.
    return new HttpError('DW_UNAUTHORIZED', `DW key API refused our credentials (${status}); check the API token`, { status, transient: false });
  }
  if (status === 400) {
    return new HttpError('DW_BAD_REQUEST', `DW key API rejected the lookup (400): ${text.slice(0, 300)}`, { status, transient: false });
  }
  const retryAfterMs = parseRetryAfter(retryAfter);
  if (status === 429) return new HttpError('DW_RATE_LIMITED', 'DW key API asked us to slow down (429)', { status, retryAfterMs });
  // 5xx and the other RETRIABLE_STATUSES are transient (HttpError's default); anything else is not.
  return new HttpError(status >= 500 ? 'DW_UNAVAILABLE' : `DW_HTTP_${status}`, `DW key API answered ${status}`, { status, retryAfterMs });
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
  err instanceof HttpError ? { code: err.code, status: err.status, message: err.message } : { message: String(err) };

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
