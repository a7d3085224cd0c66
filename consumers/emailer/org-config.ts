/**
 * Per-organization Welcome settings from a JSON file (WELCOME_ORGS_FILE):
 *   { "UA": { "definitionKey": "welcome-ua", "enabled": true, "maxAgeSeconds": 86400,
 *             "maxPerMinute": 600, "maxPerTransaction": 20 }, ... }
 * maxAgeSeconds (age guard): a row whose created_at is older than this at its commit time is
 * not a signup (restore, back-dated import) and gets no Welcome. maxPerMinute (breaker): new
 * members above this many in a sliding minute, across all replicas, are held on welcome.held
 * until an operator releases them. maxPerTransaction (import guard): the rows of one
 * transaction past this many are an import, held the same way. All optional (absent: no
 * guard; the shipped file sets each, sized in docs/operations.md). Validated once at start;
 * an invalid file stops the process with the reason.
 */
import { ConfigError } from '../shared/errors';
import { str, type Env } from '../shared/env';
import { ORG_ID } from '../shared/member';

export interface OrgWelcome {
  definitionKey: string;
  enabled: boolean;
  /** The organization's SFMC business unit (MID); absent: SFMC_ACCOUNT_ID, or the package's default BU. */
  accountId?: number;
  maxAgeSeconds?: number;
  maxPerMinute?: number;
  maxPerTransaction?: number;
}

function optionalPositiveInt(source: string, field: string, value: unknown, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${source}: ${field} must be a whole number from 1 to ${max}`);
  }
  return value;
}

export type OrgConfig = ReadonlyMap<string, OrgWelcome>;

export function parseOrgConfig(text: string, source: string): OrgConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`, err);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${source}: expected an object of organizations, e.g. {"UA": {"definitionKey": "welcome-ua", "enabled": true}}`);
  }
  const orgs = new Map<string, OrgWelcome>();
  for (const [orgId, value] of Object.entries(parsed)) {
    if (!ORG_ID.test(orgId)) throw new ConfigError(`${source}: organization id "${orgId}" is not 1-16 letters, digits or _`);
    const v = value as Partial<OrgWelcome> | null;
    if (typeof v !== 'object' || v === null) throw new ConfigError(`${source}: ${orgId} must be an object`);
    if (typeof v.definitionKey !== 'string' || v.definitionKey.trim() === '' || v.definitionKey.length > 100) {
      throw new ConfigError(`${source}: ${orgId}.definitionKey must be a non-empty string of at most 100 characters`);
    }
    if (typeof v.enabled !== 'boolean') throw new ConfigError(`${source}: ${orgId}.enabled must be true or false`);
    const known = new Set(['definitionKey', 'enabled', 'accountId', 'maxAgeSeconds', 'maxPerMinute', 'maxPerTransaction']);
    const unknown = Object.keys(v).filter((k) => !known.has(k));
    // A misspelt guard (maxPerMinutes) would silently be no guard at all.
    if (unknown.length > 0)
      throw new ConfigError(`${source}: ${orgId} has unknown setting(s) ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
    const account: unknown = v.accountId;
    const accountId = typeof account === 'string' && /^\d+$/.test(account) ? Number(account) : account;
    if (accountId !== undefined && (typeof accountId !== 'number' || !Number.isSafeInteger(accountId) || accountId <= 0)) {
      throw new ConfigError(`${source}: ${orgId}.accountId must be the business unit's MID, a positive integer`);
    }
    const maxAgeSeconds = optionalPositiveInt(source, `${orgId}.maxAgeSeconds`, v.maxAgeSeconds, 10 * 365 * 86_400);
    const maxPerMinute = optionalPositiveInt(source, `${orgId}.maxPerMinute`, v.maxPerMinute, 1_000_000);
    const maxPerTransaction = optionalPositiveInt(source, `${orgId}.maxPerTransaction`, v.maxPerTransaction, 1_000_000);
    orgs.set(orgId, {
      definitionKey: v.definitionKey,
      enabled: v.enabled,
      ...(accountId !== undefined ? { accountId } : {}),
      ...(maxAgeSeconds !== undefined ? { maxAgeSeconds } : {}),
      ...(maxPerMinute !== undefined ? { maxPerMinute } : {}),
      ...(maxPerTransaction !== undefined ? { maxPerTransaction } : {}),
    });
  }
  if (orgs.size === 0) throw new ConfigError(`${source}: no organizations configured`);
  return orgs;
}

/** WELCOME_ORGS_FILE, read and validated: the emailer and the delivery-status stage share it. */
export function readOrgConfig(env: Env, readFile: (p: string) => string): OrgConfig {
  const file = str(env, 'WELCOME_ORGS_FILE', 'config/welcome-orgs.json');
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    throw new ConfigError(`WELCOME_ORGS_FILE: cannot read "${file}"`, err);
  }
  return parseOrgConfig(text, file);
}
