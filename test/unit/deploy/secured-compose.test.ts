import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

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
