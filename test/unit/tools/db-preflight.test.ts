import { checkServer, type ServerFacts } from '../../../tools/db-preflight';

const good: ServerFacts = {
  version: '10.11.19-MariaDB',
  variables: {
    log_bin: 'ON',
    binlog_format: 'ROW',
    binlog_row_image: 'FULL',
    server_id: '1',
    binlog_expire_logs_seconds: '604800',
    log_bin_compress: 'OFF',
  },
  // as MariaDB 10.11 prints them for the stack's CDC user
  grants: [
    "GRANT RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `debezium`@`%` IDENTIFIED BY PASSWORD '*X'",
    'GRANT SELECT ON `loyalty`.`members` TO `debezium`@`%`',
  ],
  tlsCipher: 'TLS_AES_256_GCM_SHA384',
  createUser: "CREATE USER `debezium`@`%` IDENTIFIED BY PASSWORD '*X' REQUIRE SSL",
};
const opts: Parameters<typeof checkServer>[1] = { flavour: 'mariadb', table: 'loyalty.members', connectorServerId: 184054, minRetentionHours: 72 };
const whats = (f: ServerFacts, o = opts): string[] => checkServer(f, o).map((x) => `${x.level}: ${x.what}`);

test('the local MariaDB as configured passes', () => {
  expect(checkServer(good, opts)).toEqual([]);
});

test('each missing setting is named, with its fix', () => {
  const bad: ServerFacts = {
    ...good,
    variables: {
      log_bin: 'OFF',
      binlog_format: 'MIXED',
      binlog_row_image: 'MINIMAL',
      server_id: '184054',
      binlog_expire_logs_seconds: '3600',
      log_bin_compress: 'ON',
      binlog_legacy_event_pos: 'OFF',
    },
  };
  const found = checkServer(bad, opts);
  expect(found.map((f) => f.what)).toEqual([
    'log_bin is OFF: the server writes no binlog',
    'binlog_format is MIXED',
    'binlog_row_image is MINIMAL: updates would lack the unchanged columns',
    "server_id 184054 equals the connector's database.server.id (CDC_SERVER_ID)",
    'log_bin_compress is ON: Debezium cannot read compressed binlog events',
    'binlog_legacy_event_pos is OFF (MariaDB 11.4+)',
    'binlog retention is 1 h, under 72 h: an outage longer than that loses members (the binlog is purged under the connector)',
  ]);
  expect(found.every((f) => f.level === 'error' && f.fix.length > 0)).toBe(true);
});

test('MySQL: PARTIAL_JSON is refused, GTIDs off is a note, RDS-style expiry 0 is a note', () => {
  const mysql: ServerFacts = {
    version: '8.4.7',
    variables: {
      log_bin: 'ON',
      binlog_format: 'ROW',
      binlog_row_image: 'FULL',
      binlog_row_value_options: 'PARTIAL_JSON',
      server_id: '1',
      gtid_mode: 'OFF',
      binlog_expire_logs_seconds: '0',
    },
    grants: ['GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `debezium`@`%`', 'GRANT SELECT ON `loyalty`.* TO `debezium`@`%`'],
    tlsCipher: 'TLS_AES_128_GCM_SHA256',
    // as MySQL 8.4 prints it: REQUIRE X509 refuses a plaintext login as well
    createUser: "CREATE USER `debezium`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '<secret>' REQUIRE X509 PASSWORD EXPIRE DEFAULT",
  };
  expect(whats(mysql, { ...opts, flavour: 'mysql' })).toEqual([
    'error: binlog_row_value_options contains PARTIAL_JSON: JSON updates arrive as diffs Debezium cannot apply',
    'warn: gtid_mode is OFF',
    'warn: binlog expiry is 0 (never, or managed outside the server: RDS/Aurora purge by their own "binlog retention hours", NULL by default)',
  ]);
});

test('grants: replication rights and SELECT on the captured table (or its database) are required', () => {
  expect(whats({ ...good, grants: ['GRANT SELECT ON `loyalty`.`other` TO `debezium`@`%`'] })).toEqual([
    'error: the CDC user lacks REPLICATION SLAVE',
    'error: the CDC user lacks BINLOG MONITOR (REPLICATION CLIENT)',
    'error: the CDC user cannot SELECT loyalty.members',
  ]);
  expect(whats({ ...good, grants: ['GRANT ALL PRIVILEGES ON *.* TO `root`@`%`'] })).toEqual([]);
});

test('TLS: an unencrypted session and a CDC user that may log in without TLS are each a note with the fix', () => {
  expect(whats({ ...good, tlsCipher: '', createUser: "CREATE USER `debezium`@`%` IDENTIFIED BY PASSWORD '*X'" })).toEqual([
    'warn: this session is not encrypted: the binlog (every captured row) and the CDC password cross the network in clear',
    'warn: the CDC user may log in without TLS (REQUIRE NONE): a client that forgets TLS still gets the binlog',
  ]);
  expect(whats({ ...good, createUser: 'CREATE USER `debezium`@`%` REQUIRE NONE PASSWORD EXPIRE DEFAULT' })).toEqual([
    'warn: the CDC user may log in without TLS (REQUIRE NONE): a client that forgets TLS still gets the binlog',
  ]);
  // a server that would not show the account: nothing claimed either way
  const { createUser: _unknown, ...unknown } = good;
  expect(whats(unknown)).toEqual([]);
});
