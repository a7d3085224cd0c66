import { randomBytes } from 'node:crypto';
import { Column, FileLog, MemoryLog, type SendLog } from './send-log';

/**
 * Everything the SFMC stand-in remembers: issued tokens, accepted sends (the 109110 dedup
 * memory, optionally persisted as JSON lines so it survives a restart), injected faults and
 * counters. No I/O besides the data file, so the HTTP layer stays thin.
 *
 * Memory stays small however many sends it accepts: the sends themselves live in the send log
 * (send-log.ts: the data file, or an array of lines without one); memory holds one Map entry
 * per messageKey (→ its latest log entry) and 8 bytes per entry for its time received —
 * about 150 bytes per send — which is what the dedup check and `?since=` need. A status lookup
 * reads its one line back; a listing streams lines from the first entry it needs.
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

/**
 * One recipient of one send POST as it reached the stand-in, whatever became of it (issue 21):
 * the accepted-sends list keeps one entry per messageKey and a repeat is answered 109110, so
 * only this record shows a member POSTed twice, or an address given two different messageKeys.
 */
export interface SendAttempt {
  /** ISO-8601, UTC: when the request's body had been read. */
  at: string;
  messageKey: string;
  contactKey: string;
  to: string;
  definitionKey: string;
  /** attributes.MemberId when the sender put one there (the emailer does): tests select by it. */
  memberId?: string;
  /** accepted | 109110 (a repeated key) | rejected:<errorcode> | 429 | 5xx:<status> | dropped | unauthorized | answer:<status> (an example-answer fault) */
  outcome: string;
}

/** The attempts grouped as the accounting reads them. */
export interface AttemptsView {
  /** messageKey → every POST of it, in the order received. */
  byMessageKey: Record<string, SendAttempt[]>;
  /** Recipient address (lower-cased) → every messageKey POSTed to it, each once, in order. */
  byAddress: Record<string, string[]>;
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
  /** held: send requests held open by the holdSends fault (faults.ts). */
  injected: { latency: number; fail429: number; fail5xx: number; dropConnections: number; expireTokens: number; held: number };
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
    injected: { latency: 0, fail429: 0, fail5xx: 0, dropConnections: 0, expireTokens: 0, held: 0 },
  };
}

export class SfmcStandinState {
  readonly definitionKeys: ReadonlySet<string>;
  faults: FaultSettings = { ...DEFAULT_FAULTS };
  stats: StandinStats = emptyStats();
  private readonly tokens = new Map<string, { expiresAt: number; accountId?: number }>();
  /** messageKey → log entry of its latest accepted send. */
  private readonly latest = new Map<string, number>();
  /** Time received (epoch ms) per log entry. */
  private readonly receivedAt = new Column();
  /** Entries a later send of the same key replaced (or that are not sends): never listed. */
  private readonly superseded = new Set<number>();
  /** Entries before this one were cleared (DELETE /__standin/sends). */
  private firstListed = 0;
  /** True while times received never went backwards (an injected clock may): binary search. */
  private inOrder = true;
  /** Lines of the current request, written in one append by commit() before it is answered. */
  private pending: string[] = [];
  private readonly log: SendLog;
  /**
   * Every send attempt, one JSON line per recipient of each POST (a file next to the data
   * file, kept across restarts like it): on disk, not in memory, so a bench's ~270,000 sends
   * cost the stand-in nothing but bytes; only the times are held, for `since` lookups.
   */
  private readonly attempts: SendLog;
  private readonly attemptAt = new Column();

  constructor(readonly options: StandinStateOptions) {
    this.definitionKeys = new Set(options.definitionKeys);
    this.log = options.dataFile ? new FileLog(options.dataFile, (entry, line) => this.indexLine(entry, line)) : new MemoryLog();
    this.attempts = options.dataFile ? new FileLog(attemptsFileOf(options.dataFile), (_entry, line) => this.indexAttempt(line)) : new MemoryLog();
  }

  /** Sends currently remembered (one per messageKey). */
  get sendCount(): number {
    return this.latest.size;
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

  /** True when a send with this key was accepted inside the dedup window (→ 109110). */
  sentRecently(messageKey: string): boolean {
    const entry = this.latest.get(messageKey);
    return entry !== undefined && this.now() - this.receivedAt.at(entry) < this.options.dedupWindowMs;
  }

  /** Latest accepted send with this key, regardless of the window (status lookups). */
  find(messageKey: string): AcceptedSend | undefined {
    const entry = this.latest.get(messageKey);
    if (entry === undefined) return undefined;
    this.commit();
    for (const line of this.lines(entry, entry + 1)) return JSON.parse(line) as AcceptedSend;
    return undefined;
  }

  /**
   * Counts the send as accepted at once (a later recipient of the same request sees its key);
   * its line reaches the log in commit(), which the handler calls before it answers 202.
   */
  accept(send: AcceptedSend): void {
    const entry = this.log.length + this.pending.length;
    this.pending.push(JSON.stringify(send));
    this.index(entry, send.messageKey, Date.parse(send.receivedAt));
    this.stats.accepted++;
  }

  /** One write for every send of the request: durable (page cache) before the answer leaves. */
  commit(): void {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.log.append(lines);
  }

  /** Records the recipients of one send POST with what became of each (one write). */
  recordAttempts(attempts: readonly SendAttempt[]): void {
    if (attempts.length === 0) return;
    for (const a of attempts) this.pushAttemptTime(Date.parse(a.at));
    this.attempts.append(attempts.map((a) => JSON.stringify(a)));
  }

  /** Attempts received at or after sinceMs (all kept, without), grouped per messageKey and per address. */
  attemptsView(sinceMs?: number): AttemptsView {
    const view: AttemptsView = { byMessageKey: {}, byAddress: {} };
    for (const line of this.attempts.read(sinceMs === undefined ? 0 : this.firstAttemptAtOrAfter(sinceMs), this.attempts.length)) {
      const a = JSON.parse(line) as SendAttempt;
      if (sinceMs !== undefined && !(Date.parse(a.at) >= sinceMs)) continue;
      (view.byMessageKey[a.messageKey] ??= []).push(a);
      const keys = (view.byAddress[a.to.toLowerCase()] ??= []);
      if (!keys.includes(a.messageKey)) keys.push(a.messageKey);
    }
    return view;
  }

  countRejection(errorcode: number): void {
    const key = String(errorcode);
    this.stats.rejectedByCode[key] = (this.stats.rejectedByCode[key] ?? 0) + 1;
  }

  /** Accepted sends (latest per key) received at or after sinceMs, in the order received. */
  listSends(sinceMs?: number): AcceptedSend[] {
    return [...this.sendLines(sinceMs)].map((l) => JSON.parse(l) as AcceptedSend);
  }

  /** The same as JSON lines, read from the log as they are iterated (a listing is streamed). */
  *sendLines(sinceMs?: number): Iterable<string> {
    this.commit();
    const end = this.log.length;
    let entry = sinceMs === undefined ? this.firstListed : this.firstAtOrAfter(sinceMs);
    for (const line of this.lines(entry, end)) {
      const e = entry++;
      if (this.superseded.has(e)) continue;
      if (sinceMs !== undefined && !(this.receivedAt.at(e) >= sinceMs)) continue;
      yield line;
    }
  }

  /** Forgets sends (memory only: the data file is history, tests use a fresh file). */
  clearSends(): void {
    this.commit();
    this.latest.clear();
    this.firstListed = this.log.length;
  }

  close(): void {
    this.commit();
    this.log.close();
    this.attempts.close();
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

  private lines(from: number, to: number): Iterable<string> {
    return this.log.read(from, to);
  }

  private index(entry: number, messageKey: string, at: number): void {
    const before = this.latest.get(messageKey);
    if (before !== undefined) this.superseded.add(before);
    this.latest.set(messageKey, entry);
    const last = this.receivedAt.length > 0 ? this.receivedAt.at(this.receivedAt.length - 1) : -Infinity;
    if (at < last) this.inOrder = false;
    this.receivedAt.push(at);
  }

  /** A line of the data file at start-up. */
  private indexLine(entry: number, line: string): void {
    let send: Partial<AcceptedSend> | undefined;
    try {
      send = JSON.parse(line) as Partial<AcceptedSend>;
    } catch {
      send = undefined;
    }
    const at = typeof send?.receivedAt === 'string' ? Date.parse(send.receivedAt) : NaN;
    if (typeof send?.messageKey === 'string' && !Number.isNaN(at)) return this.index(entry, send.messageKey, at);
    // Not a send (a blank line): keeps its entry number, never listed, and the time before it
    // (so the times stay in order for the binary search).
    this.superseded.add(entry);
    this.receivedAt.push(this.receivedAt.length > 0 ? this.receivedAt.at(this.receivedAt.length - 1) : 0);
  }

  /** A line of the attempts file at start-up: only its time is held (a torn or blank line counts as the last time). */
  private indexAttempt(line: string): void {
    let at = NaN;
    try {
      at = Date.parse((JSON.parse(line) as Partial<SendAttempt>).at ?? '');
    } catch {
      at = NaN;
    }
    this.pushAttemptTime(at);
  }

  /** Times kept non-decreasing (an injected clock may go back), so the binary search stays valid; the listing re-checks each line's own time. */
  private pushAttemptTime(at: number): void {
    const last = this.attemptAt.length > 0 ? this.attemptAt.at(this.attemptAt.length - 1) : 0;
    this.attemptAt.push(Number.isNaN(at) ? last : Math.max(last, at));
  }

  private firstAttemptAtOrAfter(ms: number): number {
    let lo = 0;
    let hi = this.attemptAt.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.attemptAt.at(mid) >= ms) hi = mid;
      else lo = mid + 1;
    }
    // a raised time is never below the line's own: a line skipped here was received before `ms`
    return lo;
  }

  /** First listed entry received at or after `ms` (binary search while times are in order). */
  private firstAtOrAfter(ms: number): number {
    let lo = this.firstListed;
    if (!this.inOrder) return lo;
    let hi = this.receivedAt.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.receivedAt.at(mid);
      if (at >= ms) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** The attempts file beside the sends file: sends.jsonl → sends.attempts.jsonl. */
export function attemptsFileOf(dataFile: string): string {
  return dataFile.endsWith('.jsonl') ? `${dataFile.slice(0, -'.jsonl'.length)}.attempts.jsonl` : `${dataFile}.attempts`;
}
