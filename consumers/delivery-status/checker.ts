/**
 * Asks SFMC what became of each accepted Welcome and records the answer on
 * welcome.delivery.status (the sink writes it into loyalty.welcome_delivery_status).
 *
 * Two paths, one record shape:
 * - the stage handler reads welcome.sent: a little after each send (SFMC needs a moment to
 *   process the queue) it makes the first status call; a final status is recorded at once;
 * - the sweeper re-checks what is still EmailQueued, from the status table, with exponential
 *   backoff, until a final status or the end of SFMC's 3-day window (`unknown`).
 * So a Kafka offset never waits for days: welcome.sent is committed after the first check,
 * and the open cases live in the table, where a restart finds them again.
 *
 * Every status call fits a budget: the chunk's in the handler (the first-check wait takes at
 * most half of it), SWEEP_BUDGET_MS in a sweep. SFMC's answer is read through its table
 * (sfmc-answers.ts, scope `sfmc-status`): a call that fails fails its record only; the chunk
 * pauses, holds or bisects (chunk.ts), a sweep leaves the row for the next one.
 */
import type avro from 'avsc';
import { Counter, Gauge } from 'prom-client';
import { DecodeError } from '../shared/errors';
import { produceAll, type OutgoingRecord, type Producer } from '../shared/kafka';
import type { Logger } from '../shared/logger';
import { memberKey, memberTrace } from '../shared/member';
import type { Metrics } from '../shared/metrics';
import type { Registry } from '../shared/registry';
import type { SfmcClient, SfmcMessageStatus } from '../shared/sfmc-client';
import { budgetLeft, sleep, type Budget } from '../shared/retry';
import type { Holds } from '../shared/holds';
import type { BatchHandler, InputRecord, Outcome } from '../shared/stage';
import type { StatusTable } from './status-table';
import { STATUS_WINDOW_MS, toStatusRecord, type DeliveryStatusRecord, type Recheck, type SentWelcome } from './transform';

export interface CheckerDeps {
  registry: Registry;
  reader: avro.Type;
  sfmc: SfmcClient;
  /** The organization's SFMC business unit (its messages are only visible there). */
  accountOf: (orgId: string) => number | undefined;
  metrics: Metrics;
  statusTopic: string;
  statusSchemaId: number;
  /** The first status call waits until the send is this old. */
  firstCheckDelayMs: number;
  recheck: Recheck;
  /** Status calls in flight at once (SFMC rate-limits this endpoint and publishes no number). */
  concurrency: number;
  /** Setup holds: a status answered releases the hold of `sfmc-status`. */
  holds: Holds;
  now?: () => number;
}

/** What a hold of this stage's SFMC calls is called (holds.ts). */
export const STATUS_SCOPE = 'sfmc-status';
/** A sweep's status calls all fit in this (it also bounds how long SIGTERM waits for a sweep). */
export const SWEEP_BUDGET_MS = 5_000;

export function createDeliveryMetrics(metrics: Metrics) {
  return {
    statuses: new Counter({
      name: 'welcome_delivery_status_total',
      help: 'Delivery statuses recorded, by status (EmailSent, EmailNotSent, unknown; EmailQueued = still open)',
      labelNames: ['status'],
      registers: [metrics.registry],
    }),
    queued: new Gauge({
      name: 'welcome_delivery_queued',
      help: 'Welcomes SFMC still reports as EmailQueued (status table, last sweep)',
      registers: [metrics.registry],
    }),
    sweepErrors: new Counter({
      name: 'welcome_delivery_sweep_errors_total',
      help: 'Sweeps that failed (status table or SFMC unreachable); retried next interval',
      registers: [metrics.registry],
    }),
  };
}
export type DeliveryMetrics = ReturnType<typeof createDeliveryMetrics>;

/** Runs fn over items with at most `limit` in flight; results in order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function createStatusChecker(deps: CheckerDeps, delivery: DeliveryMetrics) {
  const now = deps.now ?? Date.now;

  /** The status record, or the error that kept SFMC from answering (this record's only). */
  async function check(sent: SentWelcome, checks: number, budget: Budget): Promise<DeliveryStatusRecord | { error: unknown }> {
    let answer: SfmcMessageStatus | undefined;
    try {
      // Past SFMC's 3-day window there is nothing to ask (first start over old history, a late replay).
      if (now() - sent.sent_at < STATUS_WINDOW_MS) {
        answer = await deps.sfmc.getStatus(sent.message_key, deps.accountOf(sent.org_id), budget, STATUS_SCOPE);
        deps.holds.release(STATUS_SCOPE);
      }
    } catch (error) {
      return { error };
    }
    const record = toStatusRecord(sent, answer, checks, now(), deps.recheck);
    delivery.statuses.inc({ status: record.status });
    return record;
  }

  async function toOutgoing(record: DeliveryStatusRecord, budget?: Budget): Promise<OutgoingRecord> {
    const value = await deps.registry.encode(deps.statusSchemaId, record, budget);
    return {
      topic: deps.statusTopic,
      key: memberKey(record.org_id, record.org_member_id),
      value,
      headers: { 'welcome.delivery.status': record.status },
    };
  }

  /** Stage handler over welcome.sent: one status call per Welcome, a status record each. */
  const handler: BatchHandler = async (records: InputRecord[], budget: Budget) => {
    const decoded = await Promise.all(
      records.map(async (r): Promise<SentWelcome | Outcome> => {
        if (r.value === null) return { kind: 'skip', reason: 'tombstone' };
        try {
          return await deps.registry.decode<SentWelcome>(r.value, () => deps.reader, budget);
        } catch (err) {
          if (err instanceof DecodeError) return { kind: 'dead-letter', error: err };
          return { kind: 'failed', error: err };
        }
      }),
    );
    const sends = decoded.filter((d): d is SentWelcome => !('kind' in d));
    if (sends.length > 0) deps.holds.release('registry');
    // Give SFMC a moment after the newest send (bounded: a replay of old sends does not wait; at most half the budget).
    const newest = Math.max(0, ...sends.map((s) => s.sent_at));
    const wait = Math.min(deps.firstCheckDelayMs, newest + deps.firstCheckDelayMs - now(), budgetLeft(budget) / 2);
    if (wait > 0) await sleep(wait);
    const checked = await mapLimited(sends, deps.concurrency, (s) => check(s, 1, budget));
    let i = 0;
    return Promise.all(
      decoded.map(async (d): Promise<Outcome> => {
        if ('kind' in d) return d;
        const record = checked[i++] as DeliveryStatusRecord | { error: unknown };
        const trace = memberTrace(d.org_id, d.org_member_id);
        if ('error' in record) return { kind: 'failed', error: record.error, trace };
        try {
          return { kind: 'produce', trace, scope: STATUS_SCOPE, records: [await toOutgoing(record, budget)] };
        } catch (error) {
          return { kind: 'failed', error, trace }; // one record that cannot be encoded fails alone
        }
      }),
    );
  };

  /**
   * One sweep over the due EmailQueued rows. `planned` remembers the next check this process
   * already decided for a key, so the sink's lag (the table still shows the old due time)
   * does not cause a second call.
   */
  const planned = new Map<string, number>();
  async function sweep(table: StatusTable, producer: Producer, limit: number, logger: Logger): Promise<number> {
    const t = now();
    for (const [key, at] of planned) if (at <= t) planned.delete(key);
    const due = (await table.due(t, limit)).filter((row) => !planned.has(row.message_key));
    const budget: Budget = { deadline: now() + SWEEP_BUDGET_MS, now };
    // A row SFMC did not answer for (in time) stays due: the next sweep asks again.
    const checked = await mapLimited(due, deps.concurrency, (row) => check(row, row.checks + 1, budget));
    const records = checked.filter((r): r is DeliveryStatusRecord => !('error' in r));
    const failed = checked.find((r): r is { error: unknown } => 'error' in r);
    // Not one answer: the sweep failed (counted, alerted by DeliveryStatusSweepFailing).
    if (records.length === 0 && failed) throw failed.error;
    await produceAll(producer, await Promise.all(records.map((r) => toOutgoing(r))), (partitions) =>
      logger.warn({ partitions }, 'kafkajs left partitions of a send unanswered (#1303): sending their records again'),
    );
    // A final status leaves the due list once the sink has written it: forgotten after 10 min.
    for (const r of records) planned.set(r.message_key, r.next_check_at ?? t + 600_000);
    delivery.queued.set(await table.queuedCount());
    if (records.length > 0) {
      const counts = records.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
      logger.info({ rechecked: records.length, ...counts }, 'delivery status sweep');
    }
    return records.length;
  }

  return { handler, sweep };
}
