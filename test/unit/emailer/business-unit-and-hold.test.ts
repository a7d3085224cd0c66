// Issue 12 items 7 and 8: an organization's business unit, and a refused send definition holds its Welcomes.
import avro from 'avsc';
import { input, jsonRegistry, nothingSent, openGuards } from './fakes';
import type { AugmentedMember } from '../../../consumers/emailer/augmented-member';
import { parseOrgConfig } from '../../../consumers/emailer/org-config';
import { planWelcome } from '../../../consumers/emailer/transform';
import { createWelcomeHandler } from '../../../consumers/emailer/welcome';
import { AnswerError, classify, toAnswer } from '../../../consumers/shared/answers';
import { ConfigError } from '../../../consumers/shared/errors';
import { classifyFailure } from '../../../consumers/shared/failure';
import { createHolds } from '../../../consumers/shared/holds';
import { createLogger } from '../../../consumers/shared/logger';
import { SEND_ANSWERS } from '../../../consumers/shared/sfmc-answers';
import { createMetrics } from '../../../consumers/shared/metrics';
import type { SendOutcome, SfmcClient, SfmcRecipient } from '../../../consumers/shared/sfmc-client';
import { welcomeMessageKey } from '../../../consumers/shared/sfmc-client';

const orgsJson = { UA: { definitionKey: 'welcome-ua', enabled: true, accountId: 5100 }, AA: { definitionKey: 'welcome-aa', enabled: true } };
const orgs = parseOrgConfig(JSON.stringify(orgsJson), 'test');

const member = (org: string, id: string): AugmentedMember => ({
  member_id: 1,
  org_id: org,
  org_member_id: id,
  email: `${id}@example.com`,
  first_name: null,
  last_name: null,
  locale: null,
  subscriber_key: `SK-${id}`,
  member_created_at: 1,
  source_committed_at: 2,
  augmented_at: 3,
  marketing_opt_in: null,
});

describe('organization business unit (accountId)', () => {
  test('is optional, accepted as a number or numeric string, and travels with the plan', () => {
    expect(orgs.get('UA')?.accountId).toBe(5100);
    expect(orgs.get('AA')?.accountId).toBeUndefined();
    expect(parseOrgConfig('{"UA":{"definitionKey":"d","enabled":true,"accountId":"42"}}', 't').get('UA')?.accountId).toBe(42);
    expect(() => parseOrgConfig('{"UA":{"definitionKey":"d","enabled":true,"accountId":"MID-1"}}', 't')).toThrow(ConfigError);
    expect(() => parseOrgConfig('{"UA":{"definitionKey":"d","enabled":true,"accountId":-3}}', 't')).toThrow(/UA.accountId/);
    expect(planWelcome(member('UA', 'M1'), orgs, welcomeMessageKey)).toMatchObject({ kind: 'send', accountId: 5100 });
    expect(planWelcome(member('AA', 'M2'), orgs, welcomeMessageKey)).not.toHaveProperty('accountId');
  });
});

describe('the Welcome handler', () => {
  // Plain-object dependencies: the "registry" passes JSON through, SFMC is scripted per definition.
  const guards = openGuards();
  const budget = (): { deadline: number } => ({ deadline: Date.now() + 4_000 });

  function setup(refuse: Set<string>) {
    const calls: { definitionKey: string; accountId?: string | number; keys: string[] }[] = [];
    const sfmc: SfmcClient = {
      async sendBatch(definitionKey, recipients: readonly SfmcRecipient[], accountId) {
        calls.push({ definitionKey, accountId, keys: recipients.map((r) => r.messageKey) });
        const keys = recipients.map((r) => r.messageKey);
        const refusal = toAnswer((SEND_ANSWERS.find((r) => r.id === 'send.definition') as (typeof SEND_ANSWERS)[number]).example(keys), keys);
        const row = classify(SEND_ANSWERS, refusal, keys[0]);
        return recipients.map((r): SendOutcome =>
          refuse.has(definitionKey)
            ? {
                messageKey: r.messageKey,
                status: 'failed',
                answer: row.id,
                errorcode: 109111,
                error: new AnswerError(row, 'InvalidDefinitionKey', { scope: 'org:UA' }),
              }
            : { messageKey: r.messageKey, status: 'queued', answer: 'send.item-queued', requestId: 'req-1' },
        );
      },
      sendOne: async () => {
        throw new Error('not used');
      },
      getStatus: async () => undefined,
      close: async () => undefined,
    };
    const metrics = createMetrics('emailer-test');
    const holds = createHolds({ logger: createLogger('test', 'silent') });
    const handler = createWelcomeHandler({
      holds,
      registry: jsonRegistry,
      reader: avro.Type.forSchema('string'),
      sfmc,
      sent: nothingSent,
      orgs,
      metrics,
      sentTopic: 'welcome.sent',
      sentSchemaId: 1,
      guards,
      now: () => 10,
    });
    return { calls, metrics, handler, holds };
  }

  test('sends each organization in its own business unit', async () => {
    const { calls, handler } = setup(new Set());
    const outcomes = await handler([input(member('UA', 'M1'), 0), input(member('AA', 'M2'), 1)], budget());
    expect(outcomes.map((o) => o.kind)).toEqual(['produce', 'produce']);
    expect(calls.map((c) => [c.definitionKey, c.accountId])).toEqual([
      ['welcome-ua', 5100],
      ['welcome-aa', undefined],
    ]);
  });

  test('a refused definitionKey holds the batch (failed as setup, dead-letters nothing) and raises the alert gauge; fixed, it clears', async () => {
    const refuse = new Set(['welcome-ua']);
    const { handler, metrics, holds } = setup(refuse);
    const batch = [input(member('UA', 'M1'), 0), input(member('UA', 'M3'), 1)];
    // Failed, not dead-lettered: the verdict is setup, so the stage holds org:UA and retries (chunk.ts).
    const held = await handler(batch, budget());
    expect(held.map((o) => o.kind)).toEqual(['failed', 'failed']);
    for (const o of held)
      expect(o.kind === 'failed' && classifyFailure(o.error, 'emailer')).toEqual({ kind: 'setup', scope: 'org:UA', reason: 'send.definition' });
    const gauge = async () => (await metrics.definitionRefused.get()).values.find((v) => v.labels['org'] === 'UA')?.value;
    expect(await gauge()).toBe(1);
    holds.hold('org:UA', 'send.definition', 'refused'); // what the chunk does with the setup failure
    refuse.clear(); // someone creates / activates the definition in SFMC; the paused batch is retried
    expect((await handler(batch, budget())).map((o) => o.kind)).toEqual(['produce', 'produce']);
    expect(await gauge()).toBe(0);
    expect(holds.list()).toEqual([]); // the good answer released the hold
  });
});
