/**
 * The sending part of the emailer (consumers/emailer/send-outcomes.ts) with plain objects: one
 * request per organization, outcomes by verdict, one record's encode error fails it alone, and
 * a member committed over a day ago is asked about at SFMC before any resend.
 */
import { sendWelcomes, STATUS_CHECK_AGE_MS, type Planned } from '../../../consumers/emailer/send-outcomes';
import { AnswerError, type AnswerRow } from '../../../consumers/shared/answers';
import { createHolds } from '../../../consumers/shared/holds';
import { createLogger } from '../../../consumers/shared/logger';
import { createMetrics } from '../../../consumers/shared/metrics';
import type { Registry } from '../../../consumers/shared/registry';
import { SEND_ANSWERS, STATUS_ANSWERS } from '../../../consumers/shared/sfmc-answers';
import type { SendOutcome, SfmcClient, SfmcMessageStatus, SfmcRecipient } from '../../../consumers/shared/sfmc-client';
import { input, jsonRegistry, member } from './fakes';

const NOW = 10 * 86_400_000;
const row = (id: string): AnswerRow => [...SEND_ANSWERS, ...STATUS_ANSWERS].find((r) => r.id === id) as AnswerRow;

function planned(org: string, id: string, committedAgoMs = 1_000): Planned {
  const m = member(org, id, { source_committed_at: NOW - committedAgoMs, member_created_at: NOW - committedAgoMs - 1 });
  return {
    input: input(m, 0),
    member: m,
    definitionKey: `welcome-${org.toLowerCase()}`,
    recipient: { contactKey: m.subscriber_key, to: m.email, messageKey: `key-${org}-${id}` },
  };
}

function sfmc(o: { status?: (key: string) => SfmcMessageStatus | undefined | Error; outcome?: (r: SfmcRecipient, def: string) => SendOutcome } = {}) {
  const sent: { definitionKey: string; keys: string[]; scope?: string }[] = [];
  const asked: string[] = [];
  const client: SfmcClient = {
    async sendBatch(definitionKey, recipients, _account, _budget, scope) {
      sent.push({ definitionKey, keys: recipients.map((r) => r.messageKey), scope });
      return recipients.map(
        (r) => o.outcome?.(r, definitionKey) ?? { messageKey: r.messageKey, status: 'queued', answer: 'send.item-queued', requestId: 'q' },
      );
    },
    sendOne: async () => {
      throw new Error('unused');
    },
    async getStatus(key) {
      asked.push(key);
      const answer = o.status?.(key);
      if (answer instanceof Error) throw answer;
      return answer;
    },
    close: async () => undefined,
  };
  return { client, sent, asked };
}

function deps(client: SfmcClient, registry: Registry = jsonRegistry) {
  const holds = createHolds({ logger: createLogger('test', 'silent') });
  const metrics = createMetrics('emailer-test');
  return {
    holds,
    metrics,
    deps: { registry, sfmc: client, metrics, holds, sentTopic: 'welcome.sent', sentSchemaId: 1, concurrentRequests: 2, now: () => NOW },
  };
}
const budget = { deadline: Date.now() + 4_000 };

test('one request per organization, with its scope; a good answer releases its hold', async () => {
  const s = sfmc();
  const d = deps(s.client);
  d.holds.hold('org:UA', 'send.403', 'refused');
  const out = await sendWelcomes(d.deps, [planned('UA', '1'), planned('AA', '2'), planned('UA', '3')], budget);
  expect(out.map((o) => o.kind)).toEqual(['produce', 'produce', 'produce']);
  expect(s.sent.map((r) => [r.definitionKey, r.keys.length, r.scope])).toEqual([
    ['welcome-ua', 2, 'org:UA'],
    ['welcome-aa', 1, 'org:AA'],
  ]);
  expect(out.every((o) => o.kind === 'produce' && o.keepOnRetry && o.scope?.startsWith('org:'))).toBe(true);
  expect(d.holds.list()).toEqual([]);
  expect(s.asked).toEqual([]); // signups of a second ago: no status call
});

test('outcomes by verdict: a named recipient is dead-lettered, setup and unknown fail, never "sent"', async () => {
  const s = sfmc({
    outcome: (r) =>
      r.messageKey === 'key-UA-bad'
        ? { messageKey: r.messageKey, status: 'rejected', answer: 'send.item-recipient', errorcode: 109121, message: 'InvalidEmailAddress' }
        : r.messageKey === 'key-UA-odd'
          ? {
              messageKey: r.messageKey,
              status: 'failed',
              answer: 'send.2xx-no-item',
              error: new AnswerError(row('send.2xx-no-item'), 'no item', { scope: 'org:UA' }),
            }
          : { messageKey: r.messageKey, status: 'queued', answer: 'send.item-queued' },
  });
  const out = await sendWelcomes(deps(s.client).deps, [planned('UA', 'bad'), planned('UA', 'odd'), planned('UA', 'ok')], budget);
  expect(out.map((o) => o.kind)).toEqual(['dead-letter', 'failed', 'produce']);
  expect(out[0]?.kind === 'dead-letter' && out[0].error.code).toBe('SFMC_109121');
});

test("one record whose WelcomeSent cannot be encoded fails alone; its neighbours' accepted sends keep their outputs", async () => {
  const s = sfmc();
  const picky: Registry = {
    ...jsonRegistry,
    encode: async (id, value) => {
      if ((value as { org_member_id: string }).org_member_id === 'odd') throw new Error('invalid "long"');
      return jsonRegistry.encode(id, value);
    },
  };
  const out = await sendWelcomes(deps(s.client, picky).deps, [planned('UA', '1'), planned('UA', 'odd'), planned('UA', '3')], budget);
  expect(out.map((o) => o.kind)).toEqual(['produce', 'failed', 'produce']);
});

test('a member committed over a day ago: SFMC knows its key → counted as sent without a resend', async () => {
  const s = sfmc({ status: () => ({ messageKey: 'k', eventCategoryType: 'TransactionalSendEvents.EmailSent' }) });
  const out = await sendWelcomes(deps(s.client).deps, [planned('UA', 'old', STATUS_CHECK_AGE_MS + 60_000), planned('UA', 'new')], budget);
  expect(s.asked).toEqual(['key-UA-old']);
  expect(s.sent.map((r) => r.keys)).toEqual([['key-UA-new']]);
  expect(out.map((o) => o.kind)).toEqual(['produce', 'produce']);
  expect(out[0]?.kind === 'produce' && out[0].records[0]?.headers?.['welcome.outcome']).toBe('duplicate');
});

test('a member committed over a day ago that SFMC does not know (404) is sent; a status call that fails fails that member only', async () => {
  const s = sfmc({ status: (key) => (key === 'key-UA-flaky' ? new AnswerError(row('status.5xx'), 'down', { scope: 'org:UA' }) : undefined) });
  const old = STATUS_CHECK_AGE_MS + 60_000;
  const out = await sendWelcomes(deps(s.client).deps, [planned('UA', 'unknown', old), planned('UA', 'flaky', old)], budget);
  expect(s.sent.map((r) => r.keys)).toEqual([['key-UA-unknown']]);
  expect(out.map((o) => o.kind)).toEqual(['produce', 'failed']);
});

test('a refused definition raises the gauge; the next accepted answer lowers it', async () => {
  let refuse = true;
  const s = sfmc({
    outcome: (r) =>
      refuse
        ? {
            messageKey: r.messageKey,
            status: 'failed',
            answer: 'send.definition',
            error: new AnswerError(row('send.definition'), '109111', { scope: 'org:UA' }),
          }
        : { messageKey: r.messageKey, status: 'queued', answer: 'send.item-queued' },
  });
  const d = deps(s.client);
  const gauge = async () => (await d.metrics.definitionRefused.get()).values.find((v) => v.labels['org'] === 'UA')?.value;
  await sendWelcomes(d.deps, [planned('UA', '1')], budget);
  expect(await gauge()).toBe(1);
  refuse = false;
  await sendWelcomes(d.deps, [planned('UA', '1')], budget);
  expect(await gauge()).toBe(0);
});
