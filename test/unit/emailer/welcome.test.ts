/**
 * The emailer's handler with plain objects: members SFMC accepted in one template group keep
 * their WelcomeSent when another group of the same chunk fails, and the budget reaches SFMC.
 */
import { parseOrgConfig } from '../../../consumers/emailer/org-config';
import { createWelcomeHandler } from '../../../consumers/emailer/welcome';
import { HttpError } from '../../../consumers/shared/errors';
import { createMetrics } from '../../../consumers/shared/metrics';
import { createHolds } from '../../../consumers/shared/holds';
import { createLogger } from '../../../consumers/shared/logger';
import type { Budget } from '../../../consumers/shared/retry';
import type { SfmcClient, SfmcRecipient } from '../../../consumers/shared/sfmc-client';
import avro from 'avsc';
import { input, jsonRegistry, member, nothingSent, openGuards } from './fakes';

const orgs = parseOrgConfig(
  JSON.stringify({ UA: { definitionKey: 'welcome-ua', enabled: true }, AA: { definitionKey: 'welcome-aa', enabled: true } }),
  'test',
);

const guards = openGuards();

function sfmc(failFor: string, budgets: (Budget | undefined)[]): SfmcClient {
  return {
    async sendBatch(definitionKey: string, recipients: readonly SfmcRecipient[], _accountId?: string | number, budget?: Budget) {
      budgets.push(budget);
      if (definitionKey === failFor) throw new HttpError('SFMC_UNAVAILABLE', 'SFMC send answered HTTP 503', { status: 503 });
      return recipients.map((r) => ({ messageKey: r.messageKey, status: 'queued' as const, answer: 'send.item-queued', requestId: 'req-1' }));
    },
    sendOne: async () => {
      throw new Error('not used');
    },
    getStatus: async () => undefined,
    close: async () => undefined,
  };
}

test('a failing template group marks only its members failed; accepted members keep their WelcomeSent (keepOnRetry)', async () => {
  const budgets: (Budget | undefined)[] = [];
  const handler = createWelcomeHandler({
    registry: jsonRegistry,
    reader: avro.Type.forValue({}),
    sfmc: sfmc('welcome-aa', budgets),
    sent: nothingSent,
    orgs,
    metrics: createMetrics('emailer'),
    sentTopic: 'welcome.sent',
    sentSchemaId: 1,
    holds: createHolds({ logger: createLogger('test', 'silent') }),
    guards,
  });
  const records = [input(member('UA', 'u1'), 1), input(member('AA', 'a1'), 2), input(member('UA', 'u2'), 3)];
  const budget = { deadline: Date.now() + 4_000 };
  const outcomes = await handler(records, budget);
  expect(outcomes.map((o) => o.kind)).toEqual(['produce', 'failed', 'produce']);
  expect(
    outcomes
      .filter((o) => o.kind === 'produce')
      .every((o) => o.kind === 'produce' && o.keepOnRetry === true && o.records[0]?.topic === 'welcome.sent'),
  ).toBe(true);
  const failed = outcomes[1];
  expect(failed?.kind === 'failed' && (failed.error as HttpError).code).toBe('SFMC_UNAVAILABLE');
  expect(budgets).toEqual([budget, budget]);
});
