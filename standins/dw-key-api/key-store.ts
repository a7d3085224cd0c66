import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The stand-in's Subscriber Key store.
 *
 * Key rule (ours, not the warehouse's): `<orgId>-<16 base32 chars of sha256(orgId NUL memberId NUL salt)>`.
 * Salt starts at 0 and only grows when the candidate is already taken by another member, so
 * keys are deterministic in practice and unique by construction (collision check below).
 *
 * Persistence: one JSON object per line, appended before the key is handed out, reloaded on
 * start. This survives a process restart (the OS has the bytes); it does not fsync, so an OS
 * crash may lose the newest keys: acceptable for a local stand-in.
 */
export interface StoredKey {
  orgId: string;
  memberId: string;
  subscriberKey: string;
  createdAt: string;
}

/** SFMC's limit for a subscriber/contact key. */
export const MAX_SUBSCRIBER_KEY_LENGTH = 254;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const HASH_CHARS = 16; // 80 bits: collisions are theoretical, the check below makes them harmless

function toBase32(bytes: Buffer, chars: number): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1; // keep only the unread bits so the number never overflows
    if (out.length >= chars) break;
  }
  return out;
}

export function candidateKey(orgId: string, memberId: string, salt: number): string {
  const digest = createHash('sha256').update(`${orgId}\u0000${memberId}\u0000${salt}`).digest();
  return `${orgId}-${toBase32(digest, HASH_CHARS)}`;
}

const refOf = (orgId: string, memberId: string): string => `${orgId}\u0000${memberId}`;

export class KeyStore {
  private readonly byMember = new Map<string, string>();
  private readonly byKey = new Map<string, string>();

  private constructor(private readonly file: string | undefined) {}

  /** Opens (and loads) the store; with no file the keys live in memory only. */
  static open(file?: string): KeyStore {
    const store = new KeyStore(file);
    if (file) store.load(file);
    return store;
  }

  get size(): number {
    return this.byMember.size;
  }

  get(orgId: string, memberId: string): string | undefined {
    return this.byMember.get(refOf(orgId, memberId));
  }

  /**
   * Returns each member's key, creating (and persisting, in one append) the missing ones.
   * `created` counts the new keys, for the stand-in's stats.
   */
  getOrCreate(members: ReadonlyArray<{ orgId: string; memberId: string }>): { keys: string[]; created: number } {
    const fresh: StoredKey[] = [];
    const keys = members.map(({ orgId, memberId }) => {
      const known = this.get(orgId, memberId);
      if (known !== undefined) return known;
      let salt = 0;
      let key = candidateKey(orgId, memberId, salt);
      while (this.byKey.has(key)) key = candidateKey(orgId, memberId, ++salt);
      if (key.length > MAX_SUBSCRIBER_KEY_LENGTH) throw new Error(`key for org ${orgId} exceeds ${MAX_SUBSCRIBER_KEY_LENGTH} chars`);
      const record = { orgId, memberId, subscriberKey: key, createdAt: new Date().toISOString() };
      this.remember(record);
      fresh.push(record);
      return key;
    });
    if (fresh.length > 0 && this.file) {
      // Written before the response leaves, so a key a client has seen is never re-issued differently.
      fs.appendFileSync(this.file, fresh.map((r) => JSON.stringify(r) + '\n').join(''));
    }
    return { keys, created: fresh.length };
  }

  private remember(record: StoredKey): void {
    this.byMember.set(refOf(record.orgId, record.memberId), record.subscriberKey);
    this.byKey.set(record.subscriberKey, refOf(record.orgId, record.memberId));
  }

  private load(file: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!fs.existsSync(file)) return;
    let text = fs.readFileSync(file, 'utf8');
    if (text.length > 0 && !text.endsWith('\n')) {
      // A crash mid-append leaves a torn last line: drop it (its key was never answered)
      // so the next append starts on a fresh line.
      const keep = text.lastIndexOf('\n') + 1;
      fs.truncateSync(file, Buffer.byteLength(text.slice(0, keep)));
      text = text.slice(0, keep);
    }
    text.split('\n').forEach((line, index) => {
      if (line.trim() === '') return;
      const record = parseRecord(line);
      // A corrupt store must stop the stand-in: silently re-issuing keys would break stability.
      if (!record) throw new Error(`${file}:${index + 1}: not a key record`);
      const owner = this.byKey.get(record.subscriberKey);
      if (owner !== undefined && owner !== refOf(record.orgId, record.memberId)) {
        throw new Error(`${file}:${index + 1}: key ${record.subscriberKey} already belongs to another member`);
      }
      if (this.get(record.orgId, record.memberId) === undefined) this.remember(record);
    });
  }
}

function parseRecord(line: string): StoredKey | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null) return undefined;
    const { orgId, memberId, subscriberKey, createdAt } = value as Record<string, unknown>;
    if (typeof orgId !== 'string' || typeof memberId !== 'string' || typeof subscriberKey !== 'string') return undefined;
    return { orgId, memberId, subscriberKey, createdAt: typeof createdAt === 'string' ? createdAt : '' };
  } catch {
    return undefined;
  }
}
