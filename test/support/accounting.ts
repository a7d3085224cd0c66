/**
 * The accounting of send attempts (issue 21): what reached the SFMC stand-in, POST by POST,
 * read from its `/__standin/attempts` record — not from `/__standin/sends`, which keeps one
 * send per messageKey and so can never show a second one.
 *
 *   second keys      members (definitionKey + MemberId) POSTed under two different messageKeys:
 *                    two emails, whatever the 109110 window says. Must be 0.
 *   second messages  addresses POSTed two different messageKeys. Must be 0.
 *   re-POSTs         POSTs of a key beyond its first: `absorbed` (answered 109110, a resend SFMC
 *                    swallowed inside its window, a second email after it) and `refused` (the
 *                    earlier POST met a fault: 429, 5xx, dropped, 401 — the retry is the design).
 *                    Reported as figures; a test bounds `absorbed` by what its fault explains.
 */
import type { AttemptsView, SendAttempt } from '../../standins/sfmc/state';
import { stackEnv } from './env';

// The stand-in's own record types: the accounting reads what /__standin/attempts serves.
export type { AttemptsView, SendAttempt };

export interface Account {
  /** Every POSTed recipient of the selection. */
  posts: number;
  /** Distinct messageKeys POSTed. */
  keys: number;
  /** Members (definitionKey:MemberId) with two or more different messageKeys. */
  membersWithSecondKey: string[];
  /** Addresses given two or more different messageKeys. */
  addressesWithSecondMessage: string[];
  /** Re-POSTs of a key answered 109110 (SFMC absorbed them inside its window). */
  absorbed: number;
  /** Re-POSTs of a key after a POST that met a fault (429, 5xx, dropped, 401, an example answer). */
  refused: number;
  /** Attempts per outcome, e.g. { accepted: 180, '429': 30 }. */
  outcomes: Record<string, number>;
  /** The most POSTs any one key got. */
  mostPostsOfOneKey: number;
}

/** Every send attempt the stand-in received at or after `sinceMs` (its clock: the same machine's). */
export async function sendAttempts(sinceMs: number): Promise<AttemptsView> {
  const res = await fetch(`${stackEnv.sfmcUrl}/__standin/attempts?since=${encodeURIComponent(new Date(sinceMs).toISOString())}`);
  if (!res.ok) throw new Error(`SFMC stand-in /__standin/attempts answered ${res.status}`);
  return (await res.json()) as AttemptsView;
}

/** The attempts of members whose MemberId starts with `prefix` (a test's own members). */
export function attemptsOf(view: AttemptsView, prefix: string): SendAttempt[] {
  return Object.values(view.byMessageKey)
    .flat()
    .filter((a) => (a.memberId ?? '').startsWith(prefix));
}

/** The account of the attempts of members whose MemberId starts with `prefix`. */
export function account(view: AttemptsView, prefix: string): Account {
  const mine = attemptsOf(view, prefix);
  const keysByMember = new Map<string, Set<string>>();
  const keysByAddress = new Map<string, Set<string>>();
  const byKey = new Map<string, SendAttempt[]>();
  const outcomes: Record<string, number> = {};
  for (const a of mine) {
    const member = `${a.definitionKey}:${a.memberId ?? ''}`;
    if (!keysByMember.has(member)) keysByMember.set(member, new Set());
    keysByMember.get(member)?.add(a.messageKey);
    const address = a.to.toLowerCase();
    if (!keysByAddress.has(address)) keysByAddress.set(address, new Set());
    keysByAddress.get(address)?.add(a.messageKey);
    byKey.set(a.messageKey, [...(byKey.get(a.messageKey) ?? []), a]);
    outcomes[a.outcome] = (outcomes[a.outcome] ?? 0) + 1;
  }
  let absorbed = 0;
  let refused = 0;
  for (const posts of byKey.values()) {
    // `109110+answer:…`: SFMC absorbed it, then an example-answer fault replaced its reply
    posts.slice(1).forEach((p) => (p.outcome.startsWith('109110') ? absorbed++ : refused++));
  }
  const several = (m: Map<string, Set<string>>): string[] => [...m].filter(([, keys]) => keys.size > 1).map(([k]) => k);
  return {
    posts: mine.length,
    keys: byKey.size,
    membersWithSecondKey: several(keysByMember),
    addressesWithSecondMessage: several(keysByAddress),
    absorbed,
    refused,
    outcomes,
    mostPostsOfOneKey: Math.max(0, ...[...byKey.values()].map((p) => p.length)),
  };
}

/** One line for a test's log and the fault table. */
export const accountLine = (a: Account): string =>
  `${a.posts} POSTs of ${a.keys} keys; re-POSTs absorbed by 109110: ${a.absorbed}, after a fault: ${a.refused}; outcomes ${JSON.stringify(a.outcomes)}`;

/**
 * The assertion every sending test makes: no member got a second messageKey, no address a
 * second message, and at most `maxAbsorbed` re-POSTs answered 109110 (0 unless the test's fault
 * explains them). Returns the account (for figures).
 */
export async function expectNoSecondWelcome(prefix: string, sinceMs: number, maxAbsorbed = 0): Promise<Account> {
  const a = account(await sendAttempts(sinceMs), prefix);
  expect({ membersWithSecondKey: a.membersWithSecondKey, addressesWithSecondMessage: a.addressesWithSecondMessage }).toEqual({
    membersWithSecondKey: [],
    addressesWithSecondMessage: [],
  });
  expect(a.absorbed).toBeLessThanOrEqual(maxAbsorbed);
  return a;
}

/** POSTs for these members (MemberId, exactly) received at or after `sinceMs`: a guard's test wants none. */
export async function postsFor(memberIds: readonly string[], sinceMs: number): Promise<SendAttempt[]> {
  const ids = new Set(memberIds);
  return Object.values((await sendAttempts(sinceMs)).byMessageKey)
    .flat()
    .filter((a) => ids.has(a.memberId ?? ''));
}

/** The SFMC stand-in's counters (its `/__standin/stats`). */
export interface SfmcCounters {
  tokenRequests: number;
  sendRequests: number;
  statusRequests: number;
  accepted: number;
  unauthorized: number;
  rejectedByCode: Record<string, number>;
  injected: Record<string, number>;
}

export async function sfmcCounters(): Promise<SfmcCounters> {
  return (await (await fetch(`${stackEnv.sfmcUrl}/__standin/stats`)).json()) as SfmcCounters;
}

/** The warehouse stand-in's counters (its `/__standin/stats`). */
export interface DwCounters {
  lookups: number;
  membersLooked: number;
  byStatus: Record<string, number>;
}

export async function dwCounters(): Promise<DwCounters> {
  return (await (await fetch(`${stackEnv.dwUrl}/__standin/stats`)).json()) as DwCounters;
}

/**
 * after − before, field by field (nested counters flattened as `injected.fail429`,
 * `rejectedByCode.109110`): faults are shown by differences, never by absolute values, which
 * earlier tests on the same stand-in would have raised already. A counter that went down (the
 * stand-in was restarted) counts its whole after-value.
 */
export function counterDiff(before: object, after: object): Record<string, number> {
  const flat = (o: object, prefix = ''): Map<string, number> => {
    const out = new Map<string, number>();
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'number') out.set(`${prefix}${k}`, v);
      else if (typeof v === 'object' && v !== null) for (const [kk, vv] of flat(v as object, `${prefix}${k}.`)) out.set(kk, vv);
    }
    return out;
  };
  const b = flat(before);
  const diff: Record<string, number> = {};
  for (const [k, v] of flat(after)) {
    const was = b.get(k) ?? 0;
    diff[k] = v >= was ? v - was : v;
  }
  return diff;
}

/** A metric's value on a consumer's /metrics (the sum over the lines that match the label). */
export async function metricValue(url: string, name: string, label = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && l.includes(label))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}
