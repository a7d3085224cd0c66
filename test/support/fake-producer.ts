/**
 * A producer for unit tests that keeps kafkajs's contract where produceAll relies on it: the
 * partitioner createProducer uses routes each message, and sendBatch answers once per
 * topic-partition written (RecordMetadata, errorCode 0), as kafkajs's sendMessages does.
 */
import type { Producer } from 'kafkajs';
import { recordingPartitioner, type OutgoingRecord } from '../../consumers/shared/kafka';

export function fakeProducer(partitions = 6): { producer: Producer; produced: OutgoingRecord[] } {
  const produced: OutgoingRecord[] = [];
  const route = recordingPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
  }));
  const sendBatch = async ({ topicMessages }: { topicMessages: { topic: string; messages: Omit<OutgoingRecord, 'topic'>[] }[] }) =>
    topicMessages.flatMap(({ topic, messages }) => {
      const written = new Set(messages.map((message) => route({ topic, partitionMetadata, message: message as never })));
      produced.push(...messages.map((m) => ({ ...m, topic })));
      return [...written].map((partition) => ({ topicName: topic, partition, errorCode: 0, baseOffset: '0' }));
    });
  return { producer: { sendBatch } as unknown as Producer, produced };
}
