/** Emailer: augmented new members → one Welcome each through SFMC → welcome.sent. Wiring only. */
import { startConsumer } from '../shared/consumer-process';
import { createLogger } from '../shared/logger';
import { createMetrics } from '../shared/metrics';
import { runMain } from '../shared/process';
import { createRegistry } from '../shared/registry';
import { createSfmcClient } from '../shared/sfmc-client';
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
  const registry = createRegistry({ url: config.registryUrl, auth: config.registryAuth });
  const sent = createSentRecord(config.db);
  const sfmc = createSfmcClient(
    { ...config.sfmc, requestTimeoutMs: config.sfmc.timeoutMs, retry: SFMC_RETRY },
    {
      logger: logger.child({ component: 'sfmc-client' }),
      onHttp: (target, status, ms) => metrics.httpSeconds.observe({ target: `sfmc-${target}`, status: String(status) }, ms / 1000),
      onRetry: (target) => metrics.retries.inc({ target: `sfmc-${target}` }),
    },
  );
  logger.info({ orgs: [...config.orgs.entries()].map(([org, w]) => `${org}:${w.enabled ? w.definitionKey : 'off'}`) }, 'Welcome configuration');
  await startConsumer({
    stage: 'emailer',
    kafkaBrokers: config.kafkaBrokers,
    kafkaSecurity: config.kafkaSecurity,
    groupId: config.groupId,
    inputTopic: config.augmentedTopic,
    outputTopic: config.sentTopic,
    dlqTopic: config.dlqTopic,
    topicPartitions: config.topicPartitions,
    httpPort: config.httpPort,
    chunkSize: config.chunkSize,
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    outputSchemaFile: 'welcome-sent.avsc',
    logger,
    metrics,
    registry,
    dependencies: async () => ({ auditTable: await sent.ping() }),
    createHandler: (sentSchemaId) =>
      createWelcomeHandler({ registry, reader: augmentedMemberReader(), sfmc, sent, orgs: config.orgs, metrics, sentTopic: config.sentTopic, sentSchemaId }),
    closeClients: async () => void (await Promise.all([sfmc.close(), sent.close()])),
  });
});
