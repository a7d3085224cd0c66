import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseDocument } from 'yaml';

const root = join(__dirname, '..', '..', '..');
const overrideText = readFileSync(join(root, 'deploy', 'compose.secured.yml'), 'utf8');
// `!reset` is Compose's own tag (>= 2.24); here only its value matters
const override = parse(overrideText.replace(/ !reset/g, '')) as { services: Record<string, { environment?: Record<string, unknown> }> };
const base = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, unknown> };
const example = readFileSync(join(root, 'deploy', 'secured.env.example'), 'utf8');
const exampleVars = new Map(
  example
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

test('the override only touches services of docker-compose.yml', () => {
  for (const name of Object.keys(override.services)) expect({ name, known: name in base.services }).toEqual({ name, known: true });
});

test('every variable the override reads is in deploy/secured.env.example', () => {
  const used = new Set([...overrideText.matchAll(/\$\{([A-Z_]+)[:}]/g)].map((m) => m[1] as string));
  for (const name of used) expect({ name, documented: exampleVars.has(name) }).toEqual({ name, documented: true });
});

test('the example carries no secret values, and the consumers read their Kafka passwords from files', () => {
  for (const [name, value] of exampleVars) if (/PASSWORD$|TOKEN$|JAAS|CLIENT_SECRET/.test(name)) expect({ name, value }).toEqual({ name, value: '' });
  for (const stage of ['augmenter', 'emailer']) {
    expect(override.services[stage]?.environment?.KAFKA_SASL_PASSWORD_FILE).toMatch(/^\/run\/welcome-secrets\//);
    expect(override.services[stage]?.environment?.KAFKA_SASL_PASSWORD).toBeUndefined();
  }
});

describe('every service that reaches Kafka, the registry or MySQL is pointed at the secured ones', () => {
  const doc = parseDocument(overrideText, { merge: true });
  const merged = doc.toJS() as { services: Record<string, { environment?: Record<string, string> }> };
  const baseServices = base.services as Record<
    string,
    { environment?: Record<string, unknown>; depends_on?: Record<string, unknown>; profiles?: string[] }
  >;
  const external = ['kafka', 'registry', 'mysql'];
  const running = Object.entries(baseServices).filter(([name]) => !external.includes(name));

  test.each(running.filter(([, s]) => Object.keys(s.depends_on ?? {}).some((d) => external.includes(d))).map(([n]) => n))(
    '%s no longer waits for a local kafka/registry/mysql (depends_on: !reset)',
    (name) => {
      const node = doc.getIn(['services', name, 'depends_on'], true) as { tag?: string } | undefined;
      expect({ name, tag: node?.tag }).toEqual({ name, tag: '!reset' });
      const left = Object.keys((merged.services[name] as { depends_on?: Record<string, unknown> } | undefined)?.depends_on ?? {});
      expect(left.filter((d) => external.includes(d))).toEqual([]);
    },
  );

  test.each(running.filter(([, s]) => s.environment?.KAFKA_BOOTSTRAP_SERVERS !== undefined).map(([n]) => n))(
    '%s logs in to the secured Kafka as its own principal, password from a file',
    (name) => {
      const env = merged.services[name]?.environment ?? {};
      expect({ name, bootstrap: env.KAFKA_BOOTSTRAP_SERVERS }).toEqual({
        name,
        bootstrap: '${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS}',
      });
      if (name === 'connect') expect(env.CONNECT_SASL_JAAS_CONFIG).toMatch(/^\$\{CONNECT_KAFKA_SASL_JAAS_CONFIG/);
      else {
        expect({ name, protocol: env.KAFKA_SECURITY_PROTOCOL }).toEqual({ name, protocol: '${KAFKA_SECURITY_PROTOCOL:-SASL_SSL}' });
        expect({ name, user: env.KAFKA_SASL_USERNAME }).toEqual({
          name,
          user: expect.stringMatching(/^\$\{[A-Z]+_KAFKA_USER:-[a-z]+\}$/) as unknown,
        });
        expect({ name, file: env.KAFKA_SASL_PASSWORD_FILE }).toEqual({
          name,
          file: expect.stringMatching(/^\/run\/welcome-secrets\/[a-z]+-kafka-password$/) as unknown,
        });
      }
    },
  );

  test.each(running.filter(([, s]) => s.environment?.DB_HOST !== undefined).map(([n]) => n))('%s reaches the external MySQL over TLS', (name) => {
    const env = merged.services[name]?.environment ?? {};
    expect({ name, host: env.DB_HOST, ca: env.DB_SSL_CA_FILE }).toEqual({ name, host: '${DB_HOST:?set DB_HOST}', ca: '${DB_SSL_CA_FILE:-}' });
  });
});
