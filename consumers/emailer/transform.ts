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
  | { kind: 'skip'; reason: 'org-disabled' }
  | { kind: 'invalid'; code: string; message: string };

export function planWelcome(member: AugmentedMember, orgs: OrgConfig, messageKey: (orgId: string, orgMemberId: string) => string): WelcomePlan {
  const org = orgs.get(member.org_id);
  if (!org) return { kind: 'invalid', code: 'UNKNOWN_ORG', message: `organization "${member.org_id}" is not in the Welcome configuration` };
  if (!org.enabled) return { kind: 'skip', reason: 'org-disabled' };
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
