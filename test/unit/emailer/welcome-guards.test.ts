/**
 * The emailer's handler with its guards, over plain fakes of its clients: which records reach
 * SFMC, which are skipped with a trace on welcome.skipped, and which are held byte for byte.
 */
import avro from 'avsc';
import type { AugmentedMember } from '../../../consumers/emailer/augmented-member';
import { createBreaker } from '../../../consumers/emailer/breaker';
import { GUARD_HEADERS } from '../../../consumers/emailer/guards';
import { parseOrgConfig } from '../../../consumers/emailer/org-config';
import type { SentRecord } from '../../../consumers/emailer/sent-record';
import { createWelcomeHandler } from '../../../consumers/emailer/welcome';
import { createMetrics } from '../../../consumers/shared/metrics';
import { createHolds } from '../../../consumers/shared/holds';
import { createLogger } from '../../../consumers/shared/logger';
import type { Registry } from '../../../consumers/shared/registry';
import type { SfmcClient, SfmcRecipient } from '../../../consumers/shared/sfmc-client';
import type { InputRecord, Outcome } from '../../../consumers/shared/stage';

const NOW = Date.UTC(2026, 11, 1, 9, 0, 0);
const member = (org: string, id: string, over: Partial<AugmentedMember> = {}): AugmentedMember => ({
  member_id: 1,
  org_id: org,
  org_member_id: id,
  email: `${id}@example.com`,
  first_name: null,
  last_name: null,
  locale: null,
  subscriber_key: `${org}-${id}`,
  member_created_at: NOW - 1000,
  source_committed_at: NOW - 500,
  augmented_at: NOW - 400,
  marketing_opt_in: null,
  ...over,
});
let offset = 0;
const input = (m: AugmentedMember, headers: InputRecord['headers'] = {}): InputRecord => ({
  topic: 'welcome.members.augmented',
  partition: 0,
  offset: String(offset++),
  key: Buffer.from(`${m.org_id}:${m.org_member_id}`),
  value: Buffer.from(JSON.stringify(m)),
  headers,
  timestamp: '0',
});

function setup(preExisting: string[] = [], alreadySent: string[] = [], forgotten: string[] = []) {
  const sentTo: SfmcRecipient[] = [];
  const registry: Registry = {
    register: async () => 1,
    encode: async (_id, value) => Buffer.from(JSON.stringify(value)),
    decode: async <T>(bytes: Buffer) => JSON.parse(bytes.toString()) as T,
    ping: async () => true,
  };
  const sfmc = {
    sendBatch: async (_d: string, rs: readonly SfmcRecipient[]) => {
      sentTo.push(...rs);
      return rs.map((r) => ({ messageKey: r.messageKey, status: 'queued' as const, answer: 'send.item-queued', requestId: 'req' }));
    },
  } as unknown as SfmcClient;
  const pick = (list: string[], ms: { orgId: string; orgMemberId: string }[]) =>
    new Set(ms.map((m) => `${m.orgId}:${m.orgMemberId}`).filter((k) => list.includes(k)));
  const sent: SentRecord = {
    lookup: async (ms) => ({
      sent: pick(alreadySent, ms),
      preExisting: pick(preExisting, ms),
      forgotten: new Map([...pick(forgotten, ms)].map((k) => [k, `hash-of-${k}`])),
    }),
    ping: async () => true,
    close: async () => undefined,
  };
  const orgs = parseOrgConfig(
    JSON.stringify({
      UA: { definitionKey: 'w-ua', enabled: true, maxAgeSeconds: 3600, maxPerMinute: 2 },
      AA: { definitionKey: 'w-aa', enabled: true, maxPerTransaction: 3 },
      DL: { definitionKey: 'w-dl', enabled: false },
    }),
    'test',
  );
  const held: string[] = [];
  const handler = createWelcomeHandler({
    registry,
    reader: avro.Type.forSchema('null'),
    sfmc,
    sent,
    orgs,
    metrics: createMetrics('emailer'),
    sentTopic: 'welcome.sent',
    sentSchemaId: 1,
    holds: createHolds({ logger: createLogger('test', 'silent') }),
    now: () => NOW,
    guards: { breaker: createBreaker(() => NOW), skippedTopic: 'welcome.skipped', heldTopic: 'welcome.held', onHeld: (o) => held.push(o) },
  });
  return { handler, sentTo, held };
}

const skipTopic = (o: Outcome): string | undefined => (o.kind === 'skip' ? o.records?.[0]?.topic : undefined);

test("a bisection's control passes the already-sent guard (SFMC answers 109110, nobody is emailed) and only that one", async () => {
  const { handler, sentTo } = setup(['UA:pre'], ['UA:done']);
  const out = await handler([input(member('UA', 'done')), input(member('UA', 'pre'))], { deadline: Date.now() + 4_000 }, { control: true });
  expect(out.map((o) => (o.kind === 'skip' ? o.reason : o.kind))).toEqual(['produce', 'pre-existing']);
  expect(sentTo.map((r) => r.attributes?.MemberId)).toEqual(['done']);
});

test('pre-existing, too-old and switched-off members are skipped with a trace on welcome.skipped; already-sent without one', async () => {
  const { handler, sentTo } = setup(['UA:pre'], ['UA:done']);
  const records = [
    input(member('UA', 'pre')),
    input(member('UA', 'old', { member_created_at: NOW - 3 * 3600_000 })),
    input(member('DL', 'off')),
    input(member('UA', 'done')),
    input(member('AA', 'new')),
  ];
  const out = await handler(records, { deadline: Date.now() + 4_000 });
  expect(out.map((o) => (o.kind === 'skip' ? o.reason : o.kind))).toEqual(['pre-existing', 'too-old', 'org-disabled', 'already-sent', 'produce']);
  expect(out.map(skipTopic)).toEqual(['welcome.skipped', 'welcome.skipped', 'welcome.skipped', undefined, undefined]);
  const trace = out[0]?.kind === 'skip' ? out[0].records?.[0] : undefined;
  expect(trace).toMatchObject({ key: 'UA:pre', value: null, headers: { [GUARD_HEADERS.skipReason]: 'pre-existing', [GUARD_HEADERS.org]: 'UA' } });
  expect(sentTo.map((r) => r.attributes?.MemberId)).toEqual(['new']);
});

test('a forgotten member is never sent, even released, already sent or pre-existing: skipped as forgotten, no trace topic, named by its hash only', async () => {
  const { handler, sentTo, held } = setup(['UA:gone'], ['UA:gone'], ['UA:gone', 'AA:gone2']);
  const records = [
    input(member('UA', 'gone')),
    input(member('AA', 'gone2'), { [GUARD_HEADERS.released]: Buffer.from('true') }),
    input(member('AA', 'kept')),
  ];
  const out = await handler(records, { deadline: Date.now() + 4_000 });
  expect(out.map((o) => (o.kind === 'skip' ? o.reason : o.kind))).toEqual(['forgotten', 'forgotten', 'produce']);
  expect(out.map(skipTopic)).toEqual([undefined, undefined, undefined]);
  expect(out[0]?.trace).toBe('forgotten#hash-of-UA:g');
  expect(JSON.stringify(out.slice(0, 2))).not.toContain('gone@');
  expect(sentTo.map((r) => r.attributes?.MemberId)).toEqual(['kept']);
  expect(held).toEqual([]);
});

test("above UA's ceiling the rest of UA is held byte for byte, AA is sent, and a released record passes the breaker", async () => {
  const { handler, sentTo, held } = setup();
  const ua = ['a', 'b', 'c', 'd'].map((id) => input(member('UA', id)));
  const aa = ['x', 'y', 'z'].map((id) => input(member('AA', id)));
  const out = await handler([...ua, ...aa], { deadline: Date.now() + 4_000 });
  expect(out.map((o) => (o.kind === 'skip' ? o.reason : o.kind))).toEqual(['produce', 'produce', 'held', 'held', 'produce', 'produce', 'produce']);
  const h = out[2]?.kind === 'skip' ? out[2].records?.[0] : undefined;
  expect(h?.topic).toBe('welcome.held');
  expect(h?.value).toBe(ua[2]?.value);
  expect(h?.key).toBe(ua[2]?.key);
  expect(h?.headers?.[GUARD_HEADERS.heldReason]).toBe('more than 2 Welcomes/min for UA');
  expect(held).toEqual(['UA', 'UA']);
  expect(sentTo.map((r) => r.attributes?.MemberId)).toEqual(['a', 'b', 'x', 'y', 'z']);

  const released = input(member('UA', 'c'), { ...ua[2]?.headers, [GUARD_HEADERS.released]: Buffer.from('true') });
  const again = await handler([released, input(member('UA', 'e'))], { deadline: Date.now() + 4_000 });
  expect(again.map((o) => (o.kind === 'skip' ? o.reason : o.kind))).toEqual(['produce', 'held']);
});

test('an import is held past maxPerTransaction row by row, without using up the ceiling; one-row signups of the same minute are sent', async () => {
  const { handler, sentTo, held } = setup();
  const imported = Array.from({ length: 6 }, (_, i) =>
    input(member('AA', `imp${i}`, { source_transaction_id: '0-1-77', source_transaction_order: i + 1 })),
  );
  const signups = ['s1', 's2'].map((id, i) => input(member('AA', id, { source_transaction_id: `0-1-${80 + i}`, source_transaction_order: 1 })));
  const out = await handler([...imported, ...signups], { deadline: Date.now() + 4_000 });
  expect(out.map((o) => (o.kind === 'skip' ? o.reason : o.kind))).toEqual([
    'produce',
    'produce',
    'produce',
    'held',
    'held',
    'held',
    'produce',
    'produce',
  ]);
  const h = out[3]?.kind === 'skip' ? out[3].records?.[0] : undefined;
  expect(h).toMatchObject({ topic: 'welcome.held', key: imported[3]?.key, value: imported[3]?.value });
  expect(h?.headers?.[GUARD_HEADERS.heldGuard]).toBe('import');
  expect(h?.headers?.[GUARD_HEADERS.heldReason]).toBe('row 4 of transaction 0-1-77: more than 3 new AA members in one transaction is an import');
  expect(held).toEqual(['AA', 'AA', 'AA']);
  expect(sentTo.map((r) => r.attributes?.MemberId)).toEqual(['imp0', 'imp1', 'imp2', 's1', 's2']);

  // Released, the import's rows go out like any member.
  const released = input(member('AA', 'imp3', { source_transaction_order: 4 }), { [GUARD_HEADERS.released]: Buffer.from('true') });
  expect((await handler([released], { deadline: Date.now() + 4_000 })).map((o) => o.kind)).toEqual(['produce']);
});

test('the breaker counts a retried chunk once: after five failed tries of UA members the allowance is still theirs', async () => {
  const { handler } = setup();
  const ua = ['a', 'b'].map((id) => input(member('UA', id)));
  for (let i = 0; i < 5; i++) {
    const out = await handler(ua, { deadline: Date.now() + 4_000 });
    expect(out.map((o) => o.kind)).toEqual(['produce', 'produce']);
  }
  // maxPerMinute 2: a third new member is the first above it.
  const third = await handler([input(member('UA', 'c'))], { deadline: Date.now() + 4_000 });
  expect(third.map((o) => (o.kind === 'skip' ? o.reason : o.kind))).toEqual(['held']);
});
