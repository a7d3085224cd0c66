import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Everything the SFMC stand-in remembers: issued tokens, accepted sends (the 109110 dedup
 * memory, optionally persisted as JSON lines so it survives a restart), injected faults and
 * counters. No I/O besides the data file, so the HTTP layer stays thin.
 */

export interface AcceptedSend {
  messageKey: string;
  contactKey: string;
  to: string;
  definitionKey: string;
  attributes: Record<string, unknown>;
  /** ISO-8601, UTC. */
  receivedAt: string;
  requestId: string;
  /** Business unit (MID) of the token that sent it, when the token request named one. */
  accountId?: number;
}

/** Why SFMC did not send an accepted message (status EmailNotSent), per address. */
export interface NotSentReason {
  statusCode: number;
  statusMessage: string;
}

/** SFMC reports delivery status for messages up to 3 days old; after that GET answers 404. */
export const STATUS_WINDOW_MS = 3 * 24 * 3600_000;

export interface FaultSettings {
  /** Added before answering every SFMC call (token, send, status). */
  latencyMs: number;
  /** The next N send requests answer 429. */
  fail429: number;
  /** 50100 (with Retry-After) or 50200 ("temporarily blocked", no Retry-After). */
  throttleCode: 50100 | 50200;
  /** The next N send requests answer fail5xxStatus with errorcode 50300. */
  fail5xx: number;
  /** 503 carries Retry-After, like SFMC; 500/502/504 do not. */
  fail5xxStatus: number;
  /** Seconds announced in Retry-After (and `retryAfter` in the body). */
  retryAfterS: number;
  /** The next N send requests get their socket destroyed without an answer. */
  dropConnections: number;
}

export const DEFAULT_FAULTS: Readonly<FaultSettings> = {
  latencyMs: 0,
  fail429: 0,
  throttleCode: 50100,
  fail5xx: 0,
  fail5xxStatus: 503,
  retryAfterS: 1,
  dropConnections: 0,
};

export interface StandinStats {
  tokenRequests: number;
  sendRequests: number;
  statusRequests: number;
  accepted: number;
  unauthorized: number;
  rejectedByCode: Record<string, number>;
  injected: { latency: number; fail429: number; fail5xx: number; dropConnections: number; expireTokens: number };
}

export interface StandinStateOptions {
  clientId: string;
  clientSecret: string;
  definitionKeys: readonly string[];
  tokenTtlS: number;
  /** SFMC rejects a messageKey reused within this window (documented as 2 days, some say 72 h). */
  dedupWindowMs: number;
  dataFile?: string;
  now: () => number;
  /**
   * Addresses SFMC accepts (202) but then does not send to: `address` or `@domain` (any
   * address of that domain), lower-cased → the EmailNotSent reason its status reports.
   */
  notSent?: ReadonlyMap<string, NotSentReason>;
  /** How long an accepted message stays EmailQueued before its final status. */
  queuedMs?: number;
}

function emptyStats(): StandinStats {
  return {
    tokenRequests: 0,
    sendRequests: 0,
    statusRequests: 0,
    accepted: 0,
    unauthorized: 0,
    rejectedByCode: {},
    injected: { latency: 0, fail429: 0, fail5xx: 0, dropConnections: 0, expireTokens: 0 },
  };
}

export class SfmcStandinState {
  readonly definitionKeys: ReadonlySet<string>;
  faults: FaultSettings = { ...DEFAULT_FAULTS };
  stats: StandinStats = emptyStats();
  private readonly tokens = new Map<string, { expiresAt: number; accountId?: number }>();
  private readonly sends = new Map<string, AcceptedSend>();

  constructor(readonly options: StandinStateOptions) {
    this.definitionKeys = new Set(options.definitionKeys);
    if (options.dataFile) {
      mkdirSync(dirname(options.dataFile), { recursive: true });
      this.load(options.dataFile);
    }
  }

  now(): number {
    return this.options.now();
  }

  checkCredentials(clientId: unknown, clientSecret: unknown): boolean {
    return clientId === this.options.clientId && clientSecret === this.options.clientSecret;
  }

  issueToken(accountId?: number): { token: string; expiresInS: number } {
    const token = randomBytes(48).toString('base64url');
    this.tokens.set(token, { expiresAt: this.now() + this.options.tokenTtlS * 1000, ...(accountId !== undefined ? { accountId } : {}) });
    return { token, expiresInS: this.options.tokenTtlS };
  }

  isTokenValid(token: string): boolean {
    const issued = this.tokens.get(token);
    if (issued === undefined) return false;
    if (this.now() < issued.expiresAt) return true;
    this.tokens.delete(token);
    return false;
  }

  /** The business unit a (valid) token was issued for. */
  tokenAccount(token: string): number | undefined {
    return this.tokens.get(token)?.accountId;
  }

  /** EmailNotSent reason configured for this address (exact, or its @domain), if any. */
  notSentReason(to: string): NotSentReason | undefined {
    const address = to.toLowerCase();
    const list = this.options.notSent;
    return list?.get(address) ?? list?.get(address.slice(address.lastIndexOf('@')));
  }

  expireAllTokens(): void {
    this.tokens.clear();
    this.stats.injected.expireTokens++;
  }

  /** A send with this key accepted inside the dedup window, if any. */
  findRecent(messageKey: string): AcceptedSend | undefined {
    const send = this.sends.get(messageKey);
    if (!send) return undefined;
    return this.now() - Date.parse(send.receivedAt) < this.options.dedupWindowMs ? send : undefined;
  }

  /** Latest accepted send with this key, regardless of the window (status lookups). */
  find(messageKey: string): AcceptedSend | undefined {
    return this.sends.get(messageKey);
  }

  accept(send: AcceptedSend): void {
    // Delete first so Map order stays "order received" when a key is re-sent after the window.
    // Synchronous append first: the send is durable before it counts (and before we answer 202).
    if (this.options.dataFile) appendFileSync(this.options.dataFile, `${JSON.stringify(send)}\n`);
    this.sends.delete(send.messageKey);
    this.sends.set(send.messageKey, send);
    this.stats.accepted++;
  }

  countRejection(errorcode: number): void {
    const key = String(errorcode);
    this.stats.rejectedByCode[key] = (this.stats.rejectedByCode[key] ?? 0) + 1;
  }

  listSends(sinceMs?: number): AcceptedSend[] {
    const all = [...this.sends.values()];
    return sinceMs === undefined ? all : all.filter((s) => Date.parse(s.receivedAt) >= sinceMs);
  }

  /** Forgets sends (memory only: the data file is history, tests use a fresh file). */
  clearSends(): void {
    this.sends.clear();
  }

  resetStats(): void {
    this.stats = emptyStats();
  }

  setFaults(patch: Partial<FaultSettings>): void {
    this.faults = { ...this.faults, ...patch };
  }

  resetFaults(): void {
    this.faults = { ...DEFAULT_FAULTS };
  }

  /** Takes one unit from a countdown fault; true when this request must suffer it. */
  takeFault(name: 'fail429' | 'fail5xx' | 'dropConnections'): boolean {
    if (this.faults[name] <= 0) return false;
    this.faults[name]--;
    this.stats.injected[name]++;
    return true;
  }

  private load(file: string): void {
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const send = JSON.parse(line) as AcceptedSend;
        if (typeof send.messageKey === 'string' && typeof send.receivedAt === 'string') {
          this.sends.delete(send.messageKey);
          this.sends.set(send.messageKey, send);
        }
      } catch {
        // A line torn by a crash mid-write: the send was never acknowledged, so skipping it is right.
      }
    }
  }
}
