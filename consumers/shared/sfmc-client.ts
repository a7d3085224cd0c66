import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { AnswerError, type Answer, type AnswerCounter, type AnswerRow, asNumber, asRecord, asString, classify, describeAnswer } from './answers';
import { createConcurrencyLimiter, type ConcurrencyLimiter } from './concurrency';
import { HttpError, PipelineError } from './errors';
import { createHttpAgent, headerValue, type HttpMethod, type JsonResponse, requestJson } from './http';
import type { Logger } from './logger';
import { type Budget, parseRetryAfter, type RetryPolicy, withRetry } from './retry';
import { SEND_ANSWERS, STATUS_ANSWERS, TOKEN_ANSWERS, SFMC_TOO_MANY_CONCURRENT, errorCodeOf, itemFor } from './sfmc-answers';

export { SFMC_DUPLICATE_MESSAGE_KEY, SFMC_INVALID_DEFINITION_KEY, SFMC_MISSING_DEFINITION_KEY } from './sfmc-answers';

/**
 * Salesforce Marketing Cloud client: OAuth2 client credentials + Transactional Messaging
 * API (contract: docs/contracts/sfmc.md). Knows nothing about the local stand-in: only the
 * base URL and credentials differ between environments.
 *
 * Every answer is read through the answer tables (sfmc-answers.ts) into one verdict per
 * recipient: sends return one outcome per recipient — queued / duplicate (sent), rejected
 * (this member is wrong: dead-letter it), or failed with an AnswerError saying slow-down,
 * setup or unknown — and never throw for an answer. Retries happen here only where the same
 * request may succeed (slow-down, an unreadable 2xx), inside the caller's budget.
 */

export interface SfmcClientConfig {
  /** e.g. https://SUBDOMAIN.auth.marketingcloudapis.com */
  authBaseUrl: string;
  clientId: string;
  clientSecret: string;
  /** Business-unit MID used when a call names none (an organization may name its own). */
  accountId?: string | number;
  /** Space separated. */
  scope?: string;
  requestTimeoutMs: number;
  retry: RetryPolicy;
  /** Below SFMC's 5 s idle drop, so we never reuse a socket the server is closing. */
  keepAliveTimeoutMs?: number;
  /** Recipients per batch request: SFMC allows 2000, recommends ≤ 500 with attributes. */
  batchSize?: number;
  /** REST requests in flight at most (the 50200 limiter's ceiling). */
  maxInFlight?: number;
}

export type SfmcTarget = 'token' | 'send' | 'status';

export interface SfmcClientDeps {
  logger: Logger;
  /** Metrics hook; status 0 = no HTTP answer (timeout, reset). */
  onHttp?: (target: SfmcTarget, status: number, ms: number) => void;
  /** Metrics hook, called before each retry after a transient failure (and before the one re-send after a 401). */
  onRetry?: (target: SfmcTarget) => void;
  /** Metrics hook: the answer-table row of each answer, per recipient for sends. */
  onAnswer?: AnswerCounter;
  /** The 50200 limiter's current limit. */
  onConcurrency?: (limit: number) => void;
  now?: () => number;
  /** Shared undici dispatcher; by default the client owns one (closed by close()). */
  dispatcher?: Dispatcher;
}

export interface SfmcRecipient {
  contactKey: string;
  to: string;
  messageKey: string;
  attributes?: Record<string, string | number | boolean | null>;
}

/** queued / duplicate: sent (duplicate = 109110, queued before). rejected: SFMC names this recipient as wrong. failed: not sent, `error` says why. */
export type SendStatus = 'queued' | 'duplicate' | 'rejected' | 'failed';

export interface SendOutcome {
  messageKey: string;
  status: SendStatus;
  /** The answer-table row that decided it ('local' for our own checks before sending). */
  answer: string;
  errorcode?: number;
  message?: string;
  requestId?: string;
  /** failed only: slow-down, setup or unknown (an AnswerError), or a budget that ran out. */
  error?: PipelineError;
}

export interface SfmcMessageStatus {
  messageKey: string;
  /** e.g. TransactionalSendEvents.EmailSent / .EmailQueued / .EmailNotSent */
  eventCategoryType: string;
  /** As SFMC gives it: US Central time without DST, no zone designator. */
  timestamp?: string;
  statusCode?: number;
  statusMessage?: string;
}

/**
 * `accountId` = the business unit (MID) to act in; tokens are requested and cached per
 * business unit. `scope`: what a setup or unknown answer holds (`org:UA`); default `sfmc`.
 * With a budget, every attempt, wait and Retry-After of the call fits inside it.
 */
export interface SfmcClient {
  sendBatch(
    definitionKey: string,
    recipients: readonly SfmcRecipient[],
    accountId?: string | number,
    budget?: Budget,
    scope?: string,
  ): Promise<SendOutcome[]>;
  sendOne(definitionKey: string, recipient: SfmcRecipient, accountId?: string | number, budget?: Budget, scope?: string): Promise<SendOutcome>;
  /** undefined: SFMC knows no message with this key (never queued, or older than 3 days). Throws an AnswerError otherwise. */
  getStatus(messageKey: string, accountId?: string | number, budget?: Budget, scope?: string): Promise<SfmcMessageStatus | undefined>;
  close(): Promise<void>;
}

/** Rows that leave a recipient unsettled in a batch: it is sent alone with its messageKey. */
const RESOLVED_ALONE: ReadonlySet<string> = new Set(['send.whole-duplicate', 'send.item-uncoded-under-error']);
const MAX_MESSAGE_KEY_LENGTH = 100;
const MAX_BATCH = 2000;
const RENEW_EARLY_MS = 120_000;
/** After a refused token request, the same refusal is answered for this long without asking (SFMC throttles token requests). */
const TOKEN_REFUSAL_COOLDOWN_MS = 30_000;
const MESSAGES_PATH = 'messaging/v1/email/messages/';

/**
 * Stable per member, distinct across members, URL-safe, 48 chars: 192 bits of SHA-256.
 * The NUL separator keeps ("1","23") and ("12","3") apart. Same member → same key, which is
 * what makes SFMC's 109110 dedup turn retries and replays into no-ops.
 */
export function welcomeMessageKey(orgId: string | number | bigint, orgMemberId: string | number | bigint): string {
  const org = String(orgId);
  const member = String(orgMemberId);
  if (!org || !member) throw new PipelineError('SFMC_MESSAGE_KEY', 'welcomeMessageKey needs a non-empty orgId and orgMemberId');
  return `welcome-${createHash('sha256').update(`${org}\0${member}`).digest('base64url').slice(0, 32)}`;
}

/** rest_instance_url as https://host/ — SFMC gives it with scheme and slash today, bare host in older docs. */
export function normaliseInstanceUrl(raw: string): string {
  const trimmed = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new PipelineError('SFMC_BAD_INSTANCE_URL', `SFMC instance URL "${raw}" is not a URL`);
  }
  if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || !parsed.host) {
    throw new PipelineError('SFMC_BAD_INSTANCE_URL', `SFMC instance URL "${raw}" is not an http(s) URL`);
  }
  return `${withScheme.replace(/\/+$/, '')}/`;
}

/** base (normalised, ending in "/") + relative path, without doubling or losing a slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** A response (or the lack of one) as the answer tables read it. */
export function toAnswer(res: JsonResponse | undefined, keys: readonly string[]): Answer {
  if (!res) return { status: 0, headers: {}, json: undefined, isJson: false, text: '', keys };
  return { status: res.status, headers: res.headers, json: res.json, isJson: res.isJson, text: res.text, keys };
}

/** Milliseconds the answer asks us to wait: Retry-After (seconds or date), else the body's retryAfter (seconds). */
function retryAfterOf(a: Answer, now: number): number | undefined {
  const seconds = asNumber(asRecord(a.json)?.['retryAfter']);
  return parseRetryAfter(headerValue(a.headers, 'retry-after'), now) ?? (seconds !== undefined ? seconds * 1000 : undefined);
}

function localRejection(r: SfmcRecipient): SendOutcome | undefined {
  const reject = (errorcode: number, message: string): SendOutcome => ({
    messageKey: String(r.messageKey ?? ''),
    status: 'rejected',
    answer: 'local',
    errorcode,
    message,
  });
  if (typeof r.messageKey !== 'string' || r.messageKey === '') return reject(109104, 'missing messageKey (rejected before sending)');
  if (r.messageKey.length > MAX_MESSAGE_KEY_LENGTH) return reject(109108, 'messageKey longer than 100 characters (rejected before sending)');
  return undefined;
}

/** A thrown error that is not an answer (a budget that ran out, a bug) as a failed outcome. */
const asPipelineError = (err: unknown): PipelineError =>
  err instanceof PipelineError ? err : new PipelineError('SFMC_CLIENT', err instanceof Error ? err.message : String(err), { cause: err });

export function createSfmcClient(config: SfmcClientConfig, deps: SfmcClientDeps): SfmcClient {
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const ownDispatcher = deps.dispatcher ? undefined : createHttpAgent({ keepAliveTimeoutMs: config.keepAliveTimeoutMs ?? 4_000 });
  const dispatcher = deps.dispatcher ?? ownDispatcher;
  const tokenUrl = joinUrl(normaliseInstanceUrl(config.authBaseUrl), 'v2/token');
  const batchSize = Math.min(Math.max(1, config.batchSize ?? 500), MAX_BATCH);
  const limiter: ConcurrencyLimiter = createConcurrencyLimiter({ max: config.maxInFlight ?? 32, onChange: deps.onConcurrency, now });
  interface Token {
    value: string;
    restBaseUrl: string;
    renewAt: number;
  }
  /** One token per business unit ("" = none named): a token only acts in the MID it was issued for. */
  interface TokenSlot {
    cached?: Token;
    inflight?: Promise<Token>;
    refused?: { error: AnswerError; until: number };
  }
  const tokens = new Map<string, TokenSlot>();
  const slotFor = (accountId: string | number | undefined): TokenSlot => {
    const key = accountId === undefined ? '' : String(accountId);
    let slot = tokens.get(key);
    if (!slot) tokens.set(key, (slot = {}));
    return slot;
  };
  const defaultAccount = config.accountId;

  /** One HTTP exchange; a transport failure is the answer "none" (status 0). */
  async function call(
    target: SfmcTarget,
    method: HttpMethod,
    url: string,
    body: unknown,
    token: string | undefined,
    leftMs: number,
  ): Promise<JsonResponse | undefined> {
    const started = now();
    try {
      // Never longer than what is left of the caller's budget: a held request must not hold the chunk.
      const res = await requestJson({
        method,
        url,
        body,
        timeoutMs: Math.max(1, Math.min(config.requestTimeoutMs, leftMs)),
        dispatcher,
        target: `sfmc-${target}`,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      deps.onHttp?.(target, res.status, now() - started);
      log.trace({ target, status: res.status, ms: now() - started }, 'SFMC answered');
      return res;
    } catch (err) {
      deps.onHttp?.(target, 0, now() - started);
      if (err instanceof HttpError && (err.code === 'HTTP_TIMEOUT' || err.code === 'HTTP_NETWORK')) {
        log.debug({ target, err: err.message }, 'SFMC gave no answer');
        return undefined;
      }
      throw err;
    }
  }

  const failure = (row: AnswerRow, a: Answer, target: SfmcTarget, scope: string): AnswerError =>
    new AnswerError(row, `SFMC ${target} answered ${describeAnswer(a)} (${row.id}: ${row.verdict})`, { scope, retryAfterMs: retryAfterOf(a, now()) });

  async function fetchToken(accountId: string | number | undefined, leftMs: number, scope: string): Promise<Token> {
    const body: Record<string, unknown> = { grant_type: 'client_credentials', client_id: config.clientId, client_secret: config.clientSecret };
    if (accountId !== undefined) body['account_id'] = Number(accountId);
    if (config.scope) body['scope'] = config.scope;
    const a = toAnswer(await call('token', 'POST', tokenUrl, body, undefined, leftMs), []);
    const row = classify(TOKEN_ANSWERS, a);
    deps.onAnswer?.(row);
    if (row.verdict !== 'ok') throw failure(row, a, 'token', scope);
    const json = asRecord(a.json) as Record<string, unknown>;
    const expiresInS = asNumber(json['expires_in']) as number;
    // Renew 2 min early as SFMC asks; for short lifetimes (tests) halfway, so the cache still works.
    const renewAt = now() + expiresInS * 1000 - Math.min(RENEW_EARLY_MS, (expiresInS * 1000) / 2);
    log.debug({ expiresInS, accountId }, 'SFMC token obtained');
    return {
      value: asString(json['access_token']) as string,
      restBaseUrl: normaliseInstanceUrl(asString(json['rest_instance_url']) as string),
      renewAt,
    };
  }

  /** Cached token per business unit; concurrent callers share one request (SFMC throttles token requests). */
  function getToken(slot: TokenSlot, accountId: string | number | undefined, leftMs: number, scope: string): Promise<Token> {
    const { cached, refused } = slot;
    if (cached && now() < cached.renewAt) return Promise.resolve(cached);
    if (refused && now() < refused.until) return Promise.reject(refused.error);
    slot.inflight ??= fetchToken(accountId, leftMs, scope)
      .then((t) => {
        slot.refused = undefined;
        return (slot.cached = t);
      })
      .catch((err: unknown) => {
        if (err instanceof AnswerError && err.verdict === 'setup') slot.refused = { error: err, until: now() + TOKEN_REFUSAL_COOLDOWN_MS };
        throw err;
      })
      .finally(() => (slot.inflight = undefined));
    return slot.inflight;
  }

  /** REST call with the bearer token of that business unit; on a 401: drop the token, fetch once, retry once. */
  async function authorized(
    target: SfmcTarget,
    method: HttpMethod,
    path: string,
    body: unknown,
    accountId: string | number | undefined,
    until: number,
    scope: string,
  ): Promise<JsonResponse | undefined> {
    const slot = slotFor(accountId);
    for (let attempt = 1; ; attempt++) {
      const token = await getToken(slot, accountId, until - now(), scope);
      const res = await limiter.run(() => call(target, method, joinUrl(token.restBaseUrl, path), body, token.value, until - now()), until);
      if (res && res.status === 429 && errorCodeOf(res.json) === SFMC_TOO_MANY_CONCURRENT) limiter.throttled();
      else if (res) limiter.answered();
      if (res?.status !== 401 || attempt >= 2) return res;
      // Only drop the token that failed: a concurrent caller may already have renewed it.
      if (slot.cached === token) slot.cached = undefined;
      deps.onRetry?.('token');
      log.debug({ target }, 'SFMC token refused; fetching a new one');
    }
  }

  const retried = <T>(what: SfmcTarget, fn: (until: number) => Promise<T>, budget?: Budget): Promise<T> =>
    withRetry(
      (_attempt, leftMs) => fn(now() + leftMs),
      config.retry,
      {
        onRetry: (err, attempt, delayMs) => {
          deps.onRetry?.(what);
          log.warn({ err, attempt, delayMs, what }, 'SFMC call failed; retrying');
        },
      },
      budget && { now, ...budget },
    );

  /**
   * One request for `chunk`: per recipient its row. An answer about the whole request that a
   * retry may change (slow-down, an unreadable 2xx) is thrown, so `retried` tries again.
   */
  async function sendChunk(
    definitionKey: string,
    chunk: readonly SfmcRecipient[],
    accountId: string | number | undefined,
    budget: Budget | undefined,
    scope: string,
  ): Promise<SendOutcome[]> {
    const body = {
      definitionKey,
      recipients: chunk.map(({ contactKey, to, messageKey, attributes }) => ({ contactKey, to, messageKey, attributes: attributes ?? {} })),
    };
    const keys = chunk.map((r) => r.messageKey);
    // Retrying this POST is safe only because every recipient's messageKey is fixed: SFMC
    // answers 109110 for those already queued instead of sending a second email.
    return retried(
      'send',
      async (until) => {
        const a = toAnswer(await authorized('send', 'POST', MESSAGES_PATH, body, accountId, until, scope), keys);
        return outcomesOf(a, keys, scope);
      },
      budget,
    );
  }

  /** Per key: its row; a whole-answer row that a retry may change is thrown (retried by the caller). */
  function outcomesOf(a: Answer, keys: readonly string[], scope: string): SendOutcome[] {
    const rows = keys.map((k) => classify(SEND_ANSWERS, a, k));
    rows.forEach((row) => deps.onAnswer?.(row));
    const first = rows[0];
    // The same retriable row for every recipient, none named: the request as a whole failed (no answer, 429, 5xx, an unreadable 2xx).
    if (first && rows.every((r) => r === first) && !RESOLVED_ALONE.has(first.id) && !itemFor(a, keys[0])) {
      const err = first.verdict === 'ok' || first.verdict === 'member' ? undefined : failure(first, a, 'send', scope);
      if (err?.transient) throw err;
    }
    const requestId = asString(asRecord(a.json)?.['requestId']);
    return keys.map((messageKey, i) => {
      const row = rows[i] as AnswerRow;
      const item = itemFor(a, messageKey);
      const errorcode = errorCodeOf(item) ?? (item ? undefined : errorCodeOf(a.json));
      const message = asString(item?.['message']) ?? asString(asRecord(a.json)?.['message']);
      if (row.verdict === 'ok')
        return {
          messageKey,
          status: row.id.endsWith('queued') ? 'queued' : 'duplicate',
          answer: row.id,
          requestId,
          ...(errorcode ? { errorcode } : {}),
        };
      if (row.verdict === 'member')
        return { messageKey, status: 'rejected', answer: row.id, errorcode, message: message ?? describeAnswer(a), requestId };
      return { messageKey, status: 'failed', answer: row.id, errorcode, message, requestId, error: failure(row, a, 'send', scope) };
    });
  }

  async function sendBatch(
    definitionKey: string,
    recipients: readonly SfmcRecipient[],
    accountId: string | number | undefined = defaultAccount,
    budget?: Budget,
    scope = 'sfmc',
  ): Promise<SendOutcome[]> {
    const outcomes = new Map<string, SendOutcome>();
    const toSend = new Map<string, SfmcRecipient>();
    const local: (SendOutcome | undefined)[] = recipients.map(localRejection);
    for (const [i, r] of recipients.entries()) {
      // The same messageKey twice means the same email: send it once, give both the one outcome.
      if (!local[i] && !toSend.has(r.messageKey)) toSend.set(r.messageKey, r);
    }
    const unique = [...toSend.values()];
    for (let i = 0; i < unique.length; i += batchSize) {
      const slice = unique.slice(i, i + batchSize);
      let got: SendOutcome[];
      try {
        got = await sendChunk(definitionKey, slice, accountId, budget, scope);
      } catch (err) {
        // This request failed as a whole (after its retries): its recipients only.
        const error = asPipelineError(err);
        got = slice.map((r) => ({ messageKey: r.messageKey, status: 'failed', answer: err instanceof AnswerError ? err.row : 'none', error }));
      }
      for (const o of got) {
        if (!RESOLVED_ALONE.has(o.answer)) {
          outcomes.set(o.messageKey, o);
          continue;
        }
        // Resolve it alone, with the same messageKey: SFMC answers 109110 if it was queued
        // before (now a trustworthy single-recipient duplicate), or queues it now.
        log.warn({ messageKey: o.messageKey, answer: o.answer }, 'SFMC answer did not settle this recipient; sending it alone');
        outcomes.set(o.messageKey, await sendOne(definitionKey, toSend.get(o.messageKey) as SfmcRecipient, accountId, budget, scope));
      }
    }
    const result = recipients.map((r, i) => local[i] ?? (outcomes.get(r.messageKey) as SendOutcome));
    log.debug(
      {
        definitionKey,
        recipients: result.length,
        ...Object.fromEntries(['queued', 'duplicate', 'rejected', 'failed'].map((s) => [s, result.filter((o) => o.status === s).length])),
      },
      'SFMC batch sent',
    );
    return result;
  }

  async function sendOne(
    definitionKey: string,
    r: SfmcRecipient,
    accountId: string | number | undefined = defaultAccount,
    budget?: Budget,
    scope = 'sfmc',
  ): Promise<SendOutcome> {
    const local = localRejection(r);
    if (local) return local;
    const body = { definitionKey, recipient: { contactKey: r.contactKey, to: r.to, attributes: r.attributes ?? {} } };
    // Same idempotency argument as sendChunk: the messageKey in the path is fixed.
    try {
      const [outcome] = await retried(
        'send',
        async (until) =>
          outcomesOf(
            toAnswer(await authorized('send', 'POST', `${MESSAGES_PATH}${encodeURIComponent(r.messageKey)}`, body, accountId, until, scope), [
              r.messageKey,
            ]),
            [r.messageKey],
            scope,
          ),
        budget,
      );
      return outcome as SendOutcome;
    } catch (err) {
      return { messageKey: r.messageKey, status: 'failed', answer: err instanceof AnswerError ? err.row : 'none', error: asPipelineError(err) };
    }
  }

  async function getStatus(
    messageKey: string,
    accountId: string | number | undefined = defaultAccount,
    budget?: Budget,
    scope = 'sfmc',
  ): Promise<SfmcMessageStatus | undefined> {
    const a = await retried(
      'status',
      async (until) => {
        const answer = toAnswer(
          await authorized('status', 'GET', `${MESSAGES_PATH}${encodeURIComponent(messageKey)}`, undefined, accountId, until, scope),
          [messageKey],
        );
        const row = classify(STATUS_ANSWERS, answer);
        deps.onAnswer?.(row);
        if (row.verdict !== 'ok') throw failure(row, answer, 'status', scope);
        return answer;
      },
      budget,
    );
    if (a.status === 404) return undefined; // unknown, or older than SFMC's 3-day status window
    const body = asRecord(a.json) as Record<string, unknown>;
    const info = asRecord(body['info']);
    return {
      messageKey,
      eventCategoryType: asString(body['eventCategoryType']) as string,
      timestamp: asString(body['timestamp']),
      // SFMC's examples show the code as a number; accept a numeric string too.
      statusCode:
        asNumber(info?.['statusCode']) ??
        (typeof info?.['statusCode'] === 'string' && /^\d+$/.test(info['statusCode']) ? Number(info['statusCode']) : undefined),
      statusMessage: asString(info?.['statusMessage']),
    };
  }

  return { sendBatch, sendOne, getStatus, close: async () => ownDispatcher?.close() };
}
