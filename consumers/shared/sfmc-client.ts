import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { HttpError, PipelineError, RETRIABLE_STATUSES } from './errors';
import { createHttpAgent, headerValue, type HttpMethod, type JsonResponse, requestJson } from './http';
import type { Logger } from './logger';
import { type Budget, parseRetryAfter, type RetryPolicy, withRetry } from './retry';

/**
 * Salesforce Marketing Cloud client: OAuth2 client credentials + Transactional Messaging
 * API (contract: docs/contracts/sfmc.md). Knows nothing about the local stand-in: only the
 * base URL and credentials differ between environments.
 *
 * Contract with callers: returned outcomes are per recipient (queued / duplicate = already
 * sent / rejected → dead-letter that record). A thrown transient HttpError means "try the
 * whole call again later"; a thrown permanent error is about our setup (credentials, scope,
 * URL), not the records, so the caller should stop rather than dead-letter.
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
}

export type SfmcTarget = 'token' | 'send' | 'status';

export interface SfmcClientDeps {
  logger: Logger;
  /** Metrics hook; status 0 = no HTTP answer (timeout, reset). */
  onHttp?: (target: SfmcTarget, status: number, ms: number) => void;
  /** Metrics hook, called before each retry after a transient failure (and before the one re-send after a 401). */
  onRetry?: (target: SfmcTarget) => void;
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

export type SendStatus = 'queued' | 'duplicate' | 'rejected';

export interface SendOutcome {
  messageKey: string;
  /** duplicate = SFMC already has this messageKey (109110): sent before, counts as success. */
  status: SendStatus;
  errorcode?: number;
  message?: string;
  requestId?: string;
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
 * business unit (the token body's account_id). Omitted: the client's default.
 */
export interface SfmcClient {
  /**
   * With a budget, every attempt, wait and Retry-After of the call fits inside it (or the call
   * throws). `accountId`: the business unit (MID) to act in; omitted, the client's default.
   */
  sendBatch(definitionKey: string, recipients: readonly SfmcRecipient[], accountId?: string | number, budget?: Budget): Promise<SendOutcome[]>;
  sendOne(definitionKey: string, recipient: SfmcRecipient, accountId?: string | number, budget?: Budget): Promise<SendOutcome>;
  getStatus(messageKey: string, accountId?: string | number): Promise<SfmcMessageStatus | undefined>;
  close(): Promise<void>;
}

/**
 * An answer that does not tell, for one recipient, whether SFMC queued it: a whole-request
 * 109110 for several recipients (SFMC names no key), or an item without any error code in a
 * 202 that carries a top-level error. sendBatch resolves it by sending that recipient alone.
 */
export interface UnresolvedOutcome {
  messageKey: string;
  status: 'unresolved';
  errorcode?: number;
  message: string;
}

export const SFMC_DUPLICATE_MESSAGE_KEY = 109110;
/** Whole-request codes that are about our setup (the organization's send definition), not the recipients. */
export const SFMC_MISSING_DEFINITION_KEY = 109107;
export const SFMC_INVALID_DEFINITION_KEY = 109111;
const PARTIAL_FAILURE = 109001;
const MAX_MESSAGE_KEY_LENGTH = 100;
const MAX_BATCH = 2000;
const RENEW_EARLY_MS = 120_000;
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

type Json = Record<string, unknown>;
const asRecord = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const asNumber = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** SFMC's own message from an error body, shortened; it never contains our secrets. */
function describeAnswer(res: JsonResponse): string {
  const body = asRecord(res.json);
  if (!res.isJson) return `HTTP ${res.status} with a non-JSON body`;
  const code = asNumber(body?.['errorcode']) ?? asString(body?.['error']);
  const message = asString(body?.['message']) ?? asString(body?.['error_description']) ?? '';
  return `HTTP ${res.status}${code !== undefined ? `, errorcode ${code}` : ''}${message ? `: ${message.slice(0, 200)}` : ''}`;
}

/** An answer we cannot use: 429/5xx transient (honouring Retry-After), anything else permanent. */
function errorForStatus(target: SfmcTarget, res: JsonResponse, now: number): HttpError {
  const body = asRecord(res.json);
  const bodySeconds = asNumber(body?.['retryAfter']);
  const retryAfterMs = parseRetryAfter(headerValue(res.headers, 'retry-after'), now) ?? (bodySeconds !== undefined ? bodySeconds * 1000 : undefined);
  const transient = res.status >= 500 || RETRIABLE_STATUSES.has(res.status);
  const code = res.status === 429 ? 'SFMC_THROTTLED' : transient ? 'SFMC_UNAVAILABLE' : `SFMC_HTTP_${res.status}`;
  return new HttpError(code, `SFMC ${target} answered ${describeAnswer(res)}`, { status: res.status, retryAfterMs, transient });
}

/** SFMC documents `errorcode`; some answers (and other clients) use `errorCode`: read both. */
function errorCodeOf(item: Json | undefined): number | undefined {
  return asNumber(item?.['errorcode']) ?? asNumber(item?.['errorCode']);
}

function outcomeFor(messageKey: string, errorcode: number | undefined, message: string | undefined, requestId: string | undefined): SendOutcome {
  if (errorcode === undefined || errorcode === 0) return { messageKey, status: 'queued', requestId };
  const status: SendStatus = errorcode === SFMC_DUPLICATE_MESSAGE_KEY ? 'duplicate' : 'rejected';
  return { messageKey, status, errorcode, message, requestId };
}

/**
 * Reads a send answer (batch or single, 202-with-codes or 400 form) into one outcome per
 * messageKey. Every item's errorcode is read: a 202 may carry 109001 with failed items.
 */
export function toSendOutcomes(
  target: SfmcTarget,
  res: JsonResponse,
  messageKeys: readonly string[],
  now: number,
): (SendOutcome | UnresolvedOutcome)[] {
  const body = asRecord(res.json);
  const requestId = asString(body?.['requestId']);
  if (res.status === 400 || res.status === 422) {
    // Whole request refused (109107, 109111, 109110 on a single send...): same verdict for each recipient.
    const code = errorCodeOf(body);
    const message = describeAnswer(res);
    // A whole-request duplicate names no key: trusted as "already sent" only when there is one recipient.
    if (code === SFMC_DUPLICATE_MESSAGE_KEY && messageKeys.length > 1) {
      return messageKeys.map((key) => ({ messageKey: key, status: 'unresolved', errorcode: code, message: `whole-request ${message}` }));
    }
    return messageKeys.map((key) => (code ? outcomeFor(key, code, message, requestId) : { messageKey: key, status: 'rejected', message, requestId }));
  }
  if (res.status < 200 || res.status >= 300) throw errorForStatus(target, res, now);
  // A 2xx we cannot read: SFMC may have queued it. Retrying is safe because messageKeys are
  // fixed — anything already queued comes back as 109110 (duplicate) on the retry.
  const unreadable = (why: string): HttpError =>
    new HttpError('SFMC_BAD_RESPONSE', `SFMC ${target} answered HTTP ${res.status} ${why}`, { status: res.status, transient: true });
  if (!body) throw unreadable('with a body that is not a JSON object');
  const top = errorCodeOf(body) ?? 0;
  const items = Array.isArray(body['responses']) ? body['responses'] : [];
  const byKey = new Map<string, Json>();
  items.forEach((raw, i) => {
    const item = asRecord(raw);
    const key = asString(item?.['messageKey']) ?? (items.length === messageKeys.length ? messageKeys[i] : undefined);
    if (item && key !== undefined) byKey.set(key, item);
  });
  return messageKeys.map((key) => {
    const item = byKey.get(key);
    if (item) {
      const code = errorCodeOf(item);
      // "Items without errorcode were queued" is SFMC's rule for a clean 202 and for 109001
      // (partial failure). Under any other top-level error an item without a code tells
      // nothing, so it is not counted as queued.
      if (code === undefined && top !== 0 && top !== PARTIAL_FAILURE) {
        return {
          messageKey: key,
          status: 'unresolved',
          errorcode: top,
          message: `202 with top-level errorcode ${top} and no code for this recipient`,
        };
      }
      return outcomeFor(key, code, asString(item['message']), requestId);
    }
    if (top === 0) return outcomeFor(key, 0, undefined, requestId);
    if (top !== PARTIAL_FAILURE) return outcomeFor(key, top, asString(body['message']), requestId);
    throw unreadable(`109001 without an item for messageKey ${key}`);
  });
}

function localRejection(r: SfmcRecipient): SendOutcome | undefined {
  if (typeof r.messageKey !== 'string' || r.messageKey === '')
    return { messageKey: String(r.messageKey ?? ''), status: 'rejected', errorcode: 109104, message: 'missing messageKey (rejected before sending)' };
  if (r.messageKey.length > MAX_MESSAGE_KEY_LENGTH)
    return {
      messageKey: r.messageKey,
      status: 'rejected',
      errorcode: 109108,
      message: 'messageKey longer than 100 characters (rejected before sending)',
    };
  return undefined;
}

export function createSfmcClient(config: SfmcClientConfig, deps: SfmcClientDeps): SfmcClient {
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const ownDispatcher = deps.dispatcher ? undefined : createHttpAgent({ keepAliveTimeoutMs: config.keepAliveTimeoutMs ?? 4_000 });
  const dispatcher = deps.dispatcher ?? ownDispatcher;
  const tokenUrl = joinUrl(normaliseInstanceUrl(config.authBaseUrl), 'v2/token');
  const batchSize = Math.min(Math.max(1, config.batchSize ?? 500), MAX_BATCH);
  interface Token {
    value: string;
    restBaseUrl: string;
    renewAt: number;
  }
  /** One token per business unit ("" = none named): a token only acts in the MID it was issued for. */
  interface TokenSlot {
    cached?: Token;
    inflight?: Promise<Token>;
  }
  const tokens = new Map<string, TokenSlot>();
  const slotFor = (accountId: string | number | undefined): TokenSlot => {
    const key = accountId === undefined ? '' : String(accountId);
    let slot = tokens.get(key);
    if (!slot) tokens.set(key, (slot = {}));
    return slot;
  };
  const defaultAccount = config.accountId;

  async function call(target: SfmcTarget, method: HttpMethod, url: string, body?: unknown, token?: string, leftMs = Infinity): Promise<JsonResponse> {
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
      throw err;
    }
  }

  async function fetchToken(accountId: string | number | undefined, leftMs: number): Promise<Token> {
    const body: Json = { grant_type: 'client_credentials', client_id: config.clientId, client_secret: config.clientSecret };
    if (accountId !== undefined) body['account_id'] = Number(accountId);
    if (config.scope) body['scope'] = config.scope;
    const res = await call('token', 'POST', tokenUrl, body, undefined, leftMs);
    if (res.status === 401 || res.status === 400) {
      throw new HttpError('SFMC_AUTH_REJECTED', `SFMC refused our client credentials: ${describeAnswer(res)}`, {
        status: res.status,
        transient: false,
      });
    }
    if (res.status !== 200) throw errorForStatus('token', res, now());
    const json = asRecord(res.json);
    const value = asString(json?.['access_token']);
    const expiresInS = asNumber(json?.['expires_in']);
    const rest = asString(json?.['rest_instance_url']);
    if (!value || !expiresInS || expiresInS <= 0 || !rest) {
      throw new HttpError('SFMC_BAD_TOKEN_RESPONSE', 'SFMC token answer lacks access_token, expires_in or rest_instance_url', {
        status: 200,
        transient: false,
      });
    }
    // Renew 2 min early as SFMC asks; for short lifetimes (tests) halfway, so the cache still works.
    const renewAt = now() + expiresInS * 1000 - Math.min(RENEW_EARLY_MS, (expiresInS * 1000) / 2);
    log.debug({ expiresInS, accountId }, 'SFMC token obtained');
    return { value, restBaseUrl: normaliseInstanceUrl(rest), renewAt };
  }

  /** Cached token per business unit; concurrent callers share one request (SFMC throttles token requests). */
  function getToken(slot: TokenSlot, accountId: string | number | undefined, leftMs: number): Promise<Token> {
    const { cached } = slot;
    if (cached && now() < cached.renewAt) return Promise.resolve(cached);
    slot.inflight ??= fetchToken(accountId, leftMs)
      .then((t) => (slot.cached = t))
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
    leftMs = Infinity,
  ): Promise<JsonResponse> {
    const slot = slotFor(accountId);
    const until = now() + leftMs;
    for (let attempt = 1; ; attempt++) {
      const token = await getToken(slot, accountId, until - now());
      const res = await call(target, method, joinUrl(token.restBaseUrl, path), body, token.value, until - now());
      if (res.status !== 401) return res;
      // Only drop the token that failed: a concurrent caller may already have renewed it.
      if (slot.cached === token) slot.cached = undefined;
      if (attempt >= 2)
        throw new HttpError('SFMC_UNAUTHORIZED', `SFMC ${target} refused a freshly issued token: ${describeAnswer(res)}`, {
          status: 401,
          transient: false,
        });
      deps.onRetry?.('token');
      log.debug({ target }, 'SFMC token refused; fetching a new one');
    }
  }

  const retried = <T>(what: string, fn: (leftMs: number) => Promise<T>, budget?: Budget): Promise<T> =>
    withRetry(
      (_attempt, leftMs) => fn(leftMs),
      config.retry,
      {
        onRetry: (err, attempt, delayMs) => {
          deps.onRetry?.(what === 'getStatus' ? 'status' : 'send');
          log.warn({ err, attempt, delayMs, what }, 'SFMC call failed; retrying');
        },
      },
      budget && { now, ...budget },
    );

  async function sendChunk(
    definitionKey: string,
    chunk: readonly SfmcRecipient[],
    accountId: string | number | undefined,
    budget?: Budget,
  ): Promise<(SendOutcome | UnresolvedOutcome)[]> {
    const body = {
      definitionKey,
      recipients: chunk.map(({ contactKey, to, messageKey, attributes }) => ({ contactKey, to, messageKey, attributes: attributes ?? {} })),
    };
    const keys = chunk.map((r) => r.messageKey);
    // Retrying this POST is safe only because every recipient's messageKey is fixed: SFMC
    // answers 109110 for those already queued instead of sending a second email.
    return retried(
      'sendBatch',
      async (leftMs) => toSendOutcomes('send', await authorized('send', 'POST', MESSAGES_PATH, body, accountId, leftMs), keys, now()),
      budget,
    );
  }

  async function sendBatch(
    definitionKey: string,
    recipients: readonly SfmcRecipient[],
    accountId: string | number | undefined = defaultAccount,
    budget?: Budget,
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
      for (const o of await sendChunk(definitionKey, unique.slice(i, i + batchSize), accountId, budget)) {
        if (o.status !== 'unresolved') {
          outcomes.set(o.messageKey, o);
          continue;
        }
        // Resolve it alone, with the same messageKey: SFMC answers 109110 if it was queued
        // before (now a trustworthy single-recipient duplicate), or queues it now.
        log.warn({ messageKey: o.messageKey, errorcode: o.errorcode, why: o.message }, 'SFMC answer did not settle this recipient; sending it alone');
        outcomes.set(o.messageKey, await sendOne(definitionKey, toSend.get(o.messageKey)!, accountId, budget));
      }
    }
    const result = recipients.map((r, i) => local[i] ?? outcomes.get(r.messageKey)!);
    log.debug(
      {
        definitionKey,
        recipients: result.length,
        queued: result.filter((o) => o.status === 'queued').length,
        duplicate: result.filter((o) => o.status === 'duplicate').length,
        rejected: result.filter((o) => o.status === 'rejected').length,
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
  ): Promise<SendOutcome> {
    const local = localRejection(r);
    if (local) return local;
    const body = { definitionKey, recipient: { contactKey: r.contactKey, to: r.to, attributes: r.attributes ?? {} } };
    // Same idempotency argument as sendChunk: the messageKey in the path is fixed.
    const [outcome] = await retried(
      'sendOne',
      async (leftMs) =>
        toSendOutcomes(
          'send',
          await authorized('send', 'POST', `${MESSAGES_PATH}${encodeURIComponent(r.messageKey)}`, body, accountId, leftMs),
          [r.messageKey],
          now(),
        ),
      budget,
    );
    // A single send that still does not say: not counted as queued (dead-lettered with the
    // reason; a re-drive is harmless because the messageKey is fixed).
    if (outcome!.status === 'unresolved')
      return { messageKey: r.messageKey, status: 'rejected', errorcode: outcome!.errorcode, message: outcome!.message };
    return outcome!;
  }

  async function getStatus(messageKey: string, accountId: string | number | undefined = defaultAccount): Promise<SfmcMessageStatus | undefined> {
    const res = await retried('getStatus', async () => {
      const answer = await authorized('status', 'GET', `${MESSAGES_PATH}${encodeURIComponent(messageKey)}`, undefined, accountId);
      if (answer.status === 200 || answer.status === 404) return answer;
      throw errorForStatus('status', answer, now()); // transient for 429/5xx, so retried
    });
    if (res.status === 404) return undefined; // unknown, or older than SFMC's 3-day status window
    const body = asRecord(res.json);
    if (!body) throw new HttpError('SFMC_BAD_RESPONSE', 'SFMC status answered HTTP 200 with a non-JSON body', { status: 200, transient: false });
    const info = asRecord(body['info']);
    return {
      messageKey,
      eventCategoryType: asString(body['eventCategoryType']) ?? 'unknown',
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
