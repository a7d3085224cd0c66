/** Augmenter: member changes → new members with their Subscriber Key. Wiring only. */
import { startConsumer } from '../shared/consumer-process';
import { createDwKeyClient } from '../shared/dw-client';
import { createLogger } from '../shared/logger';
import { createMetrics } from '../shared/metrics';
import { runMain } from '../shared/process';
import { createRegistry } from '../shared/registry';
import { createAugmentHandler } from './augment';
import { loadAugmenterConfig } from './config';

// Attempts per lookup; every attempt and wait also fits the chunk's budget (CHUNK_BUDGET_MS), past it the partition pauses.
const DW_RETRY = { attempts: 4, baseDelayMs: 100, maxDelayMs: 2_000 };

runMain('augmenter', async () => {
  const config = loadAugmenterConfig(process.env);
  const logger = createLogger('augmenter', config.logLevel);
  const metrics = createMetrics('augmenter');
  const registry = createRegistry({ url: config.registryUrl, auth: config.registryAuth, onAnswer: metrics.countAnswer });
  const keys = createDwKeyClient(
    { baseUrl: config.dwApiUrl, apiToken: config.dwApiToken, requestTimeoutMs: config.dwTimeoutMs, retry: DW_RETRY },
    {
      logger: logger.child({ component: 'dw-client' }),
      onHttp: (route, status, ms) => metrics.httpSeconds.observe({ target: `dw-${route}`, status: String(status) }, ms / 1000),
      onRetry: (route) => metrics.retries.inc({ target: `dw-${route}` }),
      onAnswer: metrics.countAnswer,
    },
  );
  await startConsumer({
    stage: 'augmenter',
    kafkaBrokers: config.kafkaBrokers,
    kafkaSecurity: config.kafkaSecurity,
    groupId: config.groupId,
    inputTopic: config.memberTopic,
    outputTopic: config.augmentedTopic,
    dlqTopic: config.dlqTopic,
    dlqRetentionMs: config.dlqRetentionMs,
    topicPartitions: config.topicPartitions,
    httpHost: config.httpHost,
    httpPort: config.httpPort,
    chunkSize: config.chunkSize,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    tuning: config.tuning,
    outputSchemaFile: 'new-member-augmented.avsc',
    logger,
    metrics,
    registry,
    dependencies: async () => ({ warehouse: await keys.health() }),
    createHandler: (augmentedSchemaId, holds) =>
      createAugmentHandler({ registry, keys, metrics, augmentedTopic: config.augmentedTopic, augmentedSchemaId, holds }),
    closeClients: () => keys.close(),
  });
});
