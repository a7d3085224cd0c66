/** Emailer: augmented new members → one Welcome each through SFMC → welcome.sent. Wiring only. */
import { Counter, Gauge } from 'prom-client';
import { startConsumer } from '../shared/consumer-process';
import { createKafka, ensureTopics } from '../shared/kafka';
import { createLogger } from '../shared/logger';
import { createMetrics } from '../shared/metrics';
import { runMain } from '../shared/process';
import { createRegistry } from '../shared/registry';
import { createSfmcClient } from '../shared/sfmc-client';
import { augmentedMemberReader } from './augmented-member';
import { createSharedBreaker } from './breaker';
import { createPool } from 'mysql2/promise';
import { mysqlConnection } from '../shared/connection-config';
import { loadEmailerConfig } from './config';
import { createSentRecord } from './sent-record';
import { createWelcomeHandler } from './welcome';
import { HELD_TOPIC_CONFIGS, SKIPPED_TOPIC_CONFIGS, type HoldingGuard } from './guards';

// Attempts per send; every attempt, wait and Retry-After also fits the chunk's budget (CHUNK_BUDGET_MS):
// a Retry-After longer than what is left pauses the partition for that long instead.
const SFMC_RETRY = { attempts: 4, baseDelayMs: 200, maxDelayMs: 3_000 };

runMain('emailer', async () => {
  const config = loadEmailerConfig(process.env);
  const logger = createLogger('emailer', config.logLevel);
  const metrics = createMetrics('emailer');
  const registry = createRegistry({ url: config.registryUrl, auth: config.registryAuth, onAnswer: metrics.countAnswer });
  const sent = createSentRecord({ ...config.db, connections: config.partitionsConsumedConcurrently, forgetKey: config.forgetKey });
  const sfmc = createSfmcClient(
    // At most every worker's requests in flight; 429 50200 lowers it (concurrency.ts).
    {
      ...config.sfmc,
      requestTimeoutMs: config.sfmc.timeoutMs,
      retry: SFMC_RETRY,
      maxInFlight: config.sfmc.concurrentRequests * config.partitionsConsumedConcurrently,
    },
    {
      logger: logger.child({ component: 'sfmc-client' }),
      onHttp: (target, status, ms) => metrics.httpSeconds.observe({ target: `sfmc-${target}`, status: String(status) }, ms / 1000),
      onRetry: (target) => metrics.retries.inc({ target: `sfmc-${target}` }),
      onAnswer: metrics.countAnswer,
      onConcurrency: (limit) => metrics.concurrencyLimit.set(limit),
    },
  );
  logger.info({ orgs: [...config.orgs.entries()].map(([org, w]) => `${org}:${w.enabled ? w.definitionKey : 'off'}`) }, 'Welcome configuration');
  for (const [org, w] of config.orgs) {
    if (w.enabled && (w.maxPerMinute === undefined || w.maxPerTransaction === undefined))
      logger.warn({ org }, `${org} has no ${w.maxPerMinute === undefined ? 'maxPerMinute' : 'maxPerTransaction'}: nothing stops a mass email of it`);
  }
  // The breaker's counts live in the database, shared by every replica (breaker.ts); its own
  // small pool, so a chunk's audit lookup never waits behind another chunk's admission.
  const breakerPool = createPool({
    ...mysqlConnection(config.db),
    connectionLimit: Math.max(2, config.partitionsConsumedConcurrently),
    maxIdle: 2,
    idleTimeout: 30_000,
    connectTimeout: 3_000,
    enableKeepAlive: true,
    timezone: 'Z',
    // The breaker's lock, reads and write go as two round trips (breaker.ts); its values are all bound parameters.
    multipleStatements: true,
  });
  const breaker = createSharedBreaker(breakerPool);
  const held = new Counter({
    name: 'welcome_held_total',
    help: 'Welcomes held by the send-rate breaker or the import guard (on welcome.held until released)',
    // guard: ceiling (maxPerMinute) or import (maxPerTransaction): the runbook's first question
    labelNames: ['org', 'guard'],
    registers: [metrics.registry],
  });
  new Gauge({
    name: 'welcome_breaker_open',
    help: '1 while this replica has held a Welcome of the organization within the last minute (above its ceiling, shared by all replicas)',
    labelNames: ['org'],
    registers: [metrics.registry],
    collect() {
      for (const [org, w] of config.orgs) if (w.maxPerMinute !== undefined) this.set({ org }, breaker.isOpen(org) ? 1 : 0);
    },
  });
  const guardKafka = createKafka(
    { brokers: config.kafkaBrokers, clientId: 'welcome-emailer-topics', ...(config.kafkaSecurity ? { security: config.kafkaSecurity } : {}) },
    logger,
  );
  await ensureTopics(guardKafka, [
    { topic: config.heldTopic, partitions: config.topicPartitions, configs: HELD_TOPIC_CONFIGS },
    { topic: config.skippedTopic, partitions: config.topicPartitions, configs: SKIPPED_TOPIC_CONFIGS },
  ]);
  const guards = {
    breaker,
    skippedTopic: config.skippedTopic,
    heldTopic: config.heldTopic,
    onHeld: (org: string, guard: HoldingGuard) => held.inc({ org, guard }),
  };
  await startConsumer({
    stage: 'emailer',
    kafkaBrokers: config.kafkaBrokers,
    kafkaSecurity: config.kafkaSecurity,
    groupId: config.groupId,
    inputTopic: config.augmentedTopic,
    outputTopic: config.sentTopic,
    dlqTopic: config.dlqTopic,
    dlqRetentionMs: config.dlqRetentionMs,
    topicPartitions: config.topicPartitions,
    httpHost: config.httpHost,
    httpPort: config.httpPort,
    chunkSize: config.chunkSize,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    tuning: config.tuning,
    outputSchemaFile: 'welcome-sent.avsc',
    logger,
    metrics,
    registry,
    dependencies: async () => ({ auditTable: await sent.ping() }),
    createHandler: (sentSchemaId, holds) =>
      createWelcomeHandler({
        holds,
        registry,
        reader: augmentedMemberReader(),
        sfmc,
        sent,
        orgs: config.orgs,
        metrics,
        sentTopic: config.sentTopic,
        sentSchemaId,
        guards,
        concurrentRequests: config.sfmc.concurrentRequests,
      }),
    closeClients: async () => void (await Promise.all([sfmc.close(), sent.close(), breakerPool.end()])),
  });
});
