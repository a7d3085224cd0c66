/** Emailer: augmented new members → one Welcome each through SFMC → welcome.sent. Wiring only. */
import { startHealthServer } from '../shared/health-server';
import { createConsumer, createKafka, createProducer, ensureTopics } from '../shared/kafka';
import { createLogger } from '../shared/logger';
import { createMetrics } from '../shared/metrics';
import { handleShutdown, runMain } from '../shared/process';
import { createRegistry } from '../shared/registry';
import { loadSchema, valueSubject } from '../shared/schemas';
import { createSfmcClient } from '../shared/sfmc-client';
import { runStage } from '../shared/stage';
import { augmentedMemberReader } from './augmented-member';
import { loadEmailerConfig } from './config';
import { createSentRecord } from './sent-record';
import { createWelcomeHandler } from './welcome';

// Retries stay well inside the consumer session (30 s); past them the partition pauses.
const SFMC_RETRY = { attempts: 4, baseDelayMs: 200, maxDelayMs: 3_000 };

runMain('emailer', async () => {
  const config = loadEmailerConfig(process.env);
  const logger = createLogger('emailer', config.logLevel);
  const metrics = createMetrics('emailer');
  const registry = createRegistry(config.registryUrl);
  const sent = createSentRecord(config.db);
  const sfmc = createSfmcClient(
    { ...config.sfmc, requestTimeoutMs: config.sfmc.timeoutMs, retry: SFMC_RETRY },
    {
      logger: logger.child({ component: 'sfmc-client' }),
      onHttp: (target, status, ms) => metrics.httpSeconds.observe({ target: `sfmc-${target}`, status: String(status) }, ms / 1000),
      onRetry: (target) => metrics.retries.inc({ target: `sfmc-${target}` }),
    },
  );
  const kafka = createKafka({ brokers: config.kafkaBrokers, clientId: 'welcome-emailer' }, logger);
  const consumer = createConsumer(kafka, config.groupId);
  const producer = createProducer(kafka);
  const admin = kafka.admin();

  let stage: Awaited<ReturnType<typeof runStage>> | undefined;
  let live = true;
  const server = await startHealthServer(
    config.httpPort,
    { live: () => live, ready: async () => ({ kafka: stage?.isConnected() ?? false, registry: await registry.ping(), auditTable: await sent.ping() }) },
    metrics.registry,
  );

  const sentSchemaId = await registry.register(valueSubject(config.sentTopic), loadSchema('welcome-sent.avsc'), 'BACKWARD');
  await ensureTopics(kafka, [config.augmentedTopic, config.sentTopic, config.dlqTopic].map((topic) => ({ topic, partitions: config.topicPartitions })));
  await Promise.all([producer.connect(), admin.connect(), consumer.connect()]);
  stage = await runStage({
    stage: 'emailer',
    groupId: config.groupId,
    inputTopic: config.augmentedTopic,
    dlqTopic: config.dlqTopic,
    consumer,
    producer,
    admin,
    logger,
    metrics,
    chunkSize: config.chunkSize,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    handler: createWelcomeHandler({ registry, reader: augmentedMemberReader(), sfmc, sent, orgs: config.orgs, metrics, sentTopic: config.sentTopic, sentSchemaId }),
  });
  logger.info({ input: config.augmentedTopic, output: config.sentTopic, group: config.groupId, orgs: [...config.orgs.keys()] }, 'emailer running');
  const running = stage;
  handleShutdown(logger, async () => {
    live = false;
    await running.stop();
    // Nothing is in flight any more; do not wait for idle sockets longer than a second.
    await Promise.race([Promise.all([sfmc.close(), sent.close()]), new Promise((r) => setTimeout(r, 1_000))]);
  }, [server]);
});
