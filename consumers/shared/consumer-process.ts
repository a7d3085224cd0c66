/**
 * What both consumer processes do around their handler: health/metrics server, output
 * schema registration, topics, Kafka clients, the stage loop, and graceful shutdown.
 * Each main.ts builds its own clients and handler and hands them here.
 */
import { cachedReadiness, startHealthServer } from './health-server';
import { createHolds, type Holds } from './holds';
import { createConsumer, createKafka, createProducer, dlqTopicConfigs, ensureTopics } from './kafka';
import { describeKafkaSecurity, type KafkaSecurity } from './kafka-security';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { handleShutdown } from './process';
import type { Registry } from './registry';
import { loadSchema, valueSubject } from './schemas';
import type { StageTuning } from './stage-config';
import { runStage, type BatchHandler, type RunningStage } from './stage';

export interface ConsumerSpec {
  stage: string;
  kafkaBrokers: string[];
  kafkaSecurity?: KafkaSecurity;
  groupId: string;
  inputTopic: string;
  outputTopic: string;
  dlqTopic: string;
  /** retention.ms set on the DLQ topic, new or existing (-1: kept until replayed). */
  dlqRetentionMs: number;
  topicPartitions: number;
  httpHost: string;
  httpPort: number;
  chunkSize: number;
  partitionsConsumedConcurrently: number;
  tuning: StageTuning;
  /** schemas/<file> is registered (BACKWARD, idempotent) under the output topic's subject. */
  outputSchemaFile: string;
  logger: Logger;
  metrics: Metrics;
  registry: Registry;
  /** Readiness of the stage's own HTTP/database dependency, by name. */
  dependencies: () => Promise<Record<string, boolean>>;
  /** `holds`: the process's setup holds; a handler releases a scope on a good answer for it. */
  createHandler: (outputSchemaId: number, holds: Holds) => BatchHandler;
  /** Closes the stage's own clients once nothing is in flight. */
  closeClients: () => Promise<void>;
}

export async function startConsumer(spec: ConsumerSpec): Promise<void> {
  const { logger, registry } = spec;
  const kafka = createKafka(
    { brokers: spec.kafkaBrokers, clientId: `welcome-${spec.stage}`, ...(spec.kafkaSecurity ? { security: spec.kafkaSecurity } : {}) },
    logger,
  );
  if (spec.kafkaSecurity) logger.info({ brokers: spec.kafkaBrokers, ...describeKafkaSecurity(spec.kafkaSecurity) }, 'kafka connection');
  const consumer = createConsumer(kafka, spec.groupId, spec.tuning);
  const producer = createProducer(kafka);
  const admin = kafka.admin();

  let stage: RunningStage | undefined;
  let live = true;
  let deadReason: string | undefined;
  const holds = createHolds({ logger, gauge: spec.metrics.hold });
  // cached for a few seconds: every /readyz (and readiness scrape) would otherwise call the registry and the dependency
  const ready = cachedReadiness(async (): Promise<Record<string, boolean>> => ({
    kafka: stage?.isConnected() ?? false,
    registry: await registry.ping(),
    ...(await spec.dependencies()),
  }));
  spec.metrics.setReadiness(ready);
  const server = await startHealthServer(
    spec.httpHost,
    spec.httpPort,
    {
      live: () => live && deadReason === undefined,
      liveReason: () => deadReason ?? (live ? undefined : 'stopping'),
      ready,
      // Alive but waiting says why: the setup holds and the partitions paused now.
      waiting: () => ({ holds: holds.list(), pausedPartitions: stage?.paused() ?? {} }),
    },
    spec.metrics.registry,
  );

  const outputSchemaId = await registry.register(valueSubject(spec.outputTopic), loadSchema(spec.outputSchemaFile), 'BACKWARD');
  // Created here (if missing) so the consumer can subscribe before the first record exists.
  await ensureTopics(kafka, [
    ...[spec.inputTopic, spec.outputTopic].map((topic) => ({ topic, partitions: spec.topicPartitions })),
    // dead letters stay until replayed, on a topic created here or by an older version
    { topic: spec.dlqTopic, partitions: spec.topicPartitions, configs: dlqTopicConfigs(spec.dlqRetentionMs) },
  ]);
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
    handler: spec.createHandler(outputSchemaId, holds),
    holds,
    heartbeatIntervalMs: spec.tuning.heartbeatIntervalMs,
    chunkPolicy: { budgetMs: spec.tuning.chunkBudgetMs, isolateAfter: spec.tuning.isolateAfter },
    liveness: { stallTimeoutMs: spec.tuning.stallTimeoutMs, restartGraceMs: spec.tuning.restartGraceMs },
    onFatal: (reason) => {
      // /healthz answers 503 with the reason from now on; exit non-zero so a supervisor starts a fresh process.
      // Nothing uncommitted is lost: the next owner of the partitions reads it again.
      deadReason = reason;
      const exit = setTimeout(() => process.exit(1), 2_000);
      exit.unref();
      Promise.race([consumer.disconnect(), new Promise((r) => setTimeout(r, 1_500))])
        .finally(() => process.exit(1))
        .catch(() => undefined);
    },
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
