/**
 * `make connectors` runs this first: does the database let Debezium capture changes, and
 * does the CDC user hold what it needs? One line per missing setting or grant, with the fix,
 * instead of a FAILED task trace after registration.
 *   node dist/tools/db-preflight.js
 * Connects as CDC_DB_USER (DB_HOST, DB_PORT, CDC_DB_PASSWORD[_FILE]); DB_SSL_CA_FILE turns on
 * TLS with certificate checks (DB_SSL_MODE verify-full, the default, also checks the host name;
 * verify-ca does not). It also says whether the session is encrypted and whether the CDC user
 * could log in without TLS at all (REQUIRE SSL), the two ways the binlog crosses a network in clear.
 */
import { readFileSync } from 'node:fs';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { optionalStr, secret, int, str } from '../consumers/shared/env';

export type DbFlavour = 'mysql' | 'mariadb';
export interface ServerFacts {
  version: string;
  variables: Record<string, string>;
  grants: string[];
  /** the session's Ssl_cipher; '' when the connection is not encrypted */
  tlsCipher: string;
  /** SHOW CREATE USER CURRENT_USER(); undefined when the server would not say */
  createUser?: string;
}
export interface Finding {
  level: 'error' | 'warn';
  what: string;
  fix: string;
}

const on = (v: string | undefined): boolean => v !== undefined && ['ON', '1', 'TRUE'].includes(v.toUpperCase());

/** Checks of the server's settings and the CDC user's grants (pure, for unit tests). */
export function checkServer(
  f: ServerFacts,
  o: { flavour: DbFlavour; table: string; connectorServerId: number; minRetentionHours: number },
): Finding[] {
  const v = f.variables;
  const out: Finding[] = [];
  const err = (what: string, fix: string): void => void out.push({ level: 'error', what, fix });
  const warn = (what: string, fix: string): void => void out.push({ level: 'warn', what, fix });
  if (!on(v.log_bin))
    err(
      `log_bin is ${v.log_bin ?? 'unknown'}: the server writes no binlog`,
      'enable binary logging (log_bin; RDS/Aurora: automated backups on, or binlog_format in the cluster parameter group)',
    );
  if ((v.binlog_format ?? '').toUpperCase() !== 'ROW')
    err(
      `binlog_format is ${v.binlog_format ?? 'unknown'}`,
      "SET GLOBAL binlog_format = ROW (parameter group on RDS/Aurora), then restart the writers' sessions",
    );
  if ((v.binlog_row_image ?? '').toUpperCase() !== 'FULL')
    err(`binlog_row_image is ${v.binlog_row_image ?? 'unknown'}: updates would lack the unchanged columns`, 'binlog_row_image = FULL');
  if (/PARTIAL_JSON/i.test(v.binlog_row_value_options ?? ''))
    err(
      'binlog_row_value_options contains PARTIAL_JSON: JSON updates arrive as diffs Debezium cannot apply',
      "binlog_row_value_options = '' (empty)",
    );
  const serverId = Number(v.server_id ?? 0);
  if (!serverId) err('server_id is 0 or unknown', 'give the server a non-zero server_id');
  else if (serverId === o.connectorServerId)
    err(
      `server_id ${serverId} equals the connector's database.server.id (CDC_SERVER_ID)`,
      'choose a CDC_SERVER_ID that no server or replica of this topology uses',
    );
  if (o.flavour === 'mysql') {
    if (!on(v.gtid_mode))
      warn(
        `gtid_mode is ${v.gtid_mode ?? 'unknown'}`,
        'gtid_mode = ON and enforce_gtid_consistency = ON, so the connector can follow a failover to a replica',
      );
  } else {
    if (on(v.log_bin_compress)) err('log_bin_compress is ON: Debezium cannot read compressed binlog events', 'log_bin_compress = OFF');
    if (v.binlog_legacy_event_pos !== undefined && !on(v.binlog_legacy_event_pos))
      err('binlog_legacy_event_pos is OFF (MariaDB 11.4+)', 'binlog_legacy_event_pos = ON');
  }
  const seconds = Number(v.binlog_expire_logs_seconds ?? 0) || Number(v.expire_logs_days ?? 0) * 86400;
  if (seconds > 0 && seconds < o.minRetentionHours * 3600) {
    err(
      `binlog retention is ${Math.round(seconds / 3600)} h, under ${o.minRetentionHours} h: an outage longer than that loses members (the binlog is purged under the connector)`,
      `binlog_expire_logs_seconds >= ${o.minRetentionHours * 3600} (RDS/Aurora: CALL mysql.rds_set_configuration('binlog retention hours', ${o.minRetentionHours}))`,
    );
  }
  if (seconds === 0)
    warn(
      'binlog expiry is 0 (never, or managed outside the server: RDS/Aurora purge by their own "binlog retention hours", NULL by default)',
      `on RDS/Aurora: CALL mysql.rds_set_configuration('binlog retention hours', ${o.minRetentionHours})`,
    );

  const global = f.grants
    .filter((g) => / ON \*\.\* TO /i.test(g))
    .join(' ')
    .toUpperCase();
  const all = global.includes('ALL PRIVILEGES');
  if (!all && !global.includes('REPLICATION SLAVE')) err('the CDC user lacks REPLICATION SLAVE', 'GRANT REPLICATION SLAVE ON *.* TO <cdc user>');
  if (!all && !global.includes('REPLICATION CLIENT') && !global.includes('BINLOG MONITOR'))
    err(
      `the CDC user lacks ${o.flavour === 'mariadb' ? 'BINLOG MONITOR (REPLICATION CLIENT)' : 'REPLICATION CLIENT'}`,
      `GRANT ${o.flavour === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT'} ON *.* TO <cdc user>`,
    );
  const [db, tbl] = o.table.split('.') as [string, string];
  const strip = (s: string): string => s.replace(/[`'"]/g, '');
  const canSelect = f.grants.some((g) => {
    const m = /^GRANT (.+) ON (\S+) TO /i.exec(strip(g));
    if (!m) return false;
    const privs = (m[1] ?? '').toUpperCase();
    return (privs.includes('SELECT') || privs.includes('ALL PRIVILEGES')) && [`*.*`, `${db}.*`, `${db}.${tbl}`].includes(m[2] ?? '');
  });
  if (!canSelect) err(`the CDC user cannot SELECT ${o.table}`, `GRANT SELECT ON ${o.table} TO <cdc user>`);

  // TLS: Debezium's connection carries every captured row and the CDC password
  if (!f.tlsCipher)
    warn(
      'this session is not encrypted: the binlog (every captured row) and the CDC password cross the network in clear',
      'serve TLS on the server, set DB_SSL_CA_FILE here, and database.ssl.mode on the connector (connect/flavours/mariadb; MySQL: CONNECT_OVERLAYS=db-tls)',
    );
  // REQUIRE SSL/X509/ISSUER/SUBJECT/CIPHER all refuse a plaintext login; NONE (or nothing) accepts it
  const require = /\bREQUIRE\s+(NONE|SSL|X509|ISSUER|SUBJECT|CIPHER)\b/i.exec(f.createUser ?? '')?.[1]?.toUpperCase() ?? 'NONE';
  if (f.createUser !== undefined && require === 'NONE')
    warn(
      'the CDC user may log in without TLS (REQUIRE NONE): a client that forgets TLS still gets the binlog',
      'ALTER USER <cdc user> REQUIRE SSL (RDS/Aurora: or require_secure_transport = ON in the parameter group)',
    );
  return out;
}

const VARIABLES = [
  'log_bin',
  'binlog_format',
  'binlog_row_image',
  'binlog_row_value_options',
  'server_id',
  'gtid_mode',
  'enforce_gtid_consistency',
  'binlog_expire_logs_seconds',
  'expire_logs_days',
  'log_bin_compress',
  'binlog_legacy_event_pos',
];

async function main(): Promise<void> {
  const env = process.env;
  const readFile = (p: string): string => readFileSync(p, 'utf8');
  const flavour = (env.CONNECT_FLAVOUR ?? 'mariadb') === 'mysql' ? 'mysql' : 'mariadb';
  const ca = optionalStr(env, 'DB_SSL_CA_FILE');
  const sslMode = str(env, 'DB_SSL_MODE', 'verify-full');
  if (sslMode !== 'verify-full' && sslMode !== 'verify-ca') throw new Error(`DB_SSL_MODE must be verify-full or verify-ca, got "${sslMode}"`);
  const conn = await createConnection({
    host: str(env, 'DB_HOST', '127.0.0.1'),
    port: int(env, 'DB_PORT', 3306, 1, 65535),
    user: str(env, 'CDC_DB_USER', 'debezium'),
    password: secret(env, 'CDC_DB_PASSWORD', readFile),
    connectTimeout: 10_000,
    ...(ca
      ? {
          ssl: { ca: readFile(ca), rejectUnauthorized: true, ...(sslMode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }) },
        }
      : {}),
  });
  try {
    const [vars] = await conn.query<RowDataPacket[]>(
      `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${VARIABLES.map(() => '?').join(',')})`,
      VARIABLES,
    );
    const [grants] = await conn.query<RowDataPacket[]>('SHOW GRANTS');
    const [[version]] = await conn.query<RowDataPacket[]>('SELECT VERSION() AS v');
    const [[cipher]] = await conn.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    // allowed for one's own account on MySQL and MariaDB without any privilege
    const createUser = await conn
      .query<RowDataPacket[]>('SHOW CREATE USER CURRENT_USER()')
      .then(([[row]]) => (row ? String(Object.values(row)[0]) : undefined))
      .catch(() => undefined);
    const facts: ServerFacts = {
      version: String(version?.v ?? ''),
      variables: Object.fromEntries(vars.map((r) => [String(r.Variable_name), String(r.Value)])),
      grants: grants.map((r) => String(Object.values(r)[0])),
      tlsCipher: String(cipher?.Value ?? ''),
      ...(createUser !== undefined ? { createUser } : {}),
    };
    const findings = checkServer(facts, {
      flavour,
      table: env.CDC_TABLE ?? 'loyalty.members',
      connectorServerId: Number(env.CDC_SERVER_ID ?? 184054),
      minRetentionHours: int(env, 'PREFLIGHT_MIN_BINLOG_RETENTION_HOURS', 72, 1, 100_000),
    });
    const tls = facts.tlsCipher ? `TLS ${facts.tlsCipher}` : 'no TLS';
    for (const f of findings) process.stdout.write(`db-preflight: ${f.level === 'error' ? 'MISSING' : 'note'}: ${f.what} → ${f.fix}\n`);
    const errors = findings.filter((f) => f.level === 'error').length;
    if (errors > 0) throw new Error(`${errors} setting(s) or grant(s) missing on ${facts.version}; nothing registered`);
    process.stdout.write(`db-preflight: ${facts.version} (${flavour}, ${tls}) ready for CDC as ${env.CDC_DB_USER ?? 'debezium'}\n`);
  } finally {
    await conn.end();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`db-preflight: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
