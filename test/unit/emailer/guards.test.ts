import type { AugmentedMember } from '../../../consumers/emailer/augmented-member';
import { createBreaker } from '../../../consumers/emailer/breaker';
import { GUARD_HEADERS, heldRecord, isReleased } from '../../../consumers/emailer/guards';
import { parseOrgConfig } from '../../../consumers/emailer/org-config';
import { isTooOld, planWelcome } from '../../../consumers/emailer/transform';
import { ConfigError } from '../../../consumers/shared/errors';
import { welcomeMessageKey } from '../../../consumers/shared/sfmc-client';
import type { InputRecord } from '../../../consumers/shared/stage';

const member = (over: Partial<AugmentedMember> = {}): AugmentedMember => ({
  member_id: 7,
  org_id: 'UA',
  org_member_id: 'M-7',
  email: 'ann@example.com',
  first_name: 'Ann',
  last_name: null,
  locale: null,
  subscriber_key: 'UA-ABC',
  member_created_at: 1_000_000,
  source_committed_at: 1_000_500,
  augmented_at: 1_000_600,
  marketing_opt_in: null,
  ...over,
});

describe('org config guards', () => {
  const parse = (o: unknown) => parseOrgConfig(JSON.stringify(o), 'orgs.json');

  test('maxAgeSeconds and maxPerMinute are read; absent means no guard', () => {
    const orgs = parse({
      UA: { definitionKey: 'w', enabled: true, maxAgeSeconds: 3600, maxPerMinute: 500 },
      AA: { definitionKey: 'w', enabled: true },
    });
    expect(orgs.get('UA')).toEqual({ definitionKey: 'w', enabled: true, maxAgeSeconds: 3600, maxPerMinute: 500 });
    expect(orgs.get('AA')).toEqual({ definitionKey: 'w', enabled: true });
  });

  test.each([
    [{ maxAgeSeconds: 0 }, /UA.maxAgeSeconds must be a whole number/],
    [{ maxAgeSeconds: '1d' }, /UA.maxAgeSeconds/],
    [{ maxPerMinute: 1.5 }, /UA.maxPerMinute must be a whole number/],
    [{ maxPerMinute: -3 }, /UA.maxPerMinute/],
    [{ maxPerMinutes: 100 }, /unknown setting\(s\) maxPerMinutes/],
  ])('%j is refused at start with the field named', (extra, message) => {
    expect(() => parse({ UA: { definitionKey: 'w', enabled: true, ...extra } })).toThrow(ConfigError);
    expect(() => parse({ UA: { definitionKey: 'w', enabled: true, ...extra } })).toThrow(message);
  });
});

describe('age guard', () => {
  const orgs = parseOrgConfig(
    JSON.stringify({ UA: { definitionKey: 'w', enabled: true, maxAgeSeconds: 60 }, AA: { definitionKey: 'w', enabled: true } }),
    't',
  );

  test('a row created more than maxAgeSeconds before its commit is skipped as too-old', () => {
    const old = member({ member_created_at: 1_000_000, source_committed_at: 1_000_000 + 60_001 });
    expect(planWelcome(old, orgs, welcomeMessageKey)).toEqual({ kind: 'skip', reason: 'too-old' });
  });

  test('exactly maxAgeSeconds old is still sent; an organization without a maximum always is', () => {
    expect(planWelcome(member({ source_committed_at: 1_000_000 + 60_000 }), orgs, welcomeMessageKey).kind).toBe('send');
    expect(planWelcome(member({ org_id: 'AA', source_committed_at: 1_000_000 + 10 * 86_400_000 }), orgs, welcomeMessageKey).kind).toBe('send');
  });

  test('an unknown created_at cannot be judged and passes', () => {
    expect(isTooOld({ member_created_at: null, source_committed_at: 5 }, 1)).toBe(false);
  });
});

describe('send-rate breaker', () => {
  test('admits up to the ceiling per sliding minute, holds the rest, and closes a minute after the burst', () => {
    let t = 0;
    const b = createBreaker(() => t);
    const admitted = Array.from({ length: 250 }, () => b.admit('UA', 100)).filter(Boolean).length;
    expect(admitted).toBe(100);
    expect(b.isOpen('UA', 100)).toBe(true);
    // Another organization is unaffected.
    expect(b.admit('AA', 100)).toBe(true);
    // The burst goes on (held attempts count), so 30 s later it is still open.
    t = 30_000;
    expect(b.admit('UA', 100)).toBe(false);
    // A minute after the last attempt everything has left the window.
    t = 91_000;
    expect(b.isOpen('UA', 100)).toBe(false);
    expect(b.admit('UA', 100)).toBe(true);
    expect(b.attempts('UA')).toBe(1);
  });

  test('buckets older than a minute leave the window one second at a time', () => {
    let t = 0;
    const b = createBreaker(() => t);
    for (let i = 0; i < 60; i++) {
      t = i * 1000;
      b.admit('UA', 1000);
    }
    expect(b.attempts('UA')).toBe(60);
    t = 60_000;
    expect(b.attempts('UA')).toBe(59);
    t = 200_000;
    expect(b.attempts('UA')).toBe(0);
  });

  test('no ceiling: never holds', () => {
    const b = createBreaker(() => 0);
    expect(Array.from({ length: 10_000 }, () => b.admit('UA', undefined)).every(Boolean)).toBe(true);
    expect(b.isOpen('UA', undefined)).toBe(false);
  });
});

describe('held records', () => {
  const input: InputRecord = {
    topic: 'welcome.members.augmented',
    partition: 2,
    offset: '41',
    key: Buffer.from('UA:M-7'),
    value: Buffer.from([0, 0, 0, 0, 9, 1]),
    headers: { 'welcome.trace': 'UA/M-7#7' },
    timestamp: '0',
  };

  test('keep the original key, value and headers byte for byte, plus why and when', () => {
    const r = heldRecord('welcome.held', input, 'UA', 'more than 100 Welcomes/min for UA', Date.UTC(2026, 0, 1));
    expect(r.key).toBe(input.key);
    expect(r.value).toBe(input.value);
    expect(r.headers).toMatchObject({
      'welcome.trace': 'UA/M-7#7',
      [GUARD_HEADERS.heldReason]: 'more than 100 Welcomes/min for UA',
      [GUARD_HEADERS.org]: 'UA',
      [GUARD_HEADERS.at]: '2026-01-01T00:00:00.000Z',
    });
  });

  test('a released record is recognised by its header only', () => {
    expect(isReleased(input)).toBe(false);
    expect(isReleased({ ...input, headers: { [GUARD_HEADERS.released]: Buffer.from('true') } })).toBe(true);
  });
});
