/**
 * SFMC's answers (docs/contracts/sfmc.md) to the token, send and status calls, each with its
 * verdict (answers.ts). Order matters: the first matching row wins, the last matches anything.
 */
import {
  type Answer,
  type AnswerRow,
  asNumber,
  asRecord,
  asString,
  htmlBody,
  is2xx,
  isUnavailable,
  type Json,
  jsonBody,
  NO_ANSWER,
  noAnswer,
} from './answers';

export const SFMC_DUPLICATE_MESSAGE_KEY = 109110;
export const SFMC_MISSING_DEFINITION_KEY = 109107;
export const SFMC_INVALID_DEFINITION_KEY = 109111;
export const SFMC_PARTIAL_FAILURE = 109001;
export const SFMC_TOO_MANY_CONCURRENT = 50200;
/** Codes SFMC attaches to one recipient: its messageKey, contactKey or address is wrong. */
export const RECIPIENT_CODES: ReadonlySet<number> = new Set([109104, 109105, 109106, 109108, 109109, 109121]);
const DEFINITION_CODES: ReadonlySet<number> = new Set([SFMC_MISSING_DEFINITION_KEY, SFMC_INVALID_DEFINITION_KEY]);
const CONTRACT = 'docs/contracts/sfmc.md';

/** SFMC documents `errorcode`; some answers (and other clients) use `errorCode`: both are read. */
export const errorCodeOf = (v: unknown): number | undefined => asNumber(asRecord(v)?.['errorcode']) ?? asNumber(asRecord(v)?.['errorCode']);

const topCode = (a: Answer): number | undefined => errorCodeOf(a.json);
const sfmcError = (status: number, errorcode: number, message: string, headers: Record<string, string> = {}) =>
  jsonBody(
    status,
    { message, errorcode, documentation: 'https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/error-handling.html' },
    headers,
  );

/** responses[] by messageKey; in a one-recipient answer a lone item without a key is that recipient's. */
const items = new WeakMap<Answer, Map<string, Json>>();
export function itemFor(a: Answer, key: string | undefined): Json | undefined {
  if (key === undefined) return undefined;
  let byKey = items.get(a);
  if (!byKey) {
    byKey = new Map();
    const list = asRecord(a.json)?.['responses'];
    if (Array.isArray(list)) {
      for (const raw of list) {
        const item = asRecord(raw);
        const k = asString(item?.['messageKey']) ?? (list.length === 1 && a.keys.length === 1 ? a.keys[0] : undefined);
        if (item && k !== undefined && !byKey.has(k)) byKey.set(k, item);
      }
    }
    items.set(a, byKey);
  }
  return byKey.get(key);
}
const itemCode = (a: Answer, key: string | undefined): number | undefined => errorCodeOf(itemFor(a, key));
const hasItem = (a: Answer, key: string | undefined): boolean => itemFor(a, key) !== undefined;
const coded = (a: Answer, key: string | undefined): boolean => (itemCode(a, key) ?? 0) !== 0;

const accepted = (keys: readonly string[], top = 0, codes: Record<string, number> = {}) =>
  jsonBody(202, {
    requestId: 'b3c9f0d2-0000-4000-8000-000000000000',
    errorcode: top,
    ...(top === SFMC_PARTIAL_FAILURE ? { message: `MCMS_UTM_ResponsesHasErrors: ${Object.keys(codes).length} subscribers failed to queue` } : {}),
    responses: keys.map((messageKey) => (codes[messageKey] ? { messageKey, errorcode: codes[messageKey], message: 'example' } : { messageKey })),
  });
const allCoded = (keys: readonly string[], code: number): Record<string, number> => Object.fromEntries(keys.map((k) => [k, code]));

/** Rows every SFMC call shares at its start: no answer, throttling, unavailability. */
function comeBackLater(call: AnswerRow['call'], prefix: string): AnswerRow[] {
  return [
    {
      id: `${prefix}.no-answer`,
      call,
      answer: 'no answer: timeout, connection refused or reset',
      verdict: 'slow-down',
      then: 'retried with backoff inside the chunk budget, then the partition pauses (backoff up to 10 s) and retries; safe because the messageKey is fixed',
      source: CONTRACT,
      matches: noAnswer,
      example: () => NO_ANSWER,
    },
    {
      id: `${prefix}.429-50200`,
      call,
      answer: '429 errorcode 50200, no Retry-After ("temporarily blocked": too many concurrent requests)',
      verdict: 'slow-down',
      then: 'backoff and retry; the process halves its concurrent SFMC requests, and adds one back per 20 answers without 50200',
      source: CONTRACT,
      matches: (a) => a.status === 429 && topCode(a) === 50200,
      example: () => sfmcError(429, 50200, 'Temporarily blocked: too many concurrent requests'),
    },
    {
      id: `${prefix}.429`,
      call,
      answer: '429 (errorcode 50100 with Retry-After and body retryAfter, or any other)',
      verdict: 'slow-down',
      then: 'waits the Retry-After (inside the budget, else the partition pauses for it, at most 60 s); never an attempt',
      source: CONTRACT,
      matches: (a) => a.status === 429,
      example: () => jsonBody(429, { message: 'Too Many Requests', errorcode: 50100, retryAfter: 2 }, { 'retry-after': '2' }),
    },
    {
      id: `${prefix}.5xx`,
      call,
      answer: '408 or 5xx (503 errorcode 50300 with Retry-After; 500/502/504 from SFMC or a gateway, JSON, HTML or empty)',
      verdict: 'slow-down',
      then: 'retried with backoff (Retry-After honoured), then the partition pauses; never an attempt',
      source: CONTRACT,
      matches: isUnavailable,
      example: () => sfmcError(503, 50300, 'Service Unavailable', { 'retry-after': '1' }),
    },
  ];
}

export const TOKEN_ANSWERS: readonly AnswerRow[] = [
  ...comeBackLater('sfmc-token', 'token'),
  {
    id: 'token.refused',
    call: 'sfmc-token',
    answer: '400, 401, 403, 404 or 405 (invalid_client, unsupported grant, bad account_id, wrong auth URL)',
    verdict: 'setup',
    then: "hold the organization's sends, alert; asked again at most every 30 s (SFMC throttles token requests); resumes on the first token",
    source: CONTRACT,
    matches: (a) => [400, 401, 403, 404, 405].includes(a.status),
    example: () => jsonBody(401, { error: 'invalid_client', error_description: 'Client authentication failed.' }),
  },
  {
    id: 'token.ok',
    call: 'sfmc-token',
    answer: '200 with access_token, expires_in > 0 and rest_instance_url',
    verdict: 'ok',
    then: 'cached per business unit until 2 min before it expires',
    source: CONTRACT,
    matches: (a) => {
      const b = asRecord(a.json);
      return a.status === 200 && !!asString(b?.['access_token']) && (asNumber(b?.['expires_in']) ?? 0) > 0 && !!asString(b?.['rest_instance_url']);
    },
    example: () =>
      jsonBody(200, {
        access_token: 'example',
        token_type: 'Bearer',
        expires_in: 1080,
        rest_instance_url: 'https://example.rest.marketingcloudapis.com/',
      }),
  },
  {
    id: 'token.other',
    call: 'sfmc-token',
    answer: 'anything else (a 2xx without the token fields, not JSON, another status)',
    verdict: 'unknown',
    then: 'no token: retried; if it persists, held like a setup fault',
    source: 'ours',
    matches: () => true,
    example: () => jsonBody(200, { token_type: 'Bearer' }),
  },
];

export const SEND_ANSWERS: readonly AnswerRow[] = [
  ...comeBackLater('sfmc-send', 'send'),
  {
    id: 'send.401',
    call: 'sfmc-send',
    answer: '401 again after the one token refresh',
    verdict: 'setup',
    then: "hold the organization's sends, alert, dead-letter nothing; the held chunk's own retry (every ≤ 10 s) is the probe",
    source: CONTRACT,
    matches: (a) => a.status === 401,
    example: () => sfmcError(401, 0, 'Not Authorized'),
  },
  {
    id: 'send.403',
    call: 'sfmc-send',
    answer: "403 (errorcode 20002: the installed package lost its scope; or a proxy's refusal)",
    verdict: 'setup',
    then: "hold the organization's sends, alert, dead-letter nothing; resumes when a retry is accepted",
    source: CONTRACT,
    matches: (a) => a.status === 403,
    example: () => sfmcError(403, 20002, 'Insufficient privileges'),
  },
  {
    id: 'send.404',
    call: 'sfmc-send',
    answer: '404 or 405 on the send URL (rest_instance_url or a proxy route is wrong)',
    verdict: 'setup',
    then: "hold the organization's sends, alert, dead-letter nothing",
    source: CONTRACT,
    matches: (a) => a.status === 404 || a.status === 405,
    example: () => htmlBody(404, 'Not Found'),
  },
  {
    id: 'send.definition',
    call: 'sfmc-send',
    answer: 'whole-request 4xx with errorcode 109107 (missing definitionKey) or 109111 (invalid definitionKey)',
    verdict: 'setup',
    then: "hold the organization's sends (gauge welcome_sfmc_definition_refused), alert; sent by itself once the definition exists",
    source: CONTRACT,
    matches: (a) => a.status >= 400 && a.status < 500 && DEFINITION_CODES.has(topCode(a) ?? -1),
    example: () => sfmcError(400, SFMC_INVALID_DEFINITION_KEY, 'MCMS_UTM_Validation_InvalidDefinitionKey'),
  },
  {
    id: 'send.single-duplicate',
    call: 'sfmc-send',
    answer: '4xx errorcode 109110 to a one-recipient request (messageKey used in the last 2 days)',
    verdict: 'ok',
    then: 'already sent: WelcomeSent with outcome duplicate',
    source: CONTRACT,
    matches: (a) => a.status >= 400 && a.status < 500 && a.keys.length === 1 && topCode(a) === SFMC_DUPLICATE_MESSAGE_KEY,
    example: () => sfmcError(400, SFMC_DUPLICATE_MESSAGE_KEY, 'MCMS_UTM_Validation_DuplicateMessageKey'),
  },
  {
    id: 'send.single-recipient',
    call: 'sfmc-send',
    answer: '4xx with a recipient code (109104-109106, 109108, 109109, 109121) to a one-recipient request',
    verdict: 'member',
    then: 'that member dead-lettered as SFMC_{code}, with the reason',
    source: CONTRACT,
    matches: (a) => a.status >= 400 && a.status < 500 && a.keys.length === 1 && RECIPIENT_CODES.has(topCode(a) ?? -1),
    example: () => sfmcError(400, 109121, 'MCMS_UTM_Validation_InvalidEmailAddress'),
  },
  {
    id: 'send.whole-duplicate',
    call: 'sfmc-send',
    answer: '4xx errorcode 109110 to a request of several recipients (names no key)',
    verdict: 'unknown',
    then: 'each recipient sent alone with its own messageKey (109110 = already sent, otherwise queued now)',
    source: CONTRACT,
    matches: (a) => a.status >= 400 && a.status < 500 && topCode(a) === SFMC_DUPLICATE_MESSAGE_KEY,
    example: () => sfmcError(400, SFMC_DUPLICATE_MESSAGE_KEY, 'MCMS_UTM_Validation_DuplicateMessageKey'),
  },
  {
    id: 'send.refused',
    call: 'sfmc-send',
    answer:
      "any other 4xx: SFMC's JSON naming no recipient (10000-10005, 109101-109103, 109122, a recipient code to a batch), a proxy's HTML or an empty body",
    verdict: 'unknown',
    then: 'bisected at once: the recipient that fails alone while the others are accepted is dead-lettered; when every half fails alike it is a setup fault (hold)',
    source: CONTRACT,
    bisect: true,
    matches: (a) => a.status >= 400 && a.status < 500,
    example: () => htmlBody(400, 'Bad Request'),
  },
  {
    id: 'send.2xx-unreadable',
    call: 'sfmc-send',
    answer: '2xx whose body is not a JSON object (HTML, truncated JSON, empty)',
    verdict: 'unknown',
    then: 'not sent; retried (the messageKey makes it safe: anything queued answers 109110 next time)',
    source: CONTRACT,
    matches: (a) => is2xx(a) && !asRecord(a.json),
    example: () => ({ status: 202, headers: { 'content-type': 'application/json' }, body: '{"requestId": "b3c9f0d2", "responses": [{"messageKey' }),
  },
  {
    id: 'send.item-duplicate',
    call: 'sfmc-send',
    answer: '2xx with an item for the key carrying 109110',
    verdict: 'ok',
    then: 'already sent: WelcomeSent with outcome duplicate',
    source: CONTRACT,
    matches: (a, key) => is2xx(a) && itemCode(a, key) === SFMC_DUPLICATE_MESSAGE_KEY,
    example: (keys) => accepted(keys, SFMC_PARTIAL_FAILURE, allCoded(keys, SFMC_DUPLICATE_MESSAGE_KEY)),
  },
  {
    id: 'send.item-definition',
    call: 'sfmc-send',
    answer: '2xx with an item for the key carrying 109107 or 109111',
    verdict: 'setup',
    then: "hold the organization's sends, alert",
    source: CONTRACT,
    matches: (a, key) => is2xx(a) && DEFINITION_CODES.has(itemCode(a, key) ?? -1),
    example: (keys) => accepted(keys, SFMC_PARTIAL_FAILURE, allCoded(keys, SFMC_INVALID_DEFINITION_KEY)),
  },
  {
    id: 'send.item-recipient',
    call: 'sfmc-send',
    answer: '2xx with an item for the key carrying a recipient code (109104-109106, 109108, 109109, 109121)',
    verdict: 'member',
    then: 'that member dead-lettered as SFMC_{code}; the others of the request are sent',
    source: CONTRACT,
    matches: (a, key) => is2xx(a) && RECIPIENT_CODES.has(itemCode(a, key) ?? -1),
    example: (keys) => accepted(keys, SFMC_PARTIAL_FAILURE, allCoded(keys, 109121)),
  },
  {
    id: 'send.item-other-code',
    call: 'sfmc-send',
    answer: '2xx with an item for the key carrying any other error code',
    verdict: 'unknown',
    then: 'not sent; retried, then bisected',
    source: 'ours',
    matches: (a, key) => is2xx(a) && coded(a, key),
    example: (keys) => accepted(keys, SFMC_PARTIAL_FAILURE, allCoded(keys, 109999)),
  },
  {
    id: 'send.item-queued',
    call: 'sfmc-send',
    answer: '2xx, top-level errorcode 0 (or none) or 109001, with an item for the key without an error code',
    verdict: 'ok',
    then: 'sent: WelcomeSent with outcome queued',
    source: CONTRACT,
    matches: (a, key) => is2xx(a) && hasItem(a, key) && [0, SFMC_PARTIAL_FAILURE].includes(topCode(a) ?? 0),
    example: (keys) => accepted(keys),
  },
  {
    id: 'send.item-uncoded-under-error',
    call: 'sfmc-send',
    answer: '2xx with another top-level error code and an item for the key without a code',
    verdict: 'unknown',
    then: 'the item says nothing: that recipient sent alone with its messageKey',
    source: CONTRACT,
    matches: (a, key) => is2xx(a) && hasItem(a, key),
    example: (keys) => accepted(keys, 30001),
  },
  {
    id: 'send.2xx-top-definition',
    call: 'sfmc-send',
    answer: '2xx without items, top-level errorcode 109107 or 109111',
    verdict: 'setup',
    then: "hold the organization's sends, alert",
    source: CONTRACT,
    matches: (a) => is2xx(a) && DEFINITION_CODES.has(topCode(a) ?? -1),
    example: () =>
      jsonBody(202, { requestId: 'b3c9f0d2', errorcode: SFMC_INVALID_DEFINITION_KEY, message: 'MCMS_UTM_Validation_InvalidDefinitionKey' }),
  },
  {
    id: 'send.2xx-no-item',
    call: 'sfmc-send',
    answer: '2xx without an item for the key (e.g. {"requestId"} alone, from a gateway or a changed API)',
    verdict: 'unknown',
    then: 'not sent, never counted as queued; retried (safe: 109110 if it was queued), bisected, held if it persists',
    source: CONTRACT,
    matches: is2xx,
    example: () => jsonBody(202, { requestId: 'b3c9f0d2-0000-4000-8000-000000000000' }),
  },
  {
    id: 'send.other',
    call: 'sfmc-send',
    answer: 'anything else (1xx, 3xx)',
    verdict: 'unknown',
    then: 'not sent; retried, held if it persists',
    source: 'ours',
    matches: () => true,
    example: () => ({ status: 302, headers: { location: 'https://login.example/' }, body: '' }),
  },
];

export const STATUS_ANSWERS: readonly AnswerRow[] = [
  ...comeBackLater('sfmc-status', 'status'),
  {
    id: 'status.refused',
    call: 'sfmc-status',
    answer: '401 again after the token refresh, or 403',
    verdict: 'setup',
    then: 'hold the stage, alert; resumes on the first status answered',
    source: CONTRACT,
    matches: (a) => a.status === 401 || a.status === 403,
    example: () => sfmcError(403, 20002, 'Insufficient privileges'),
  },
  {
    id: 'status.not-found',
    call: 'sfmc-status',
    answer: "404 with SFMC's JSON body: no message with this key in the last 3 days",
    verdict: 'ok',
    then: 'unknown to SFMC: never queued, or older than its 3-day window',
    source: CONTRACT,
    matches: (a) => a.status === 404 && a.isJson,
    example: () => sfmcError(404, 0, 'No message found for this messageKey'),
  },
  {
    id: 'status.path',
    call: 'sfmc-status',
    answer: "404 without SFMC's JSON, or 405: the status URL itself is wrong",
    verdict: 'setup',
    then: 'hold the stage, alert',
    source: CONTRACT,
    matches: (a) => a.status === 404 || a.status === 405,
    example: () => htmlBody(404, 'Not Found'),
  },
  {
    id: 'status.found',
    call: 'sfmc-status',
    answer: '200 with eventCategoryType (EmailQueued, EmailSent, EmailNotSent)',
    verdict: 'ok',
    then: 'recorded; a message found was queued by SFMC',
    source: CONTRACT,
    matches: (a) => a.status === 200 && !!asString(asRecord(a.json)?.['eventCategoryType']),
    example: () =>
      jsonBody(200, {
        eventCategoryType: 'TransactionalSendEvents.EmailSent',
        timestamp: '2026-12-01T05:00:00',
        info: { messageKey: 'welcome-example' },
      }),
  },
  {
    id: 'status.other',
    call: 'sfmc-status',
    answer: 'anything else (a 2xx without eventCategoryType, not JSON, another 4xx)',
    verdict: 'unknown',
    then: 'retried; if it persists, held like a setup fault',
    source: 'ours',
    matches: () => true,
    example: () => jsonBody(200, { requestId: 'b3c9f0d2' }),
  },
];
