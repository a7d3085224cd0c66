/**
 * Prometheus metrics shared by both stages; every series carries `stage` so one dashboard
 * shows the pipeline. Names follow Prometheus conventions (_total, _seconds).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];
/** The steps of one chunk take milliseconds: finer buckets, or every step lands in the first. */
const STEP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type Readiness = () => Promise<Record<string, boolean>>;

/**
 * A scrape waits this long for the readiness checks: below every scrape timeout (3 s locally,
 * 5 s in compose), so a hanging dependency shows as not ready instead of failing the whole
 * scrape (which would read as the consumer being down and hide every other metric).
 */
export const READINESS_BUDGET_MS = 2_000;

export function createMetrics(stage: string) {
  let readiness: Readiness | undefined;
  let checkNames: string[] = [];
  const registry = new Registry();
  registry.setDefaultLabels({ stage });
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    consumed: new Counter({ name: 'welcome_records_consumed_total', help: 'Records read from the input topic', registers: [registry] }),
    skipped: new Counter({
      name: 'welcome_records_skipped_total',
      help: 'Records deliberately not processed, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    produced: new Counter({ name: 'welcome_records_produced_total', help: 'Records written to the output topic', registers: [registry] }),
    sent: new Counter({
      name: 'welcome_emails_sent_total',
      help: 'Welcome emails accepted by SFMC, by outcome (queued, duplicate)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'welcome_records_dead_lettered_total',
      help: 'Records sent to the dead-letter topic, by error code',
      labelNames: ['code'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'welcome_retries_total',
      help: 'Retries of outbound calls, by target',
      labelNames: ['target'],
      registers: [registry],
    }),
    pauses: new Counter({
      name: 'welcome_partition_pauses_total',
      help: 'Partitions paused because a dependency failed transiently',
      labelNames: ['code'],
      registers: [registry],
    }),
    httpSeconds: new Histogram({
      name: 'welcome_http_request_seconds',
      help: 'Outbound HTTP latency by target and status',
      labelNames: ['target', 'status'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    stageSeconds: new Histogram({
      name: 'welcome_stage_latency_seconds',
      help: 'Source commit → this stage done with the record',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    endToEndSeconds: new Histogram({
      name: 'welcome_end_to_end_latency_seconds',
      help: 'Source commit (binlog) → Welcome accepted by SFMC',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'welcome_batch_seconds',
      help: 'Time to process one fetched batch',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    // Where a hop's time goes: waiting to be handled (the fetch round, a free worker), then each
    // step of the chunk one after another. A stage's hop ≈ wait + handler + produce + commit.
    chunkStepSeconds: new Histogram({
      name: 'welcome_chunk_step_seconds',
      help: 'Time of each step of a chunk: handler (decode, lookups, HTTP), produce (outputs, acks=all), commit; the emailer also times audit-read',
      labelNames: ['step'],
      buckets: STEP_BUCKETS,
      registers: [registry],
    }),
    recordWaitSeconds: new Histogram({
      name: 'welcome_record_wait_seconds',
      help: "Input record's Kafka timestamp → its chunk starts (the fetch round and a worker: time before any of our work)",
      buckets: STEP_BUCKETS,
      registers: [registry],
    }),
    // Every answer of an outside service, by its row of the answer tables (answers.ts): an
    // unusual shape (verdict unknown) shows the minute it starts.
    answers: new Counter({
      name: 'welcome_outside_answers_total',
      help: 'Answers of SFMC, the warehouse and the registry, by call, answer-table row and verdict (ok, member, slow-down, setup, unknown)',
      labelNames: ['call', 'answer', 'verdict'],
      registers: [registry],
    }),
    hold: new Gauge({
      name: 'welcome_hold',
      help: '1 while a scope (org:<id>, warehouse, registry, the stage) is held because our setup is refused or its answers stayed unknown; nothing of it is dead-lettered',
      labelNames: ['scope', 'reason'],
      registers: [registry],
    }),
    partitionsPaused: new Gauge({
      name: 'welcome_partitions_paused',
      help: "This process's input partitions paused now, by why (slow-down, setup, unknown)",
      labelNames: ['kind'],
      registers: [registry],
    }),
    partitionsOwned: new Gauge({
      name: 'welcome_partitions_owned',
      help: 'Input partitions assigned to this process (0: an idle replica, never stalled)',
      registers: [registry],
    }),
    concurrencyLimit: new Gauge({
      name: 'welcome_sfmc_concurrency_limit',
      help: 'SFMC requests this process may have in flight now: halved on each 429 50200, one more per 20 answers without it',
      registers: [registry],
    }),
    definitionRefused: new Gauge({
      name: 'welcome_sfmc_definition_refused',
      help: "1 while SFMC refuses an organization's send definition (109107/109111): its Welcomes are held, alert",
      labelNames: ['org', 'definition_key'],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'welcome_consumer_lag',
      help: 'Records behind the end of the input topic, per partition',
      labelNames: ['partition'],
      registers: [registry],
    }),
    lagMeasuredAt: new Gauge({
      name: 'welcome_consumer_lag_measured_timestamp_seconds',
      help: 'When the lag above was last measured (Unix time): a stale value means the stall detector and the lag alerts are blind',
      registers: [registry],
    }),
    // What /readyz says, per check, evaluated at each scrape: alerts see "alive but cannot work".
    ready: new Gauge({
      name: 'welcome_ready',
      help: "Readiness checks (1 ok, 0 failing): kafka, registry and the stage's own dependency",
      labelNames: ['check'],
      registers: [registry],
      async collect() {
        if (!readiness) return;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), READINESS_BUDGET_MS);
        });
        const result = await Promise.race([readiness().catch(() => undefined), late]);
        clearTimeout(timer);
        if (result) checkNames = Object.keys(result);
        // no answer in time (or the checks threw): every check counts as failing
        for (const check of checkNames) this.set({ check }, result?.[check] ? 1 : 0);
      },
    }),
    /** One answer of an outside service, by its answer-table row (a client's onAnswer hook). */
    countAnswer: (row: { call: string; id: string; verdict: string }): void => {
      m.answers.inc({ call: row.call, answer: row.id, verdict: row.verdict });
    },
    /** The process's readiness checks; until set, welcome_ready has no series. */
    setReadiness: (checks: Readiness): void => {
      readiness = checks;
    },
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
