/**
 * How a consumer reaches the outside: Kafka and the registry (every stage), SFMC and the
 * database (the emailer and the delivery-status stage). Read once at start like the rest of
 * each stage's config; a bad or missing variable stops the process with its name.
 */
import { loadKafkaSecurity, type KafkaSecurity } from './kafka-security';
import { loadRegistryAuth, type RegistryAuth } from './registry-auth';
import { int, optionalStr, secret, str, url, type Env } from './env';
import { ConfigError } from './errors';

type ReadFile = (path: string) => string;

export interface KafkaAndRegistry {
  kafkaBrokers: string[];
  kafkaSecurity: KafkaSecurity;
  registryUrl: string;
  registryAuth: RegistryAuth | undefined;
}

export function loadKafkaAndRegistry(env: Env, readFile: ReadFile): KafkaAndRegistry {
  return {
    kafkaBrokers: str(env, 'KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')
      .split(',')
      .map((b) => b.trim()),
    kafkaSecurity: loadKafkaSecurity(env, readFile),
    registryUrl: url(env, 'REGISTRY_URL', 'http://127.0.0.1:8081'),
    registryAuth: loadRegistryAuth(env, readFile),
  };
}

export interface SfmcSettings {
  authBaseUrl: string;
  clientId: string;
  clientSecret: string;
  accountId?: string;
  scope?: string;
  timeoutMs: number;
}

export function loadSfmcSettings(env: Env, readFile: ReadFile): SfmcSettings {
  const accountId = optionalStr(env, 'SFMC_ACCOUNT_ID');
  const scope = optionalStr(env, 'SFMC_SCOPE');
  return {
    authBaseUrl: url(env, 'SFMC_AUTH_URL'),
    clientId: str(env, 'SFMC_CLIENT_ID'),
    clientSecret: secret(env, 'SFMC_CLIENT_SECRET', readFile),
    ...(accountId ? { accountId } : {}),
    ...(scope ? { scope } : {}),
    timeoutMs: int(env, 'SFMC_TIMEOUT_MS', 5_000, 100, 120_000),
  };
}

export interface DbSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  tls?: { ca: string; verifyHost: boolean };
}

/**
 * A stage's own database user (least privilege: each stage has one) and TLS to the server:
 * DB_SSL_CA_FILE turns TLS on, DB_SSL_MODE verify-full (default) or verify-ca.
 */
export function loadDbSettings(env: Env, readFile: ReadFile, user: { userVar: string; passwordVar: string; defaultUser: string }): DbSettings {
  return {
    host: str(env, 'DB_HOST', '127.0.0.1'),
    port: int(env, 'DB_PORT', 3306, 1, 65535),
    user: str(env, user.userVar, user.defaultUser),
    password: secret(env, user.passwordVar, readFile),
    database: str(env, 'DB_NAME', 'loyalty'),
    ...dbTls(env, readFile),
  };
}

function dbTls(env: Env, readFile: ReadFile): { tls?: { ca: string; verifyHost: boolean } } {
  const file = optionalStr(env, 'DB_SSL_CA_FILE');
  const mode = str(env, 'DB_SSL_MODE', 'verify-full');
  if (mode !== 'verify-full' && mode !== 'verify-ca') throw new ConfigError(`DB_SSL_MODE must be verify-full or verify-ca, got "${mode}"`);
  if (!file) return {};
  let ca: string;
  try {
    ca = readFile(file);
  } catch (err) {
    throw new ConfigError(`DB_SSL_CA_FILE points to "${file}", which cannot be read`, err);
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`DB_SSL_CA_FILE points to "${file}", which holds no PEM certificate`);
  return { tls: { ca, verifyHost: mode === 'verify-full' } };
}

/** mysql2 connection options for DbSettings: TLS verifies the CA always, the name unless verify-ca. */
export function mysqlConnection(db: DbSettings): { host: string; port: number; user: string; password: string; database: string; ssl?: object } {
  const { tls, ...conn } = db;
  if (!tls) return conn;
  return { ...conn, ssl: { ca: tls.ca, rejectUnauthorized: true, ...(tls.verifyHost ? {} : { checkServerIdentity: () => undefined }) } };
}
