import {
  clientCredentialsProvider,
  describeKafkaSecurity,
  kafkaClientOptions,
  kafkaFromEnv,
  loadKafkaSecurity,
  type FetchLike,
} from '../../../consumers/shared/kafka-security';
import { ConfigError } from '../../../consumers/shared/errors';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const files: Record<string, string> = {
  '/ca.pem': CERT,
  '/client.pem': CERT,
  '/client.key': KEY,
  '/pw': 'from-a-file\n',
  '/empty': '  \n',
  '/junk': 'hello',
};
const readFile = (p: string): string => {
  const f = files[p];
  if (f === undefined) throw new Error(`ENOENT ${p}`);
  return f;
};
const load = (env: Record<string, string>) => loadKafkaSecurity(env, readFile);
const refused = (env: Record<string, string>): string => {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('loadKafkaSecurity', () => {
  test('nothing set is PLAINTEXT, with no ssl or sasl options', () => {
    expect(load({})).toEqual({ protocol: 'PLAINTEXT' });
    expect(kafkaClientOptions(load({}))).toEqual({});
  });

  test('SASL_SSL with SCRAM-SHA-512, own CA, password from a file', () => {
    const s = load({
      KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      KAFKA_SSL_CA_FILE: '/ca.pem',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'augmenter',
      KAFKA_SASL_PASSWORD_FILE: '/pw',
    });
    expect(s).toEqual({
      protocol: 'SASL_SSL',
      tls: { ca: CERT },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'augmenter', password: 'from-a-file' },
    });
    expect(kafkaClientOptions(s)).toEqual({
      ssl: { rejectUnauthorized: true, ca: [CERT] },
      sasl: { mechanism: 'scram-sha-512', username: 'augmenter', password: 'from-a-file' },
    });
    expect(JSON.stringify(describeKafkaSecurity(s))).not.toContain('from-a-file');
  });

  test('SSL with public CAs and a client certificate (mutual TLS), no SASL', () => {
    const s = load({
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CERT_FILE: '/client.pem',
      KAFKA_SSL_KEY_FILE: '/client.key',
      KAFKA_SSL_KEY_PASSWORD: 'kp',
    });
    expect(kafkaClientOptions(s)).toEqual({ ssl: { rejectUnauthorized: true, cert: CERT, key: KEY, passphrase: 'kp' } });
  });

  test('SASL/PLAIN over TLS (Confluent Cloud API key)', () => {
    const o = kafkaClientOptions(
      load({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'KEY', KAFKA_SASL_PASSWORD: 'SECRET' }),
    );
    expect(o).toEqual({ ssl: { rejectUnauthorized: true }, sasl: { mechanism: 'plain', username: 'KEY', password: 'SECRET' } });
  });

  test.each([
    [{ KAFKA_SECURITY_PROTOCOL: 'TLS' }, /KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got "TLS"/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, /KAFKA_SASL_MECHANISM is required/],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'GSSAPI' },
      /KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, got "GSSAPI"/,
    ],
    [{ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512' }, /KAFKA_SASL_USERNAME is required/],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u' },
      /KAFKA_SASL_PASSWORD \(or KAFKA_SASL_PASSWORD_FILE\) is required/,
    ],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: '/nope' },
      /KAFKA_SASL_PASSWORD_FILE points to "\/nope", which cannot be read/,
    ],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD_FILE: '/empty' },
      /KAFKA_SASL_PASSWORD_FILE points to "\/empty", which is empty/,
    ],
    [{ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: '/missing.pem' }, /KAFKA_SSL_CA_FILE points to "\/missing.pem", which cannot be read/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_FILE: '/junk' }, /KAFKA_SSL_CA_FILE points to "\/junk", which holds no PEM certificate/],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_KEY_FILE: '/ca.pem', KAFKA_SSL_CERT_FILE: '/client.pem' },
      /KAFKA_SSL_KEY_FILE points to "\/ca.pem", which holds no PEM private key/,
    ],
    [{ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERT_FILE: '/client.pem' }, /KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_KEY_PASSWORD: 'x' }, /KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_KEY_FILE/],
    [{ KAFKA_SSL_CA_FILE: '/ca.pem' }, /KAFKA_SSL_CA_FILE set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT/],
    [{ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SASL_MECHANISM: 'PLAIN' }, /KAFKA_SASL_MECHANISM set but KAFKA_SECURITY_PROTOCOL is SSL/],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' },
      /PLAIN over KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT sends the password in clear text/,
    ],
    [
      {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        KAFKA_SASL_OAUTH_CLIENT_ID: 'c',
        KAFKA_SASL_OAUTH_CLIENT_SECRET: 's',
      },
      /KAFKA_SASL_OAUTH_TOKEN_URL is required/,
    ],
    [
      {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        KAFKA_SASL_OAUTH_TOKEN_URL: 'idp.example/token',
        KAFKA_SASL_OAUTH_CLIENT_ID: 'c',
        KAFKA_SASL_OAUTH_CLIENT_SECRET: 's',
      },
      /KAFKA_SASL_OAUTH_TOKEN_URL must be a URL/,
    ],
  ])('refuses %j, naming the variable', (env, message) => {
    expect(refused(env as Record<string, string>)).toMatch(message);
  });

  test('a secret never appears in an error message', () => {
    const msg = refused({
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'hunter2-secret',
    });
    expect(msg).not.toContain('hunter2-secret');
  });

  test('kafkaFromEnv splits and trims the bootstrap list', () => {
    expect(kafkaFromEnv({ KAFKA_BOOTSTRAP_SERVERS: ' b1:9094, b2:9094 ,' }, readFile)).toEqual({
      brokers: ['b1:9094', 'b2:9094'],
      security: { protocol: 'PLAINTEXT' },
    });
  });
});

describe('OAUTHBEARER client-credentials provider', () => {
  const settings = { tokenUrl: 'https://idp.example/oauth2/token', clientId: 'welcome augmenter', clientSecret: 's3cret', scope: 'kafka' };

  test('asks the token endpoint with client credentials and reuses the token until a minute before expiry', async () => {
    const calls: { url: string; headers: Record<string, string>; body: string }[] = [];
    let n = 0;
    const fetchImpl: FetchLike = async (url, init) => {
      calls.push({ url, headers: init.headers, body: init.body });
      n++;
      return { ok: true, status: 200, text: async () => JSON.stringify({ access_token: `tok${n}`, expires_in: 120, token_type: 'Bearer' }) };
    };
    let now = 1_000_000;
    const provider = clientCredentialsProvider(settings, fetchImpl, () => now);
    expect(await provider()).toEqual({ value: 'tok1' });
    now += 59_000;
    expect(await provider()).toEqual({ value: 'tok1' });
    now += 2_000; // 61 s: inside the last minute of a 120-s token
    expect(await provider()).toEqual({ value: 'tok2' });
    expect(calls).toHaveLength(2);
    expect(calls[0]?.url).toBe(settings.tokenUrl);
    expect(new URLSearchParams(calls[0]?.body)).toEqual(new URLSearchParams({ grant_type: 'client_credentials', scope: 'kafka' }));
    expect(calls[0]?.headers.authorization).toBe(`Basic ${Buffer.from('welcome%20augmenter:s3cret').toString('base64')}`);
  });

  test('a refusal names the endpoint and its answer; a missing token is an error', async () => {
    const deny: FetchLike = async () => ({ ok: false, status: 401, text: async () => '{"error":"invalid_client"}' });
    await expect(clientCredentialsProvider(settings, deny)()).rejects.toThrow(
      'OAuth token endpoint https://idp.example/oauth2/token answered 401: {"error":"invalid_client"}',
    );
    const empty: FetchLike = async () => ({ ok: true, status: 200, text: async () => '{}' });
    await expect(clientCredentialsProvider(settings, empty)()).rejects.toThrow(/answered without access_token/);
  });

  test('the kafkajs options carry the provider', async () => {
    const s = load({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
      KAFKA_SASL_OAUTH_TOKEN_URL: 'https://idp.example/t',
      KAFKA_SASL_OAUTH_CLIENT_ID: 'c',
      KAFKA_SASL_OAUTH_CLIENT_SECRET_FILE: '/pw',
    });
    expect(s.sasl).toEqual({ mechanism: 'OAUTHBEARER', tokenUrl: 'https://idp.example/t', clientId: 'c', clientSecret: 'from-a-file' });
    const fetchImpl: FetchLike = async () => ({ ok: true, status: 200, text: async () => '{"access_token":"abc","expires_in":3600}' });
    const o = kafkaClientOptions(s, fetchImpl);
    expect(o.sasl?.mechanism).toBe('oauthbearer');
    await expect((o.sasl as { oauthBearerProvider: () => Promise<{ value: string }> }).oauthBearerProvider()).resolves.toEqual({ value: 'abc' });
  });
});
