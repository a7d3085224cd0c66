/**
 * Versions the manifests pin, read from the poms that pin them for the native stack:
 * stack/pom.xml (Kafka, Debezium, Apicurio, JMX exporter) and stack/strimzi/pom.xml (Strimzi).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Versions {
  kafka: string;
  debezium: string;
  debeziumJdbc: string;
  apicurioRegistry: string;
  apicurioConverter: string;
  strimzi: string;
}

/** <properties> of a pom as name → value (no inheritance: each name is read where it is set). */
export function pomProperties(xml: string): Record<string, string> {
  const block = /<properties>([\s\S]*?)<\/properties>/.exec(xml.replace(/<!--[\s\S]*?-->/g, ''))?.[1] ?? '';
  return Object.fromEntries([...block.matchAll(/<([A-Za-z0-9_.-]+)>([^<]*)<\/\1>/g)].map((m) => [m[1] as string, (m[2] as string).trim()]));
}

export function readVersions(root: string): Versions {
  const stack = pomProperties(readFileSync(join(root, 'stack', 'pom.xml'), 'utf8'));
  const strimzi = pomProperties(readFileSync(join(root, 'stack', 'strimzi', 'pom.xml'), 'utf8'));
  const need = (props: Record<string, string>, name: string, file: string): string => {
    const v = props[name];
    if (!v) throw new Error(`${file}: no <${name}> property`);
    return v;
  };
  return {
    kafka: need(stack, 'kafka.version', 'stack/pom.xml'),
    debezium: need(stack, 'debezium.version', 'stack/pom.xml'),
    debeziumJdbc: need(stack, 'debezium.jdbc.version', 'stack/pom.xml'),
    apicurioRegistry: need(stack, 'apicurio.registry.version', 'stack/pom.xml'),
    apicurioConverter: need(stack, 'apicurio.converter.version', 'stack/pom.xml'),
    strimzi: need(strimzi, 'strimzi.version', 'stack/strimzi/pom.xml'),
  };
}

/**
 * The Kafka version a Strimzi release runs Connect (and brokers) on. Strimzi 1.2.0 supports
 * 4.2.0, 4.2.1, 4.3.0 and 4.3.1 (its kafka-versions.yaml); none yet runs 4.4, which the native
 * stack's brokers run. Connect 4.3 talks to 4.4 brokers (Kafka clients and brokers are
 * compatible both ways), and the Debezium plugins are built against Kafka 4.3.
 */
export const STRIMZI_KAFKA_VERSIONS: Record<string, readonly string[]> = { '1.2.0': ['4.2.0', '4.2.1', '4.3.0', '4.3.1'] };

export function connectKafkaVersion(v: Versions): string {
  const supported = STRIMZI_KAFKA_VERSIONS[v.strimzi];
  if (!supported) throw new Error(`Strimzi ${v.strimzi}: its supported Kafka versions are not recorded (tools/k8s/versions.ts)`);
  const newest = supported.at(-1) as string;
  return supported.includes(v.kafka) ? v.kafka : newest;
}
