import avro from 'avsc';
import type { AugmentedMember } from '../../../consumers/emailer/augmented-member';
import { augmentedMemberReader } from '../../../consumers/emailer/augmented-member';
import { parseOrgConfig } from '../../../consumers/emailer/org-config';
import { planWelcome, toWelcomeSent } from '../../../consumers/emailer/transform';
import { ConfigError } from '../../../consumers/shared/errors';
import { loadSchema } from '../../../consumers/shared/schemas';
import { welcomeMessageKey } from '../../../consumers/shared/sfmc-client';

const orgs = parseOrgConfig(
  JSON.stringify({ UA: { definitionKey: 'welcome-ua', enabled: true }, DL: { definitionKey: 'welcome-dl', enabled: false } }),
  'test',
);

const member = (over: Partial<AugmentedMember> = {}): AugmentedMember => ({
  member_id: 7,
  org_id: 'UA',
  org_member_id: 'M-7',
  email: 'ann@example.com',
  first_name: 'Ann',
  last_name: 'Lee',
  locale: 'en-US',
  subscriber_key: 'UA-ABC',
  member_created_at: 1000,
  source_committed_at: 2000,
  augmented_at: 2100,
  marketing_opt_in: null,
  source_transaction_id: '0-1-30',
  source_transaction_order: 1,
  ...over,
});

describe('planWelcome', () => {
  test('an enabled organization gets a recipient with the subscriber key, address, fixed messageKey and attributes', () => {
    expect(planWelcome(member(), orgs, welcomeMessageKey)).toEqual({
      kind: 'send',
      definitionKey: 'welcome-ua',
      recipient: {
        contactKey: 'UA-ABC',
        to: 'ann@example.com',
        messageKey: welcomeMessageKey('UA', 'M-7'),
        attributes: { FirstName: 'Ann', LastName: 'Lee', Locale: 'en-US', ProgramId: 'UA', MemberId: 'M-7' },
      },
    });
  });

  test('an organization switched off is skipped', () => {
    expect(planWelcome(member({ org_id: 'DL' }), orgs, welcomeMessageKey)).toEqual({ kind: 'skip', reason: 'org-disabled' });
  });

  test('an unknown organization is a per-record error, not a crash', () => {
    expect(planWelcome(member({ org_id: 'ZZ' }), orgs, welcomeMessageKey)).toMatchObject({ kind: 'invalid', code: 'UNKNOWN_ORG' });
  });

  test('an implausible address or a missing subscriber key is a per-record error', () => {
    expect(planWelcome(member({ email: 'nope' }), orgs, welcomeMessageKey)).toMatchObject({ kind: 'invalid', code: 'INVALID_EMAIL' });
    expect(planWelcome(member({ subscriber_key: '' }), orgs, welcomeMessageKey)).toMatchObject({ kind: 'invalid', code: 'INVALID_SUBSCRIBER_KEY' });
  });
});

test('toWelcomeSent fills every column of the audit table and encodes with the WelcomeSent schema', () => {
  const sent = toWelcomeSent(
    member(),
    'welcome-ua',
    { messageKey: 'welcome-x', status: 'queued', answer: 'send.item-queued', requestId: 'req-1' },
    3000,
  );
  expect(sent).toEqual({
    org_id: 'UA',
    org_member_id: 'M-7',
    member_id: 7,
    subscriber_key: 'UA-ABC',
    message_key: 'welcome-x',
    request_id: 'req-1',
    definition_key: 'welcome-ua',
    source_committed_at: 2000,
    sent_at: 3000,
  });
  const type = avro.Type.forSchema(loadSchema('welcome-sent.avsc'), { wrapUnions: false });
  expect(type.isValid(sent)).toBe(true);
  expect(type.isValid(toWelcomeSent(member(), 'welcome-ua', { messageKey: 'k', status: 'duplicate', answer: 'send.item-duplicate' }, 3000))).toBe(
    true,
  );
});

test('the emailer reader view is the current NewMemberAugmented schema', () => {
  const reader = augmentedMemberReader();
  const writer = avro.Type.forSchema(loadSchema('new-member-augmented.avsc'), { wrapUnions: false });
  const bytes = writer.toBuffer(member());
  expect(reader.fromBuffer(bytes, reader.createResolver(writer))).toEqual(member());
});

describe('parseOrgConfig', () => {
  test.each([
    ['not JSON', '{', /not valid JSON/],
    ['an array', '[]', /expected an object/],
    ['an empty object', '{}', /no organizations/],
    ['a bad org id', '{"U A": {"definitionKey": "k", "enabled": true}}', /organization id "U A"/],
    ['a missing definitionKey', '{"UA": {"enabled": true}}', /UA.definitionKey/],
    ['a non-boolean enabled', '{"UA": {"definitionKey": "k", "enabled": "yes"}}', /UA.enabled/],
  ])('%s is a configuration error naming the problem', (_name, text, message) => {
    expect(() => parseOrgConfig(text, 'orgs.json')).toThrow(ConfigError);
    expect(() => parseOrgConfig(text, 'orgs.json')).toThrow(message);
  });
});
