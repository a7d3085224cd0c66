/**
 * The member identity and the checks every stage agrees on. A member is (org_id,
 * org_member_id) across systems; `id` is local to the source database.
 */
export const ORG_ID = /^[A-Za-z0-9_]{1,16}$/;
export const MAX_ORG_MEMBER_ID = 64;
export const MAX_EMAIL = 254;

/** Kafka key of every record about one member: same member → same partition → in order. */
export function memberKey(orgId: string, orgMemberId: string): string {
  return `${orgId}:${orgMemberId}`;
}

/** For logs: identifies the member without any PII (no email, no name). */
export function memberTrace(orgId: string, orgMemberId: string, id?: number | null): string {
  return id === undefined || id === null ? `${orgId}/${orgMemberId}` : `${orgId}/${orgMemberId}#${id}`;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function isValidOrgMemberId(value: string): boolean {
  return value.length > 0 && value.length <= MAX_ORG_MEMBER_ID && !CONTROL.test(value);
}

/**
 * Deliberately plausible, not RFC 5322: one @, non-empty local part, a dotted domain, no
 * spaces or control characters, ≤ 254 characters. Unicode is allowed (SMTPUTF8 addresses
 * exist); SFMC makes the final call (109121) and its rejection is dead-lettered too.
 */
export function isPlausibleEmail(value: string): boolean {
  if (value.length === 0 || value.length > MAX_EMAIL || /\s/.test(value) || CONTROL.test(value)) return false;
  const at = value.lastIndexOf('@');
  if (at <= 0 || value.indexOf('@') !== at) return false;
  const domain = value.slice(at + 1);
  return /^[^.@]+(\.[^.@]+)+$/.test(domain);
}
