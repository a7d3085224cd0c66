/** Delivery status: welcome.sent → SFMC's status call → welcome.delivery.status (+ re-checks). Wiring only. */
import avro from 'avsc';
import { startConsumer } from '../shared/consumer-process';
import { createKafka, createProducer } from '../shared/kafka';
import { createLogger } from '../shared/logger';
import { createMetrics } from '../shared/metrics';
import { runMain } from '../shared/process';
import { createRegistry } from '../shared/registry';
import { loadSchema } from '../shared/schemas';
import { createSfmcClient } from '../shared/sfmc-client';
import { createDeliveryMetrics, createStatusChecker } from './checker';
import { loadDeliveryStatusConfig } from './config';
import { createStatusTable } from './status-table';

// Same budget as the emailer's: retries stay well inside the consumer session (30 s).
const SFMC_RETRY = { attempts: 4, baseDelayMs: 200, maxDelayMs: 3_000 };

runMain('delivery-status', async () => {
  const config = loadDeliveryStatusConfig(process.env);
  const logger = createLogger('delivery-status', config.logLevel);
  const metrics = createMetrics('delivery-status');
  const delivery = createDeliveryMetrics(metrics);
  const registry = createRegistry({ url: config.registryUrl, auth: config.registryAuth, onAnswer: metrics.countAnswer });
  const table = createStatusTable(config.db);
  const sfmc = createSfmcClient(
    { ...config.sfmc, requestTimeoutMs: config.sfmc.timeoutMs, retry: SFMC_RETRY },
    {
      logger: logger.child({ component: 'sfmc-client' }),
      onHttp: (target, status, ms) => metrics.httpSeconds.observe({ target: `sfmc-${target}`, status: String(status) }, ms / 1000),
      onRetry: (target) => metrics.retries.inc({ target: `sfmc-${target}` }),
      onAnswer: metrics.countAnswer,
      onConcurrency: (limit) => metrics.concurrencyLimit.set(limit),
    },
  );
  // The sweeper's own producer: the stage loop's producer is private to it.
  const sweepProducer = createProducer(
    createKafka({ brokers: config.kafkaBrokers, clientId: 'welcome-delivery-status-sweep', security: config.kafkaSecurity }, logger),
  );
  await sweepProducer.connect();
  // WelcomeSent as this stage reads it: the current file, resolving older writers.
  const reader = avro.Type.forSchema(loadSchema('welcome-sent.avsc'), { wrapUnions: false });
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();

  await startConsumer({
    stage: 'delivery-status',
    kafkaBrokers: config.kafkaBrokers,
    kafkaSecurity: config.kafkaSecurity,
    groupId: config.groupId,
    inputTopic: config.sentTopic,
    outputTopic: config.statusTopic,
    dlqTopic: config.dlqTopic,
    dlqRetentionMs: config.dlqRetentionMs,
    tuning: config.tuning,
    topicPartitions: config.topicPartitions,
    httpHost: config.httpHost,
    httpPort: config.httpPort,
    chunkSize: config.chunkSize,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    outputSchemaFile: 'welcome-delivery-status.avsc',
    logger,
    metrics,
    registry,
    dependencies: async () => ({ statusTable: await table.ping() }),
    createHandler: (statusSchemaId, holds) => {
      const checker = createStatusChecker(
        {
          holds,
          registry,
          reader,
          sfmc,
          metrics,
          statusTopic: config.statusTopic,
          statusSchemaId,
          accountOf: (org) => config.orgs.get(org)?.accountId,
          firstCheckDelayMs: config.firstCheckDelayMs,
          recheck: { baseDelayMs: config.recheckBaseMs, maxDelayMs: config.recheckMaxMs },
          concurrency: config.concurrency,
        },
        delivery,
      );
      // One sweep at a time; a failed sweep (table or SFMC away) is counted and retried next interval.
      const tick = (): void => {
        sweeping = checker
          .sweep(table, sweepProducer, config.sweepLimit, logger)
          .catch((err: unknown) => {
            delivery.sweepErrors.inc();
            logger.warn({ err }, 'delivery status sweep failed; next one in the next interval');
          })
          .finally(() => (sweepTimer = setTimeout(tick, config.sweepIntervalMs)));
      };
      sweepTimer = setTimeout(tick, config.sweepIntervalMs);
      return checker.handler;
    },
    closeClients: async () => {
      clearTimeout(sweepTimer);
      await sweeping;
      clearTimeout(sweepTimer);
      await Promise.all([sfmc.close(), table.close(), sweepProducer.disconnect()]);
    },
  });
});
