/**
 * Forgotten members (`make forget`, docs/member-data.md): what stays of a member after an
 * erasure is a keyed hash of its identity in `welcome_forgotten`, never the address or the
 * program's member id. Every place that could send or re-create the member's data (the
 * emailer's lookup, the replay and release tools) hashes the member it holds with the same key
 * and asks that table. A plain hash of `org:memberId` could be reversed by hashing every member
 * id of a program (they are short and sequential); the key makes that impossible for whoever
 * reads the table without it.
 */
import { createHmac } from 'node:crypto';
import { secret, type Env } from './env';
import { ConfigError } from './errors';
import { memberKey } from './member';

export const FORGOTTEN_TABLE = 'welcome_forgotten';

/** HMAC-SHA256 of the member's key (`org:memberId`, the Kafka key of its records), hex: 64 characters. */
export function memberHash(forgetKey: string, orgId: string, orgMemberId: string): string {
  return hashOfKey(forgetKey, memberKey(orgId, orgMemberId));
}

/** The same, from a record's Kafka key as our stages write it (`org:memberId`). */
export function hashOfKey(forgetKey: string, key: string): string {
  return createHmac('sha256', forgetKey).update(key, 'utf8').digest('hex');
}

/**
 * WELCOME_FORGET_KEY (or _FILE): the same secret for the emailer, the forget tool and the
 * replay tools, or a forgotten member would not be recognized. Short keys are refused: a guessable
 * key is no better than no key.
 */
export function loadForgetKey(env: Env, readFile: (path: string) => string): string {
  const key = secret(env, 'WELCOME_FORGET_KEY', readFile);
  if (key.length < 16) throw new ConfigError('WELCOME_FORGET_KEY must be at least 16 characters (a random secret)');
  return key;
}

/** For logs: a forgotten member is named by the start of its hash only. */
export const forgottenTrace = (hash: string): string => `forgotten#${hash.slice(0, 12)}`;
