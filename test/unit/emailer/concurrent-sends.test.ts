/**
 * The ordering rule of concurrent SFMC requests, with plain objects: one member's records share
 * one group in record order; groups run at most `limit` at once; the chunk's handler returns only
 * after every send of the chunk is answered, a failing group included.
 */
import { forEachLimited, groupInOrder } from '../../../consumers/emailer/concurrent-sends';
import { parseOrgConfig } from '../../../consumers/emailer/org-config';
import { createWelcomeHandler } from '../../../consumers/emailer/welcome';
import { HttpError } from '../../../consumers/shared/errors';
import { createMetrics } from '../../../consumers/shared/metrics';
import { createHolds } from '../../../consumers/shared/holds';
import { createLogger } from '../../../consumers/shared/logger';
import type { SfmcClient, SfmcRecipient } from '../../../consumers/shared/sfmc-client';
import avro from 'avsc';
import { input, jsonRegistry, member, openGuards } from './fakes';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('groupInOrder', () => {
  test('every record of a member is in one group, in record order; groups in first-seen order', () => {
    const records = [
      { member: 'UA:1', org: 'UA', offset: 1 },
      { member: 'AA:7', org: 'AA', offset: 2 },
      { member: 'UA:1', org: 'UA', offset: 3 },
      { member: 'UA:2', org: 'UA', offset: 4 },
      { member: 'AA:7', org: 'AA', offset: 5 },
    ];
    const groups = groupInOrder(records, (r) => r.org);
    expect(groups.map((g) => g.map((r) => r.offset))).toEqual([
      [1, 3, 4],
      [2, 5],
    ]);
    for (const m of new Set(records.map((r) => r.member))) expect(groups.filter((g) => g.some((r) => r.member === m))).toHaveLength(1);
  });
});

describe('forEachLimited', () => {
  test('never more than `limit` tasks at once, and every item is run once', async () => {
    let inFlight = 0;
    let most = 0;
    const ran: number[] = [];
    await forEachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await tick(n % 3);
      ran.push(n);
      inFlight--;
    });
    expect(most).toBe(3);
    expect(ran.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  test('limit 1 runs them one after another, in order', async () => {
    const events: string[] = [];
    await forEachLimited(['a', 'b', 'c'], 1, async (x) => {
      events.push(`start ${x}`);
      await tick(1);
      events.push(`end ${x}`);
    });
    expect(events).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  test('a rejection is thrown only after the slower tasks settled; the first one in item order wins', async () => {
    let slowDone = false;
    const p = forEachLimited([0, 1, 2], 3, async (n) => {
      if (n === 0) {
        await tick(30);
        slowDone = true;
        return;
      }
      await tick(n);
      throw new Error(`task ${n}`);
    });
    await expect(p).rejects.toThrow('task 1');
    expect(slowDone).toBe(true);
  });
});

// ---- the handler: groups in flight at once, outcomes per member, nothing returned early
const orgs = parseOrgConfig(
  JSON.stringify({ UA: { definitionKey: 'welcome-ua', enabled: true }, AA: { definitionKey: 'welcome-aa', enabled: true } }),
  'test',
);

/** SFMC whose answer per definition is released by the test; records what was in flight when. */
function gatedSfmc(): {
  client: SfmcClient;
  events: string[];
  release: (def: string, fail?: boolean) => void;
  started: (def: string) => Promise<void>;
} {
  const events: string[] = [];
  const gates = new Map<string, { open: (fail: boolean) => void; opened: Promise<boolean> }>();
  const startWaiters = new Map<string, () => void>();
  const gate = (def: string): { open: (fail: boolean) => void; opened: Promise<boolean> } => {
    let g = gates.get(def);
    if (!g) {
      let open!: (fail: boolean) => void;
      const opened = new Promise<boolean>((r) => (open = r));
      g = { open, opened };
      gates.set(def, g);
    }
    return g;
  };
  const client: SfmcClient = {
    async sendBatch(definitionKey: string, recipients: readonly SfmcRecipient[]) {
      events.push(`start ${definitionKey} ${recipients.map((r) => r.contactKey).join(',')}`);
      startWaiters.get(definitionKey)?.();
      const fail = await gate(definitionKey).opened;
      events.push(`end ${definitionKey}`);
      if (fail) throw new HttpError('SFMC_UNAVAILABLE', 'SFMC send answered HTTP 503', { status: 503 });
      return recipients.map((r) => ({ messageKey: r.messageKey, status: 'queued' as const, answer: 'send.item-queued', requestId: 'r' }));
    },
    sendOne: async () => {
      throw new Error('not used');
    },
    getStatus: async () => undefined,
    close: async () => undefined,
  };
  return {
    client,
    events,
    release: (def, fail = false) => gate(def).open(fail),
    started: (def) => (events.some((e) => e.startsWith(`start ${def}`)) ? Promise.resolve() : new Promise((r) => startWaiters.set(def, r))),
  };
}

function handlerWith(client: SfmcClient, concurrentRequests: number) {
  return createWelcomeHandler({
    registry: jsonRegistry,
    reader: avro.Type.forValue({}),
    sfmc: client,
    sent: {
      lookup: async () => ({ sent: new Set(), preExisting: new Set(), forgotten: new Map() }),
      ping: async () => true,
      close: async () => undefined,
    },
    orgs,
    metrics: createMetrics('emailer'),
    sentTopic: 'welcome.sent',
    sentSchemaId: 1,
    holds: createHolds({ logger: createLogger('test', 'silent') }),
    guards: openGuards(),
    concurrentRequests,
  });
}

const records = [input(member('UA', 'u1'), 1), input(member('AA', 'a1'), 2), input(member('UA', 'u2'), 3), input(member('AA', 'a2'), 4)];

test('with 2 concurrent requests both groups are in flight at once, each member in its one group, outcomes in record order', async () => {
  const sfmc = gatedSfmc();
  const done = handlerWith(sfmc.client, 2)(records, { deadline: Date.now() + 4_000 });
  await Promise.all([sfmc.started('welcome-ua'), sfmc.started('welcome-aa')]);
  expect(sfmc.events).toEqual(['start welcome-ua UA-u1,UA-u2', 'start welcome-aa AA-a1,AA-a2']);
  sfmc.release('welcome-aa');
  sfmc.release('welcome-ua');
  const outcomes = await done;
  expect(outcomes.map((o) => o.kind === 'produce' && o.trace)).toEqual(
    records.map((_, i) => expect.stringContaining(['u1', 'a1', 'u2', 'a2'][i] as string)),
  );
});

test('a failing group fails only its members, and the handler returns only after the slower group was answered', async () => {
  const sfmc = gatedSfmc();
  let returned = false;
  const done = handlerWith(sfmc.client, 2)(records, { deadline: Date.now() + 4_000 }).then((o) => {
    returned = true;
    return o;
  });
  await Promise.all([sfmc.started('welcome-ua'), sfmc.started('welcome-aa')]);
  sfmc.release('welcome-aa', true);
  await tick(10);
  expect(returned).toBe(false); // UA's send is still in flight: the chunk must not be finished (or committed) yet
  sfmc.release('welcome-ua');
  const outcomes = await done;
  expect(outcomes.map((o) => o.kind)).toEqual(['produce', 'failed', 'produce', 'failed']);
  expect(outcomes.every((o) => o.kind !== 'produce' || o.keepOnRetry === true)).toBe(true);
});

test('with 1 request at a time the groups go one after another (the former behaviour)', async () => {
  const sfmc = gatedSfmc();
  const done = handlerWith(sfmc.client, 1)(records, { deadline: Date.now() + 4_000 });
  await sfmc.started('welcome-ua');
  await tick(10);
  expect(sfmc.events).toEqual(['start welcome-ua UA-u1,UA-u2']);
  sfmc.release('welcome-ua');
  await sfmc.started('welcome-aa');
  sfmc.release('welcome-aa');
  await done;
  expect(sfmc.events).toEqual(['start welcome-ua UA-u1,UA-u2', 'end welcome-ua', 'start welcome-aa AA-a1,AA-a2', 'end welcome-aa']);
});
