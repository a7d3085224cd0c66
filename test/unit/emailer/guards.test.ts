import type { AugmentedMember } from '../../../consumers/emailer/augmented-member';
import { createBreaker, decideAdmissions } from '../../../consumers/emailer/breaker';
import { GUARD_HEADERS, heldRecord, isReleased, sendGuard } from '../../../consumers/emailer/guards';
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

  test('maxAgeSeconds, maxPerMinute and maxPerTransaction are read; absent means no guard', () => {
    const orgs = parse({
      UA: { definitionKey: 'w', enabled: true, maxAgeSeconds: 3600, maxPerMinute: 500, maxPerTransaction: 20 },
      AA: { definitionKey: 'w', enabled: true },
    });
    expect(orgs.get('UA')).toEqual({ definitionKey: 'w', enabled: true, maxAgeSeconds: 3600, maxPerMinute: 500, maxPerTransaction: 20 });
    expect(orgs.get('AA')).toEqual({ definitionKey: 'w', enabled: true });
  });

  test.each([
    [{ maxAgeSeconds: 0 }, /UA.maxAgeSeconds must be a whole number/],
    [{ maxAgeSeconds: '1d' }, /UA.maxAgeSeconds/],
    [{ maxPerMinute: 1.5 }, /UA.maxPerMinute must be a whole number/],
    [{ maxPerMinute: -3 }, /UA.maxPerMinute/],
    [{ maxPerMinutes: 100 }, /unknown setting\(s\) maxPerMinutes/],
    [{ maxPerTransaction: 0 }, /UA.maxPerTransaction must be a whole number/],
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
  const keys = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `UA:${prefix}${i}`);

  test('the rule: new members are admitted while the window is below the ceiling; held ones count too', () => {
    const { admitted, fresh } = decideAdmissions(98, 100, ['UA:a', 'UA:b', 'UA:c', 'UA:d'], new Map());
    expect([...admitted]).toEqual([
      ['UA:a', true],
      ['UA:b', true],
      ['UA:c', false],
      ['UA:d', false],
    ]);
    expect(fresh).toEqual(['UA:a', 'UA:b', 'UA:c', 'UA:d']);
  });

  test('the rule: a member counted before keeps its verdict and counts nothing; a member twice in a chunk counts once', () => {
    const earlier = new Map([
      ['UA:old-in', true],
      ['UA:old-held', false],
    ]);
    const { admitted, fresh } = decideAdmissions(99, 100, ['UA:old-in', 'UA:new', 'UA:new', 'UA:old-held', 'UA:late'], earlier);
    expect(Object.fromEntries(admitted)).toEqual({ 'UA:old-in': true, 'UA:new': true, 'UA:old-held': false, 'UA:late': false });
    expect(fresh).toEqual(['UA:new', 'UA:late']);
  });

  test('admits up to the ceiling per sliding minute, holds the rest, and closes a minute after the burst', async () => {
    let t = 0;
    const b = createBreaker(() => t);
    const held = await b.admit('UA', keys('m', 250), 100);
    expect(held.size).toBe(150);
    expect(b.isOpen('UA')).toBe(true);
    // Another organization is unaffected.
    expect((await b.admit('AA', ['AA:x'], 100)).size).toBe(0);
    expect(b.isOpen('AA')).toBe(false);
    // The burst goes on (held members count), so 30 s later it is still holding.
    t = 30_000;
    expect((await b.admit('UA', ['UA:later'], 100)).size).toBe(1);
    // A minute after the last new member everything has left the window.
    t = 91_000;
    expect(b.isOpen('UA')).toBe(false);
    expect((await b.admit('UA', ['UA:quiet'], 100)).size).toBe(0);
  });

  test('a retried chunk, an isolation pass or a replay counts no member again: the allowance is not used up by retries', async () => {
    const b = createBreaker(() => 0);
    const chunk = keys('c', 50);
    // SFMC down: the same chunk is tried five times, then its members one by one.
    for (let attempt = 0; attempt < 5; attempt++) expect((await b.admit('UA', chunk, 100)).size).toBe(0);
    for (const k of chunk) expect((await b.admit('UA', [k], 100)).size).toBe(0);
    // After recovery, 50 real signups still fit under the ceiling of 100.
    expect((await b.admit('UA', keys('real', 50), 100)).size).toBe(0);
    expect((await b.admit('UA', ['UA:one-too-many'], 100)).size).toBe(1);
  });

  test('a held member stays held when its chunk is retried, even after the window has moved on', async () => {
    let t = 0;
    const b = createBreaker(() => t);
    expect([...(await b.admit('UA', ['UA:a', 'UA:b'], 1))]).toEqual(['UA:b']);
    t = 120_000;
    expect([...(await b.admit('UA', ['UA:a', 'UA:b', 'UA:c'], 1))]).toEqual(['UA:b']);
  });
});

describe('send guards (import, ceiling)', () => {
  const orgUa = { maxPerMinute: 600, maxPerTransaction: 20 };
  const row = (order: number | null): AugmentedMember => member({ source_transaction_id: '0-1-30', source_transaction_order: order });

  test('rows up to maxPerTransaction of a transaction are counted by the breaker; past it they are an import, held without counting', () => {
    expect(sendGuard(row(1), orgUa, false)).toEqual({ kind: 'count', maxPerMinute: 600 });
    expect(sendGuard(row(20), orgUa, false)).toEqual({ kind: 'count', maxPerMinute: 600 });
    expect(sendGuard(row(21), orgUa, false)).toEqual({
      kind: 'hold',
      guard: 'import',
      reason: 'row 21 of transaction 0-1-30: more than 20 new UA members in one transaction is an import',
    });
  });

  test('a released record passes both; an unknown position is judged by the ceiling alone; no guard configured sends', () => {
    expect(sendGuard(row(3000), orgUa, true)).toEqual({ kind: 'send' });
    expect(sendGuard(row(null), orgUa, false)).toEqual({ kind: 'count', maxPerMinute: 600 });
    expect(sendGuard(member(), orgUa, false)).toEqual({ kind: 'count', maxPerMinute: 600 });
    expect(sendGuard(row(3000), {}, false)).toEqual({ kind: 'send' });
    expect(sendGuard(row(3000), { maxPerTransaction: 20 }, false).kind).toBe('hold');
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
      [GUARD_HEADERS.heldGuard]: 'ceiling',
      [GUARD_HEADERS.org]: 'UA',
      [GUARD_HEADERS.at]: '2026-01-01T00:00:00.000Z',
    });
  });

  test('a released record is recognised by its header only', () => {
    expect(isReleased(input)).toBe(false);
    expect(isReleased({ ...input, headers: { [GUARD_HEADERS.released]: Buffer.from('true') } })).toBe(true);
  });
});
