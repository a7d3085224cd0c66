/**
 * Augmented member → the SFMC recipient of its Welcome, and an accepted send → the
 * WelcomeSent record. Pure functions over plain objects.
 */
import { isPlausibleEmail } from '../shared/member';
import type { SendOutcome, SfmcRecipient } from '../shared/sfmc-client';
import type { AugmentedMember } from './augmented-member';
import type { OrgConfig } from './org-config';

export type WelcomePlan =
  | { kind: 'send'; definitionKey: string; accountId?: number; recipient: SfmcRecipient }
  | { kind: 'skip'; reason: 'org-disabled' | 'too-old' }
  | { kind: 'invalid'; code: string; message: string };

export function planWelcome(member: AugmentedMember, orgs: OrgConfig, messageKey: (orgId: string, orgMemberId: string) => string): WelcomePlan {
  const org = orgs.get(member.org_id);
  if (!org) return { kind: 'invalid', code: 'UNKNOWN_ORG', message: `organization "${member.org_id}" is not in the Welcome configuration` };
  if (!org.enabled) return { kind: 'skip', reason: 'org-disabled' };
  if (isTooOld(member, org.maxAgeSeconds)) return { kind: 'skip', reason: 'too-old' };
  if (!isPlausibleEmail(member.email)) return { kind: 'invalid', code: 'INVALID_EMAIL', message: 'email is not a plausible address' };
  if (member.subscriber_key === '' || member.subscriber_key.length > 254) {
    return { kind: 'invalid', code: 'INVALID_SUBSCRIBER_KEY', message: 'subscriber key is empty or longer than 254 characters' };
  }
  return {
    kind: 'send',
    definitionKey: org.definitionKey,
    ...(org.accountId !== undefined ? { accountId: org.accountId } : {}),
    recipient: {
      contactKey: member.subscriber_key,
      to: member.email,
      messageKey: messageKey(member.org_id, member.org_member_id),
      attributes: {
        FirstName: member.first_name,
        LastName: member.last_name,
        Locale: member.locale,
        ProgramId: member.org_id,
        MemberId: member.org_member_id,
      },
    },
  };
}

/**
 * Age guard: created_at against the commit time. A row created long before it was committed
 * to the binlog is a restore or a back-dated import, not a signup. A row without created_at
 * (the column is NOT NULL, so only a changed schema does this) cannot be judged and passes;
 * the send-rate breaker still stands behind it.
 */
export function isTooOld(member: Pick<AugmentedMember, 'member_created_at' | 'source_committed_at'>, maxAgeSeconds: number | undefined): boolean {
  if (maxAgeSeconds === undefined || member.member_created_at === null) return false;
  return member.source_committed_at - member.member_created_at > maxAgeSeconds * 1000;
}

/** The WelcomeSent record (schemas/welcome-sent.avsc); its fields are the audit table's columns. */
export function toWelcomeSent(member: AugmentedMember, definitionKey: string, outcome: SendOutcome, sentAt: number): Record<string, unknown> {
  return {
    org_id: member.org_id,
    org_member_id: member.org_member_id,
    member_id: member.member_id,
    subscriber_key: member.subscriber_key,
    message_key: outcome.messageKey,
    request_id: outcome.requestId ?? null,
    definition_key: definitionKey,
    source_committed_at: member.source_committed_at,
    sent_at: sentAt,
  };
}
