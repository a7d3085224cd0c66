import avro from 'avsc';
import { createDeliveryMetrics, createStatusChecker } from '../../../consumers/delivery-status/checker';
import type { StatusTable } from '../../../consumers/delivery-status/status-table';
import { classify, nextCheckAt, sfmcTimeToUtc, STATUS_WINDOW_MS, toStatusRecord } from '../../../consumers/delivery-status/transform';
import type { OutgoingRecord } from '../../../consumers/shared/kafka';
import { createLogger } from '../../../consumers/shared/logger';
import { createMetrics } from '../../../consumers/shared/metrics';
import { createHolds } from '../../../consumers/shared/holds';
import type { Registry } from '../../../consumers/shared/registry';
import { loadSchema } from '../../../consumers/shared/schemas';
import type { SfmcClient, SfmcMessageStatus } from '../../../consumers/shared/sfmc-client';
import { fakeProducer } from '../../support/fake-producer';

const T0 = Date.parse('2026-05-01T12:00:00Z');
const recheck = { baseDelayMs: 30_000, maxDelayMs: 3_600_000 };
const sent = { org_id: 'UA', org_member_id: 'M1', message_key: 'welcome-abc', sent_at: T0 };
const status = (event: string, extra: Partial<SfmcMessageStatus> = {}): SfmcMessageStatus => ({
  messageKey: 'welcome-abc',
  eventCategoryType: `TransactionalSendEvents.${event}`,
  ...extra,
});

describe('classify', () => {
  test("EmailSent and EmailNotSent are final; EmailNotSent keeps SFMC's status code and message", () => {
    expect(classify(status('EmailSent'), T0, T0 + 5_000).status).toBe('EmailSent');
    expect(classify(status('EmailNotSent', { statusCode: 1, statusMessage: 'Unsubscribed' }), T0, T0 + 5_000)).toEqual({
      status: 'EmailNotSent',
      status_code: 1,
      status_message: 'Unsubscribed',
      event_at: null,
    });
  });

  test('queued or not visible yet stays EmailQueued inside the 3-day window, unknown after it', () => {
    expect(classify(status('EmailQueued'), T0, T0 + 60_000).status).toBe('EmailQueued');
    expect(classify(undefined, T0, T0 + 60_000).status).toBe('EmailQueued');
    expect(classify(status('EmailQueued'), T0, T0 + STATUS_WINDOW_MS).status).toBe('unknown');
    expect(classify(undefined, T0, T0 + STATUS_WINDOW_MS + 1)).toMatchObject({ status: 'unknown', status_message: expect.stringContaining('3-day') });
  });

  test('SFMC times (US Central, no DST, no zone) become UTC; a zoned time is taken as is', () => {
    expect(sfmcTimeToUtc('2018-08-03T13:41:18.55')).toBe(Date.parse('2018-08-03T19:41:18.550Z'));
    expect(sfmcTimeToUtc('2018-08-03T13:41:18Z')).toBe(Date.parse('2018-08-03T13:41:18Z'));
    expect(sfmcTimeToUtc(undefined)).toBeNull();
    expect(sfmcTimeToUtc('yesterday')).toBeNull();
  });
});

describe('nextCheckAt', () => {
  test('doubles from the base delay, caps at the maximum, and ends on the 3-day window', () => {
    expect(nextCheckAt('EmailQueued', 1, T0, T0, recheck)).toBe(T0 + 30_000);
    expect(nextCheckAt('EmailQueued', 3, T0, T0, recheck)).toBe(T0 + 120_000);
    expect(nextCheckAt('EmailQueued', 30, T0, T0, recheck)).toBe(T0 + 3_600_000);
    const late = T0 + STATUS_WINDOW_MS - 60_000;
    expect(nextCheckAt('EmailQueued', 30, T0, late, recheck)).toBe(T0 + STATUS_WINDOW_MS);
    expect(nextCheckAt('EmailSent', 1, T0, T0, recheck)).toBeNull();
  });

  test('a status record encodes with schemas/welcome-delivery-status.avsc', () => {
    const type = avro.Type.forSchema(loadSchema('welcome-delivery-status.avsc'), { wrapUnions: false });
    const record = toStatusRecord(sent, status('EmailNotSent', { statusCode: 2, statusMessage: 'Held' }), 1, T0 + 3_000, recheck);
    expect(type.isValid(record)).toBe(true);
    expect(record).toMatchObject({ status: 'EmailNotSent', status_code: 2, checks: 1, next_check_at: null });
  });
});

describe('status checker', () => {
  const registry: Registry = {
    register: async () => 1,
    encode: async (_id, value) => Buffer.from(JSON.stringify(value)),
    decode: async <T>(bytes: Buffer) => JSON.parse(bytes.toString()) as T,
    ping: async () => true,
  };
  function setup(answers: Map<string, SfmcMessageStatus | undefined>, clock: { t: number }) {
    const asked: { key: string; account?: string | number }[] = [];
    const sfmc: SfmcClient = {
      sendBatch: async () => [],
      sendOne: async () => {
        throw new Error('unused');
      },
      close: async () => undefined,
      async getStatus(key, account) {
        asked.push({ key, account });
        return answers.get(key);
      },
    };
    const metrics = createMetrics('delivery-test');
    const delivery = createDeliveryMetrics(metrics);
    const checker = createStatusChecker(
      {
        registry,
        reader: avro.Type.forSchema('string'),
        sfmc,
        metrics,
        statusTopic: 'welcome.delivery.status',
        statusSchemaId: 1,
        accountOf: (org) => (org === 'UA' ? 5100 : undefined),
        firstCheckDelayMs: 0,
        recheck,
        concurrency: 2,
        holds: createHolds({ logger: createLogger('test', 'silent') }),
        now: () => clock.t,
      },
      delivery,
    );
    return { checker, asked, delivery };
  }
  const input = (value: object | null, offset = 0) => ({
    topic: 'welcome.sent',
    partition: 0,
    offset: String(offset),
    key: null,
    value: value ? Buffer.from(JSON.stringify(value)) : null,
    headers: {},
    timestamp: '0',
  });
  const decodeOut = (r: OutgoingRecord) => JSON.parse((r.value as Buffer).toString()) as Record<string, unknown>;

  test('the handler asks once per Welcome in its business unit and produces one status record each; tombstones skipped', async () => {
    const clock = { t: T0 + 5_000 };
    const answers = new Map([
      ['k1', status('EmailSent')],
      ['k2', status('EmailNotSent', { statusCode: 1, statusMessage: 'Unsubscribed' })],
    ]);
    const { checker, asked } = setup(answers, clock);
    const out = await checker.handler(
      [input({ ...sent, message_key: 'k1' }), input(null, 1), input({ ...sent, org_id: 'AA', org_member_id: 'M2', message_key: 'k2' }, 2)],
      { deadline: Date.now() + 4_000 },
    );
    expect(out.map((o) => o.kind)).toEqual(['produce', 'skip', 'produce']);
    expect(asked).toEqual([
      { key: 'k1', account: 5100 },
      { key: 'k2', account: undefined },
    ]);
    const records = out.flatMap((o) => (o.kind === 'produce' ? o.records : []));
    expect(records.map((r) => [r.topic, r.key, decodeOut(r)['status']])).toEqual([
      ['welcome.delivery.status', 'UA:M1', 'EmailSent'],
      ['welcome.delivery.status', 'AA:M2', 'EmailNotSent'],
    ]);
  });

  test('the sweep re-checks due EmailQueued rows once (not again while the sink lags) and counts what is still queued', async () => {
    const clock = { t: T0 + 60_000 };
    const answers = new Map<string, SfmcMessageStatus | undefined>([
      ['k1', status('EmailQueued')],
      ['k2', status('EmailSent')],
    ]);
    const { checker, asked, delivery } = setup(answers, clock);
    const rows = [
      { ...sent, message_key: 'k1', checks: 1 },
      { ...sent, org_member_id: 'M2', message_key: 'k2', checks: 2 },
    ];
    const table: StatusTable = { due: async () => rows, queuedCount: async () => 1, ping: async () => true, close: async () => undefined };
    const { producer, produced } = fakeProducer();
    const logger = createLogger('test', 'silent');
    expect(await checker.sweep(table, producer, 100, logger)).toBe(2);
    expect(produced.map((r) => [decodeOut(r)['status'], decodeOut(r)['checks']])).toEqual([
      ['EmailQueued', 2],
      ['EmailSent', 3],
    ]);
    expect((await delivery.queued.get()).values[0]?.value).toBe(1);
    clock.t += 1_000; // table still shows both as due (sink lag): no second call
    expect(await checker.sweep(table, producer, 100, logger)).toBe(0);
    expect(asked).toHaveLength(2);
  });
});
