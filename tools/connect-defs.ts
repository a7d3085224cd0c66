import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';

/**
 * Connector definitions as data: `connect/<name>.json` is the connector `<name>`;
 * `connect/flavours/<flavour>/<name>.json` overlays the keys that differ between the
 * production MySQL and the local MariaDB. Environment-specific values stay `${env:...}`
 * placeholders that the Connect worker resolves (EnvVarConfigProvider), so no host,
 * port or password is ever written into these files.
 */
export type ConnectorConfig = Record<string, string>;

export interface ConnectorDef {
  name: string;
  config: ConnectorConfig;
}

export const FLAVOURS = ['mariadb', 'mysql'] as const;
export type Flavour = (typeof FLAVOURS)[number];

function readFlatJson(path: string): ConnectorConfig {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${path}: a connector file is one flat JSON object`);
  }
  const config: ConnectorConfig = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') throw new Error(`${path}: "${key}" must be a string (Connect configs are strings)`);
    config[key] = value;
  }
  return config;
}

/**
 * `overlays` name folders under connect/overlays/ laid over the flavour, in order: settings
 * a deployment opts into as a whole (kafka-secured: Debezium's schema-history clients on
 * TLS/SASL, which do not inherit the worker's settings; registry-basic: converter credentials).
 */
export function loadConnectorDefs(connectDir: string, flavour: Flavour, overlays: string[] = []): ConnectorDef[] {
  if (!FLAVOURS.includes(flavour)) throw new Error(`unknown flavour "${flavour}" (one of ${FLAVOURS.join(', ')})`);
  for (const o of overlays) if (!existsSync(join(connectDir, 'overlays', o))) throw new Error(`CONNECT_OVERLAYS: no folder connect/overlays/${o}`);
  return readdirSync(connectDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const name = basename(file, '.json');
      const overlay = join(connectDir, 'flavours', flavour, file);
      const config = { ...readFlatJson(join(connectDir, file)), ...(existsSync(overlay) ? readFlatJson(overlay) : {}) };
      // an overlay may spell a setting per flavour: overlays/<o>/<file>, then overlays/<o>/<flavour>/<file>
      for (const o of overlays) {
        for (const extra of [join(connectDir, 'overlays', o, file), join(connectDir, 'overlays', o, flavour, file)]) {
          if (existsSync(extra)) Object.assign(config, readFlatJson(extra));
        }
      }
      return { name, config };
    });
}

/** Literal secrets in a connector file are a defect: every password must be a provider reference. */
export function literalSecrets(config: ConnectorConfig): string[] {
  return Object.entries(config)
    .filter(([key, value]) => /password|secret|token/i.test(key) && !/^\$\{(env|file):[^}]+\}$/.test(value))
    .map(([key]) => key);
}
