import { join } from 'node:path';
import { literalSecrets, loadConnectorDefs } from '../../../tools/connect-defs';

const dir = join(__dirname, '..', '..', '..', 'connect');
const byName = (flavour: 'mariadb' | 'mysql', overlays: string[]) =>
  new Map(loadConnectorDefs(dir, flavour, overlays).map((d) => [d.name, d.config]));

test('no overlay: MariaDB (the local stack, whose server serves TLS) is reached over verified TLS, MySQL as before', () => {
  const maria = byName('mariadb', []);
  expect(maria.get('members-source')?.['database.ssl.mode']).toBe('verify-full');
  expect(maria.get('members-source')?.['database.ssl.truststore']).toBe('${env:DB_SSL_TRUSTSTORE}');
  for (const sink of ['welcome-audit', 'welcome-delivery-status'])
    expect(maria.get(sink)?.['connection.url']).toBe(
      'jdbc:mariadb://${env:DB_HOST}:${env:DB_PORT}/loyalty?sslMode=verify-full&serverSslCert=${env:DB_SSL_CA_FILE}',
    );
  const mysql = byName('mysql', []);
  expect(mysql.get('members-source')?.['database.ssl.mode']).toBeUndefined();
  expect(mysql.get('welcome-audit')?.['connection.url']).toBe('jdbc:mysql://${env:DB_HOST}:${env:DB_PORT}/loyalty');
});

test('kafka-secured puts both schema-history clients on the worker-provided TLS/SASL settings', () => {
  const c = byName('mysql', ['kafka-secured']).get('members-source') ?? {};
  for (const client of ['producer', 'consumer']) {
    expect(c[`schema.history.internal.${client}.security.protocol`]).toBe('${env:CONNECTOR_KAFKA_SECURITY_PROTOCOL}');
    expect(c[`schema.history.internal.${client}.sasl.jaas.config`]).toBe('${env:CONNECTOR_KAFKA_SASL_JAAS_CONFIG}');
  }
});

test('db-tls spells TLS per flavour (Debezium and the JDBC sink), secrets only as references', () => {
  const maria = byName('mariadb', ['db-tls']);
  const mysql = byName('mysql', ['db-tls']);
  expect(maria.get('members-source')?.['database.ssl.mode']).toBe('verify-full');
  expect(mysql.get('members-source')?.['database.ssl.mode']).toBe('verify_identity');
  expect(maria.get('welcome-audit')?.['connection.url']).toMatch(/^jdbc:mariadb:.*sslMode=verify-full/);
  for (const sink of ['welcome-audit', 'welcome-delivery-status'])
    expect(mysql.get(sink)?.['connection.url']).toMatch(/^jdbc:mysql:.*sslMode=VERIFY_IDENTITY/);
  for (const m of [maria, mysql, byName('mysql', ['kafka-secured', 'registry-basic', 'db-tls'])])
    for (const c of m.values()) expect(literalSecrets(c)).toEqual([]);
});

test('an unknown overlay is an error naming it', () => {
  expect(() => loadConnectorDefs(dir, 'mysql', ['kafka-secure'])).toThrow('CONNECT_OVERLAYS: no folder connect/overlays/kafka-secure');
});
