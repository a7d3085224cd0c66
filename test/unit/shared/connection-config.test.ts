import { loadDbSettings, loadKafkaAndRegistry, mysqlConnection } from '../../../consumers/shared/connection-config';
import { loadEmailerConfig } from '../../../consumers/emailer/config';
import { loadDeliveryStatusConfig } from '../../../consumers/delivery-status/config';
import { ConfigError } from '../../../consumers/shared/errors';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const files: Record<string, string> = {
  '/run/ca.pem': PEM,
  '/run/not-a-cert': 'hello',
  'orgs.json': JSON.stringify({ UA: { definitionKey: 'welcome-ua', enabled: true } }),
};
const readFile = (p: string): string => {
  const text = files[p];
  if (text === undefined) throw new Error(`ENOENT: ${p}`);
  return text;
};
const user = { userVar: 'X_DB_USER', passwordVar: 'X_DB_PASSWORD', defaultUser: 'x' };
const stageEnv = {
  SFMC_AUTH_URL: 'https://mc.example.auth.marketingcloudapis.com',
  SFMC_CLIENT_ID: 'id',
  SFMC_CLIENT_SECRET: 's',
  EMAILER_DB_PASSWORD: 'p',
  DELIVERY_DB_PASSWORD: 'p',
  WELCOME_FORGET_KEY: 'a-forget-key-of-some-length',
  WELCOME_ORGS_FILE: 'orgs.json',
  DB_SSL_CA_FILE: '/run/ca.pem',
};

describe('loadKafkaAndRegistry', () => {
  it('splits and trims the bootstrap list', () => {
    expect(loadKafkaAndRegistry({ KAFKA_BOOTSTRAP_SERVERS: 'a:9092, b:9092 ,c:9092' }, readFile).kafkaBrokers).toEqual([
      'a:9092',
      'b:9092',
      'c:9092',
    ]);
  });
});

describe('loadDbSettings', () => {
  it('is plain TCP without DB_SSL_CA_FILE', () => {
    const db = loadDbSettings({ X_DB_PASSWORD: 'p' }, readFile, user);
    expect(db).toEqual({ host: '127.0.0.1', port: 3306, user: 'x', password: 'p', database: 'loyalty' });
    expect(mysqlConnection(db)).not.toHaveProperty('ssl');
  });

  it('verifies the CA and the host name by default, only the CA with verify-ca', () => {
    const full = loadDbSettings({ X_DB_PASSWORD: 'p', DB_SSL_CA_FILE: '/run/ca.pem' }, readFile, user);
    expect(full.tls).toEqual({ ca: PEM, verifyHost: true });
    expect(mysqlConnection(full).ssl).toEqual({ ca: PEM, rejectUnauthorized: true });
    const caOnly = mysqlConnection(loadDbSettings({ X_DB_PASSWORD: 'p', DB_SSL_CA_FILE: '/run/ca.pem', DB_SSL_MODE: 'verify-ca' }, readFile, user));
    expect(caOnly.ssl).toMatchObject({ ca: PEM, rejectUnauthorized: true, checkServerIdentity: expect.any(Function) });
  });

  it.each([
    [{ DB_SSL_CA_FILE: '/run/missing.pem' }, /DB_SSL_CA_FILE points to "\/run\/missing.pem", which cannot be read/],
    [{ DB_SSL_CA_FILE: '/run/not-a-cert' }, /holds no PEM certificate/],
    [{ DB_SSL_MODE: 'require' }, /DB_SSL_MODE must be verify-full or verify-ca, got "require"/],
    [{}, /X_DB_PASSWORD/],
  ])('refuses %j with a message naming the setting', (env, message) => {
    const withPassword = 'DB_SSL_CA_FILE' in env || 'DB_SSL_MODE' in env ? { X_DB_PASSWORD: 'p', ...env } : env;
    expect(() => loadDbSettings(withPassword, readFile, user)).toThrow(message);
  });
});

describe('the stages that share it', () => {
  it('the emailer and the delivery-status stage both reach the database over TLS, each as its own user', () => {
    const emailer = loadEmailerConfig(stageEnv, readFile);
    const delivery = loadDeliveryStatusConfig(stageEnv, readFile);
    expect(emailer.db).toMatchObject({ user: 'welcome_emailer', tls: { ca: PEM, verifyHost: true } });
    expect(delivery.db).toMatchObject({ user: 'welcome_delivery', tls: { ca: PEM, verifyHost: true } });
    expect(emailer.orgs.get('UA')?.definitionKey).toBe('welcome-ua');
    expect(delivery.orgs.get('UA')?.definitionKey).toBe('welcome-ua');
    expect(emailer.sfmc).toMatchObject({ clientId: 'id', timeoutMs: 5000, batchSize: 500 });
    expect(delivery.sfmc).toEqual({
      authBaseUrl: 'https://mc.example.auth.marketingcloudapis.com',
      clientId: 'id',
      clientSecret: 's',
      timeoutMs: 5000,
    });
  });

  it('an unreadable WELCOME_ORGS_FILE stops either stage with the file named', () => {
    const env = { ...stageEnv, WELCOME_ORGS_FILE: '/etc/none.json' };
    expect(() => loadEmailerConfig(env, readFile)).toThrow(ConfigError);
    expect(() => loadDeliveryStatusConfig(env, readFile)).toThrow('WELCOME_ORGS_FILE: cannot read "/etc/none.json"');
  });
});
