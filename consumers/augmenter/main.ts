/** Augmenter: member changes → new members with their Subscriber Key. Wiring only. */
import { createDwKeyClient } from '../shared/dw-client';
import { startHealthServer } from '../shared/health-server';
import { createConsumer, createKafka, createProducer, ensureTopics } from '../shared/kafka';
import { createLogger } from '../shared/logger';
import { createMetrics } from '../shared/metrics';
import { handleShutdown, runMain } from '../shared/process';
import { createRegistry } from '../shared/registry';
import { loadSchema, valueSubject } from '../shared/schemas';
import { runStage } from '../shared/stage';
import { createAugmentHandler } from './augment';
import { loadAugmenterConfig } from './config';

// Retries stay well inside the consumer session (30 s); past them the partition pauses.
const DW_RETRY = { attempts: 4, baseDelayMs: 100, maxDelayMs: 2_000 };

runMain('augmenter', async () => {
  const config = loadAugmenterConfig(process.env);
  const logger = createLogger('augmenter', config.logLevel);
  const metrics = createMetrics('augmenter');
  const registry = createRegistry(config.registryUrl);
  const keys = createDwKeyClient(
    { baseUrl: config.dwApiUrl, apiToken: config.dwApiToken, requestTimeoutMs: config.dwTimeoutMs, retry: DW_RETRY },
    {
      logger: logger.child({ component: 'dw-client' }),
      onHttp: (route, status, ms) => metrics.httpSeconds.observe({ target: `dw-${route}`, status: String(status) }, ms / 1000),
      onRetry: (route) => metrics.retries.inc({ target: `dw-${route}` }),
    },
  );
  const kafka = createKafka({ brokers: config.kafkaBrokers, clientId: 'welcome-augmenter' }, logger);
  const consumer = createConsumer(kafka, config.groupId);
  const producer = createProducer(kafka);
  const admin = kafka.admin();

  let stage: Awaited<ReturnType<typeof runStage>> | undefined;
  let live = true;
  const server = await startHealthServer(
    config.httpPort,
    {
      live: () => live,
      ready: async () => ({ kafka: stage?.isConnected() ?? false, registry: await registry.ping(), warehouse: await keys.health() }),
    },
    metrics.registry,
  );

  const augmentedSchemaId = await registry.register(valueSubject(config.augmentedTopic), loadSchema('new-member-augmented.avsc'), 'BACKWARD');
  // Created here (if missing) so the consumer can subscribe before Debezium's first event.
  await ensureTopics(kafka, [config.memberTopic, config.augmentedTopic, config.dlqTopic].map((topic) => ({ topic, partitions: config.topicPartitions })));
  await Promise.all([producer.connect(), admin.connect(), consumer.connect()]);
  stage = await runStage({
    stage: 'augmenter',
    groupId: config.groupId,
    inputTopic: config.memberTopic,
    dlqTopic: config.dlqTopic,
    consumer,
    producer,
    admin,
    logger,
    metrics,
    chunkSize: config.chunkSize,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    handler: createAugmentHandler({ registry, keys, metrics, augmentedTopic: config.augmentedTopic, augmentedSchemaId }),
  });
  logger.info({ input: config.memberTopic, output: config.augmentedTopic, group: config.groupId, augmentedSchemaId }, 'augmenter running');
  const running = stage;
  handleShutdown(logger, async () => {
    live = false;
    await running.stop();
    // Nothing is in flight any more; do not wait for the pool's idle sockets.
    await Promise.race([keys.close(), new Promise((r) => setTimeout(r, 1_000))]);
  }, [server]);
});
