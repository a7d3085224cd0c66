import type { KeyStore } from './key-store';

/** Pure request rules of the lookup contract (dw-key-api.md), kept apart from the HTTP plumbing. */

export const MAX_LOOKUP_ITEMS = 500;
/** members.org_member_id is VARCHAR(64). */
export const MAX_MEMBER_ID_LENGTH = 64;

export interface Member {
  orgId: string;
  memberId: string;
}

export interface LookupResponse {
  keys: Array<Member & { subscriberKey: string }>;
  errors: Array<Member & { code: string; message: string }>;
}

export interface BadRequest {
  error: string;
  message: string;
}

/** Shape of the body only; per-member validity is decided later, per member. */
export function parseLookupBody(body: unknown): Member[] | BadRequest {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { members?: unknown }).members)) {
    return { error: 'MALFORMED_BODY', message: 'body must be {"members": [{"orgId": "...", "memberId": "..."}]}' };
  }
  const items = (body as { members: unknown[] }).members;
  if (items.length < 1 || items.length > MAX_LOOKUP_ITEMS) {
    return { error: 'TOO_MANY_ITEMS', message: `members must hold 1 to ${MAX_LOOKUP_ITEMS} items, got ${items.length}` };
  }
  const members: Member[] = [];
  for (const [index, item] of items.entries()) {
    const { orgId, memberId } = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    if (typeof orgId !== 'string' || typeof memberId !== 'string') {
      return { error: 'MALFORMED_BODY', message: `members[${index}] needs string orgId and memberId` };
    }
    members.push({ orgId, memberId });
  }
  return members;
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Our rule for INVALID_MEMBER_ID: empty, longer than 64 chars, or holding control characters. */
export function memberIdProblem(memberId: string): string | undefined {
  if (memberId.length === 0) return 'memberId is empty';
  if (memberId.length > MAX_MEMBER_ID_LENGTH) return `memberId is longer than ${MAX_MEMBER_ID_LENGTH} characters`;
  if (CONTROL_CHARS.test(memberId)) return 'memberId contains control characters';
  return undefined;
}

/**
 * Answers every distinct requested member exactly once, in `keys` or in `errors`
 * (a member asked twice in one request is answered once). Creates missing keys.
 */
export function lookupKeys(members: readonly Member[], orgs: ReadonlySet<string>, store: KeyStore): { response: LookupResponse; created: number } {
  const seen = new Set<string>();
  const valid: Member[] = [];
  const errors: LookupResponse['errors'] = [];
  for (const { orgId, memberId } of members) {
    const ref = `${orgId}\u0000${memberId}`;
    if (seen.has(ref)) continue;
    seen.add(ref);
    if (!orgs.has(orgId)) {
      errors.push({ orgId, memberId, code: 'UNKNOWN_ORG', message: `organization "${orgId}" is not known` });
      continue;
    }
    const problem = memberIdProblem(memberId);
    if (problem) errors.push({ orgId, memberId, code: 'INVALID_MEMBER_ID', message: problem });
    else valid.push({ orgId, memberId });
  }
  const { keys, created } = store.getOrCreate(valid);
  return {
    response: { keys: valid.map((m, i) => ({ ...m, subscriberKey: keys[i] as string })), errors },
    created,
  };
}
