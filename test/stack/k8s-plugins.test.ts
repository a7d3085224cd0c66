/**
 * The Connect image Strimzi builds (deploy/k8s/connect-plugins.lock.json → KafkaConnect
 * spec.build) gets the jars the native worker loads: the same converter jars as make fetch's
 * converter build (Kafka, Jackson core and SLF4J excluded), byte for byte, and the same
 * Debezium plugin archives. Needs what `make up` fetched into $STATE_DIR/dist, nothing running.
 */
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { centralPath, sha512, type PluginLock } from '../../tools/k8s/plugin-lock';
import { readVersions } from '../../tools/k8s/versions';
import { ROOT, STATE_DIR } from '../support/env';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lock = require(join(ROOT, 'deploy', 'k8s', 'connect-plugins.lock.json')) as PluginLock;
const dist = join(STATE_DIR, 'dist');

test('the locked converter jars are the native converter folder, file for file and byte for byte', () => {
  const native = readdirSync(join(dist, 'converter'))
    .filter((f) => f.endsWith('.jar'))
    .sort();
  expect(lock.converter.map((j) => j.file)).toEqual(native);
  for (const j of lock.converter)
    expect({ file: j.file, sha512: sha512(join(dist, 'converter', j.file)) }).toEqual({ file: j.file, sha512: j.sha512 });
});

test('each native plugin folder links exactly those converter jars, as each locked plugin lists them', () => {
  for (const plugin of ['debezium-connector-mysql', 'debezium-connector-jdbc']) {
    const linked = readdirSync(join(dist, 'plugins', plugin))
      .filter((f) => realpathSync(join(dist, 'plugins', plugin, f)).startsWith(realpathSync(join(dist, 'converter'))))
      .sort();
    expect({ plugin, linked }).toEqual({ plugin, linked: lock.converter.map((j) => j.file) });
  }
});

test('the locked Debezium archives are the ones make fetch unpacked (stack/pom.xml versions, same SHA-512)', () => {
  const v = readVersions(ROOT);
  const repo = process.env.MAVEN_REPO_LOCAL ?? join(homedir(), '.m2', 'repository');
  for (const [locked, artifact, version] of [
    [lock.debeziumMysql, 'debezium-connector-mysql', v.debezium],
    [lock.debeziumJdbc, 'debezium-connector-jdbc', v.debeziumJdbc],
  ] as const) {
    const path = join(repo, centralPath('io.debezium', artifact, version, 'tar.gz', 'plugin'));
    expect({ artifact, fetched: existsSync(path) }).toEqual({ artifact, fetched: true });
    expect(locked.url.endsWith(centralPath('io.debezium', artifact, version, 'tar.gz', 'plugin'))).toBe(true);
    expect(sha512(path)).toBe(locked.sha512);
  }
});
