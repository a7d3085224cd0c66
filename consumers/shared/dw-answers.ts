/**
 * The warehouse Subscriber Key API's answers (docs/contracts/dw-key-api.md) to the batch
 * lookup and the single lookup, each with its verdict (answers.ts). Keys are member refs
 * (orgId NUL memberId), the form the client asks with.
 */
import { type Answer, type AnswerRow, asRecord, asString, htmlBody, is2xx, isUnavailable, type Json, jsonBody, NO_ANSWER, noAnswer } from './answers';

/** SFMC's limit for a subscriber/contact key. */
export const MAX_SUBSCRIBER_KEY_LENGTH = 254;
const CONTRACT = 'docs/contracts/dw-key-api.md';

/** NUL cannot appear in an org id or a valid member id, so the pair maps to one string unambiguously. */
export const memberRef = (orgId: string, memberId: string): string => `${orgId}\u0000${memberId}`;
const splitRef = (ref: string): { orgId: string; memberId: string } => {
  const i = ref.indexOf('\u0000');
  return { orgId: ref.slice(0, i), memberId: ref.slice(i + 1) };
};
export const validKey = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_SUBSCRIBER_KEY_LENGTH;

type Entry = { kind: 'key'; subscriberKey: unknown } | { kind: 'error'; code: string; message: string };

/**
 * A batch answer read once: every requested member exactly once, in `keys` or `errors`, with
 * string fields. Anything else (not JSON, wrong types, a member missing, unasked or twice)
 * makes the whole answer unusable: undefined.
 */
const parsed = new WeakMap<Answer, Map<string, Entry> | null>();
export function lookupEntries(a: Answer): Map<string, Entry> | undefined {
  let found = parsed.get(a);
  if (found === undefined) {
    found = readLookup(a);
    parsed.set(a, found);
  }
  return found ?? undefined;
}
function readLookup(a: Answer): Map<string, Entry> | null {
  const body = asRecord(a.json);
  if (a.status !== 200 || !body) return null;
  const { keys = [], errors = [] } = body;
  if (!Array.isArray(keys) || !Array.isArray(errors)) return null;
  const pending = new Set(a.keys);
  const out = new Map<string, Entry>();
  const claim = (raw: unknown, field: 'subscriberKey' | 'code'): Json | undefined => {
    const e = asRecord(raw);
    if (typeof e?.['orgId'] !== 'string' || typeof e['memberId'] !== 'string' || typeof e[field] !== 'string') return undefined;
    const ref = memberRef(e['orgId'], e['memberId']);
    return pending.delete(ref) ? e : undefined;
  };
  for (const raw of keys) {
    const e = claim(raw, 'subscriberKey');
    if (!e) return null;
    out.set(memberRef(e['orgId'] as string, e['memberId'] as string), { kind: 'key', subscriberKey: e['subscriberKey'] });
  }
  for (const raw of errors) {
    const e = claim(raw, 'code');
    if (!e) return null;
    out.set(memberRef(e['orgId'] as string, e['memberId'] as string), {
      kind: 'error',
      code: e['code'] as string,
      message: asString(e['message']) ?? '',
    });
  }
  return pending.size === 0 ? out : null;
}
const entry = (a: Answer, key: string | undefined): Entry | undefined => (key === undefined ? undefined : lookupEntries(a)?.get(key));

const lookupAnswer = (keys: readonly string[], as: 'key' | 'error' | 'bad-key') =>
  jsonBody(200, {
    keys:
      as === 'error' ? [] : keys.map((k) => ({ ...splitRef(k), subscriberKey: as === 'bad-key' ? 'K'.repeat(300) : `DW-${splitRef(k).memberId}` })),
    errors: as === 'error' ? keys.map((k) => ({ ...splitRef(k), code: 'UNKNOWN_ORG', message: 'organization is not known' })) : [],
  });

/** Rows both calls share: no answer, slow down, unavailable, credentials. */
function shared(call: AnswerRow['call'], prefix: string): AnswerRow[] {
  return [
    {
      id: `${prefix}.no-answer`,
      call,
      answer: 'no answer: timeout, connection refused or reset',
      verdict: 'slow-down',
      then: 'retried with backoff inside the chunk budget, then the partition pauses (backoff up to 10 s); lookups are idempotent',
      source: CONTRACT,
      matches: noAnswer,
      example: () => NO_ANSWER,
    },
    {
      id: `${prefix}.429`,
      call,
      answer: '429 with Retry-After',
      verdict: 'slow-down',
      then: 'waits the Retry-After (inside the budget, else the partition pauses for it)',
      source: CONTRACT,
      matches: (a) => a.status === 429,
      example: () => jsonBody(429, { error: 'RATE_LIMITED', message: 'slow down' }, { 'retry-after': '1' }),
    },
    {
      id: `${prefix}.5xx`,
      call,
      answer: '408, 500, 502, 503, 504 (JSON, HTML or empty)',
      verdict: 'slow-down',
      then: 'retried with backoff, then the partition pauses; never an attempt',
      source: CONTRACT,
      matches: isUnavailable,
      example: () => jsonBody(503, { error: 'UNAVAILABLE', message: 'try later' }),
    },
    {
      id: `${prefix}.401`,
      call,
      answer: '401 or 403: our API token is refused',
      verdict: 'setup',
      then: 'hold the stage (scope warehouse), alert, dead-letter nothing; the held chunk retries every ≤ 10 s and the first answer releases every partition',
      source: CONTRACT,
      matches: (a) => a.status === 401 || a.status === 403,
      example: () => jsonBody(401, { error: 'UNAUTHORIZED', message: 'missing or wrong bearer token' }, { 'www-authenticate': 'Bearer' }),
    },
  ];
}

export const LOOKUP_ANSWERS: readonly AnswerRow[] = [
  ...shared('dw-lookup', 'dw-lookup'),
  {
    id: 'dw-lookup.404',
    call: 'dw-lookup',
    answer: '404 or 405 on the lookup URL (the base URL or a proxy route is wrong)',
    verdict: 'setup',
    then: 'hold the stage (scope warehouse), alert, dead-letter nothing',
    source: CONTRACT,
    matches: (a) => a.status === 404 || a.status === 405,
    example: () => htmlBody(404, 'Not Found'),
  },
  {
    id: 'dw-lookup.refused',
    call: 'dw-lookup',
    answer: 'any other 4xx (400 malformed body or more than 500 members, names no member)',
    verdict: 'unknown',
    then: 'bisected at once: a member that fails alone while the others are answered is dead-lettered; every half alike is a setup fault',
    source: CONTRACT,
    bisect: true,
    matches: (a) => a.status >= 400 && a.status < 500,
    example: () => jsonBody(400, { error: 'MALFORMED_BODY', message: 'body must be {"members": [...]}' }),
  },
  {
    id: 'dw-lookup.key',
    call: 'dw-lookup',
    answer: '200, every member once, this one in keys with a key of 1-254 characters',
    verdict: 'ok',
    then: 'the member goes on with its Subscriber Key (cached)',
    source: CONTRACT,
    matches: (a, key) => {
      const e = entry(a, key);
      return e?.kind === 'key' && validKey(e.subscriberKey);
    },
    example: (keys) => lookupAnswer(keys, 'key'),
  },
  {
    id: 'dw-lookup.bad-key',
    call: 'dw-lookup',
    answer: '200, this member in keys with an empty key or one longer than 254 characters',
    verdict: 'member',
    then: 'that member dead-lettered as DW_INVALID_SUBSCRIBER_KEY',
    source: CONTRACT,
    matches: (a, key) => entry(a, key)?.kind === 'key',
    example: (keys) => lookupAnswer(keys, 'bad-key'),
  },
  {
    id: 'dw-lookup.member-error',
    call: 'dw-lookup',
    answer: '200, this member in errors (UNKNOWN_ORG, INVALID_MEMBER_ID, any code)',
    verdict: 'member',
    then: 'that member dead-lettered as DW_{code}; the others go on',
    source: CONTRACT,
    matches: (a, key) => entry(a, key)?.kind === 'error',
    example: (keys) => lookupAnswer(keys, 'error'),
  },
  {
    id: 'dw-lookup.other',
    call: 'dw-lookup',
    answer: 'anything else (a 200 that is not JSON, a member missing or twice, wrong types; 3xx)',
    verdict: 'unknown',
    then: 'retried; after 3 tries bisected (a member whose answer is garbage alone while others are answered is dead-lettered); held if it persists',
    source: CONTRACT,
    matches: () => true,
    example: () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"keys": [ <html>502 Bad Gateway' }),
  },
];

const singleBody = (a: Answer): Json | undefined => asRecord(a.json);

export const KEY_ANSWERS: readonly AnswerRow[] = [
  ...shared('dw-key', 'dw-key'),
  {
    id: 'dw-key.member-error',
    call: 'dw-key',
    answer: '404 {"code": "UNKNOWN_ORG"} (a code for this member), or 400 naming INVALID_MEMBER_ID',
    verdict: 'member',
    then: 'that member dead-lettered as DW_{code}',
    source: CONTRACT,
    matches: (a) =>
      (a.status === 404 && !!asString(singleBody(a)?.['code'])) ||
      (a.status === 400 && (singleBody(a)?.['error'] === 'INVALID_MEMBER_ID' || singleBody(a)?.['code'] === 'INVALID_MEMBER_ID')),
    example: () => jsonBody(404, { code: 'UNKNOWN_ORG', message: 'organization is not known' }),
  },
  {
    id: 'dw-key.404',
    call: 'dw-key',
    answer: '404 without a member code, or 405 (the URL is wrong)',
    verdict: 'setup',
    then: 'hold the stage (scope warehouse), alert, dead-letter nothing',
    source: CONTRACT,
    matches: (a) => a.status === 404 || a.status === 405,
    example: () => htmlBody(404, 'Not Found'),
  },
  {
    id: 'dw-key.refused',
    call: 'dw-key',
    answer: 'any other 4xx',
    verdict: 'unknown',
    then: 'bisected like the batch refusal: alone among answered members it is dead-lettered',
    source: CONTRACT,
    bisect: true,
    matches: (a) => a.status >= 400 && a.status < 500,
    example: () => jsonBody(400, { error: 'MALFORMED_PATH', message: 'bad percent-encoding' }),
  },
  {
    id: 'dw-key.key',
    call: 'dw-key',
    answer: '200 {"orgId", "memberId", "subscriberKey"} for this member, key of 1-254 characters',
    verdict: 'ok',
    then: 'the member goes on with its Subscriber Key (cached)',
    source: CONTRACT,
    matches: (a, key) => {
      const b = singleBody(a);
      return (
        is2xx(a) &&
        key !== undefined &&
        b?.['orgId'] === splitRef(key).orgId &&
        b['memberId'] === splitRef(key).memberId &&
        validKey(b['subscriberKey'])
      );
    },
    example: (keys) => jsonBody(200, { ...splitRef(keys[0] ?? 'UA\u00001'), subscriberKey: `DW-${splitRef(keys[0] ?? 'UA\u00001').memberId}` }),
  },
  {
    id: 'dw-key.bad-key',
    call: 'dw-key',
    answer: '200 for this member with an empty key or one longer than 254 characters',
    verdict: 'member',
    then: 'that member dead-lettered as DW_INVALID_SUBSCRIBER_KEY',
    source: CONTRACT,
    matches: (a, key) => {
      const b = singleBody(a);
      return (
        is2xx(a) &&
        key !== undefined &&
        b?.['orgId'] === splitRef(key).orgId &&
        b['memberId'] === splitRef(key).memberId &&
        typeof b['subscriberKey'] === 'string'
      );
    },
    example: (keys) => jsonBody(200, { ...splitRef(keys[0] ?? 'UA\u00001'), subscriberKey: '' }),
  },
  {
    id: 'dw-key.other',
    call: 'dw-key',
    answer: 'anything else (not JSON, another member, missing fields; 3xx)',
    verdict: 'unknown',
    then: 'retried; bisected after 3 tries; held if it persists',
    source: CONTRACT,
    matches: () => true,
    example: () => ({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>maintenance</html>' }),
  },
];
