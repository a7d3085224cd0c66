/**
 * What both consumer processes do around their handler: health/metrics server, output
 * schema registration, topics, Kafka clients, the stage loop, and graceful shutdown.
 * Each main.ts builds its own clients and handler and hands them here.
 */
import { startHealthServer } from './health-server';
import { createConsumer, createKafka, createProducer, ensureTopics } from './kafka';
import { describeKafkaSecurity, type KafkaSecurity } from './kafka-security';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { handleShutdown } from './process';
import type { Registry } from './registry';
import { loadSchema, valueSubject } from './schemas';
import { runStage, type BatchHandler, type RunningStage } from './stage';

export interface ConsumerSpec {
  stage: string;
  kafkaBrokers: string[];
  kafkaSecurity?: KafkaSecurity;
  groupId: string;
  inputTopic: string;
  outputTopic: string;
  dlqTopic: string;
  topicPartitions: number;
  httpPort: number;
  chunkSize: number;
  partitionsConsumedConcurrently: number;
  /** schemas/<file> is registered (BACKWARD, idempotent) under the output topic's subject. */
  outputSchemaFile: string;
  logger: Logger;
  metrics: Metrics;
  registry: Registry;
  /** Readiness of the stage's own HTTP/database dependency, by name. */
  dependencies: () => Promise<Record<string, boolean>>;
  createHandler: (outputSchemaId: number) => BatchHandler;
  /** Closes the stage's own clients once nothing is in flight. */
  closeClients: () => Promise<void>;
}

export async function startConsumer(spec: ConsumerSpec): Promise<void> {
  const { logger, registry } = spec;
  const kafka = createKafka({ brokers: spec.kafkaBrokers, clientId: `welcome-${spec.stage}`, ...(spec.kafkaSecurity ? { security: spec.kafkaSecurity } : {}) }, logger);
  if (spec.kafkaSecurity) logger.info({ brokers: spec.kafkaBrokers, ...describeKafkaSecurity(spec.kafkaSecurity) }, 'kafka connection');
  const consumer = createConsumer(kafka, spec.groupId);
  const producer = createProducer(kafka);
  const admin = kafka.admin();

  let stage: RunningStage | undefined;
  let live = true;
  const server = await startHealthServer(
    spec.httpPort,
    { live: () => live, ready: async () => ({ kafka: stage?.isConnected() ?? false, registry: await registry.ping(), ...(await spec.dependencies()) }) },
    spec.metrics.registry,
  );

  const outputSchemaId = await registry.register(valueSubject(spec.outputTopic), loadSchema(spec.outputSchemaFile), 'BACKWARD');
  // Created here (if missing) so the consumer can subscribe before the first record exists.
  await ensureTopics(kafka, [spec.inputTopic, spec.outputTopic, spec.dlqTopic].map((topic) => ({ topic, partitions: spec.topicPartitions })));
  await Promise.all([producer.connect(), admin.connect(), consumer.connect()]);
  const running = await runStage({
    stage: spec.stage,
    groupId: spec.groupId,
    inputTopic: spec.inputTopic,
    dlqTopic: spec.dlqTopic,
    consumer,
    producer,
    admin,
    logger,
    metrics: spec.metrics,
    chunkSize: spec.chunkSize,
    partitionsConsumedConcurrently: spec.partitionsConsumedConcurrently,
    handler: spec.createHandler(outputSchemaId),
  });
  stage = running;
  logger.info({ input: spec.inputTopic, output: spec.outputTopic, group: spec.groupId, outputSchemaId }, `${spec.stage} running`);
  handleShutdown(logger, async () => {
    live = false;
    await running.stop();
    // Nothing is in flight any more; do not wait for idle sockets longer than a second.
    await Promise.race([spec.closeClients(), new Promise((r) => setTimeout(r, 1_000))]);
  }, [server]);
}
