/**
 * How a process authenticates to Kafka: TLS (CA, optional client certificate) and SASL
 * (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with client credentials), read once from the
 * environment and turned into kafkajs's `ssl`/`sasl` options. Every process that opens a
 * Kafka connection (consumers, tools, bench, tests) goes through here, so one set of
 * variables means the same thing everywhere:
 *
 *   KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL
 *   KAFKA_SSL_CA_FILE         PEM bundle of the CAs to trust (unset: Node's public CAs)
 *   KAFKA_SSL_CERT_FILE       client certificate (PEM), with KAFKA_SSL_KEY_FILE (mutual TLS)
 *   KAFKA_SSL_KEY_PASSWORD    secret, if the key file is encrypted
 *   KAFKA_SASL_MECHANISM      PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER
 *   KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD                         (PLAIN, SCRAM)
 *   KAFKA_SASL_OAUTH_TOKEN_URL, KAFKA_SASL_OAUTH_CLIENT_ID,
 *   KAFKA_SASL_OAUTH_CLIENT_SECRET, KAFKA_SASL_OAUTH_SCOPE (optional)  (OAUTHBEARER)
 *
 * Secrets may also come from NAME_FILE. Files are read here, at start, so a missing CA or
 * key fails the process with the variable's name instead of at the first reconnect.
 */
import type { ConnectionOptions } from 'node:tls';
import { optionalStr, secret, str, url, type Env } from './env';
import { ConfigError } from './errors';

export const PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export type SecurityProtocol = (typeof PROTOCOLS)[number];
export const MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;
export type SaslMechanism = (typeof MECHANISMS)[number];

export interface TlsSettings {
  /** PEM contents (not paths): read once at start. */
  ca?: string;
  cert?: string;
  key?: string;
  keyPassword?: string;
}

export type SaslSettings =
  | { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string }
  | { mechanism: 'OAUTHBEARER'; tokenUrl: string; clientId: string; clientSecret: string; scope?: string };

export interface KafkaSecurity {
  protocol: SecurityProtocol;
  /** Present for SSL and SASL_SSL. */
  tls?: TlsSettings;
  /** Present for SASL_PLAINTEXT and SASL_SSL. */
  sasl?: SaslSettings;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback?: T): T {
  const raw = str(env, name, fallback).toUpperCase();
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}

function pemFile(env: Env, name: string, readFile: (p: string) => string, marker: RegExp, what: string): string | undefined {
  const path = optionalStr(env, name);
  if (!path) return undefined;
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`${name} points to "${path}", which cannot be read`, err);
  }
  if (!marker.test(text)) throw new ConfigError(`${name} points to "${path}", which holds no PEM ${what}`);
  return text;
}

const optionalSecret = (env: Env, name: string, readFile: (p: string) => string): string | undefined =>
  env[name] || env[`${name}_FILE`]?.trim() ? secret(env, name, readFile) : undefined;

/** Reads and validates the variables above; every error names the variable. */
export function loadKafkaSecurity(env: Env, readFile: (p: string) => string): KafkaSecurity {
  const protocol = oneOf(env, 'KAFKA_SECURITY_PROTOCOL', PROTOCOLS, 'PLAINTEXT');
  const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const usesSasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';

  const tlsVars = ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'].filter((n) => optionalStr(env, n));
  if (!usesTls && tlsVars.length > 0)
    throw new ConfigError(`${tlsVars.join(', ')} set but KAFKA_SECURITY_PROTOCOL is ${protocol}: use SSL or SASL_SSL, or unset them`);
  const saslVars = ['KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME'].filter((n) => optionalStr(env, n));
  if (!usesSasl && saslVars.length > 0)
    throw new ConfigError(`${saslVars.join(', ')} set but KAFKA_SECURITY_PROTOCOL is ${protocol}: use SASL_SSL (or SASL_PLAINTEXT), or unset them`);

  const out: KafkaSecurity = { protocol };
  if (usesTls) {
    const tls: TlsSettings = {};
    const ca = pemFile(env, 'KAFKA_SSL_CA_FILE', readFile, /-----BEGIN CERTIFICATE-----/, 'certificate');
    const cert = pemFile(env, 'KAFKA_SSL_CERT_FILE', readFile, /-----BEGIN CERTIFICATE-----/, 'certificate');
    const key = pemFile(env, 'KAFKA_SSL_KEY_FILE', readFile, /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/, 'private key');
    if (Boolean(cert) !== Boolean(key))
      throw new ConfigError('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (a client certificate needs its key)');
    const keyPassword = optionalSecret(env, 'KAFKA_SSL_KEY_PASSWORD', readFile);
    if (keyPassword && !key) throw new ConfigError('KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_KEY_FILE');
    if (ca) tls.ca = ca;
    if (cert && key) Object.assign(tls, { cert, key });
    if (keyPassword) tls.keyPassword = keyPassword;
    out.tls = tls;
  }
  if (usesSasl) {
    const mechanism = oneOf(env, 'KAFKA_SASL_MECHANISM', MECHANISMS);
    if (mechanism === 'OAUTHBEARER') {
      const scope = optionalStr(env, 'KAFKA_SASL_OAUTH_SCOPE');
      out.sasl = {
        mechanism,
        tokenUrl: url(env, 'KAFKA_SASL_OAUTH_TOKEN_URL'),
        clientId: str(env, 'KAFKA_SASL_OAUTH_CLIENT_ID'),
        clientSecret: secret(env, 'KAFKA_SASL_OAUTH_CLIENT_SECRET', readFile),
        ...(scope ? { scope } : {}),
      };
    } else {
      out.sasl = { mechanism, username: str(env, 'KAFKA_SASL_USERNAME'), password: secret(env, 'KAFKA_SASL_PASSWORD', readFile) };
    }
  }
  if (protocol === 'SASL_PLAINTEXT' && out.sasl?.mechanism === 'PLAIN') {
    throw new ConfigError('KAFKA_SASL_MECHANISM=PLAIN over KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT sends the password in clear text: use SASL_SSL');
  }
  return out;
}

/** Safe to log: which protocol, mechanism and user, never a secret or a key. */
export function describeKafkaSecurity(s: KafkaSecurity): Record<string, string> {
  const d: Record<string, string> = { protocol: s.protocol };
  if (s.tls) d.tls = `${s.tls.ca ? 'own CA' : 'public CAs'}${s.tls.cert ? ', client certificate' : ''}`;
  if (s.sasl) d.sasl = s.sasl.mechanism === 'OAUTHBEARER' ? `OAUTHBEARER client ${s.sasl.clientId}` : `${s.sasl.mechanism} user ${s.sasl.username}`;
  return d;
}

export type FetchLike = (
  input: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

/**
 * OAUTHBEARER token provider (OAuth 2.0 client credentials). kafkajs calls it on every
 * (re)authentication; the token is reused until a minute before it expires.
 */
export function clientCredentialsProvider(
  o: { tokenUrl: string; clientId: string; clientSecret: string; scope?: string },
  fetchImpl: FetchLike = fetch as unknown as FetchLike,
  now: () => number = Date.now,
): () => Promise<{ value: string }> {
  let cached: { value: string; until: number } | undefined;
  return async () => {
    if (cached && now() < cached.until) return { value: cached.value };
    const body = new URLSearchParams({ grant_type: 'client_credentials', ...(o.scope ? { scope: o.scope } : {}) }).toString();
    const basic = Buffer.from(`${encodeURIComponent(o.clientId)}:${encodeURIComponent(o.clientSecret)}`).toString('base64');
    const res = await fetchImpl(o.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}`, accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    // The answer of a refusal is shown (it names the problem); a token never is.
    if (!res.ok) throw new Error(`OAuth token endpoint ${o.tokenUrl} answered ${res.status}: ${text.slice(0, 200)}`);
    let parsed: { access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      throw new Error(`OAuth token endpoint ${o.tokenUrl} answered something that is not JSON`);
    }
    if (typeof parsed.access_token !== 'string' || !parsed.access_token)
      throw new Error(`OAuth token endpoint ${o.tokenUrl} answered without access_token`);
    const lifetimeS = typeof parsed.expires_in === 'number' ? parsed.expires_in : 300;
    cached = { value: parsed.access_token, until: now() + Math.max(0, lifetimeS - 60) * 1000 };
    return { value: cached.value };
  };
}

export interface KafkaClientSecurityOptions {
  ssl?: ConnectionOptions;
  sasl?:
    | { mechanism: 'plain'; username: string; password: string }
    | { mechanism: 'scram-sha-256'; username: string; password: string }
    | { mechanism: 'scram-sha-512'; username: string; password: string }
    | { mechanism: 'oauthbearer'; oauthBearerProvider: () => Promise<{ value: string }> };
}

/** kafkajs's `ssl` and `sasl` constructor options for these settings. */
export function kafkaClientOptions(s: KafkaSecurity, fetchImpl?: FetchLike): KafkaClientSecurityOptions {
  const out: KafkaClientSecurityOptions = {};
  if (s.tls) {
    // Certificate and host name are always verified (rejectUnauthorized is Node's default).
    const ssl: ConnectionOptions = { rejectUnauthorized: true };
    if (s.tls.ca) ssl.ca = [s.tls.ca];
    if (s.tls.cert) ssl.cert = s.tls.cert;
    if (s.tls.key) ssl.key = s.tls.key;
    if (s.tls.keyPassword) ssl.passphrase = s.tls.keyPassword;
    out.ssl = ssl;
  }
  if (s.sasl) {
    out.sasl =
      s.sasl.mechanism === 'OAUTHBEARER'
        ? { mechanism: 'oauthbearer', oauthBearerProvider: clientCredentialsProvider(s.sasl, fetchImpl) }
        : ({ mechanism: s.sasl.mechanism.toLowerCase(), username: s.sasl.username, password: s.sasl.password } as {
            mechanism: 'plain';
            username: string;
            password: string;
          });
  }
  return out;
}

/** Brokers and security of the process's Kafka connection, for entry points and tools. */
export function kafkaFromEnv(env: Env, readFile: (p: string) => string): { brokers: string[]; security: KafkaSecurity } {
  const brokers = str(env, 'KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  return { brokers, security: loadKafkaSecurity(env, readFile) };
}
