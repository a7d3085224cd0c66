/**
 * Follows the SFMC stand-in's inspection API (GET /__standin/sends?since=ISO) and stamps
 * each bench member with the time the stand-in accepted its Welcome: the pipeline's send
 * (messageKey = welcomeMessageKey) and the baseline poller's (same key, "poller-" prefix).
 * Sends of other people's tests on the shared stack are ignored (not our messageKeys).
 */
import { POLLER_KEY_PREFIX, type BenchMember } from './inserter';
import { sleep } from './stats';

interface StandinSend {
  messageKey: string;
  receivedAt: string;
}

export class SendCollector {
  private since: number;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Accepted sends per messageKey seen by this collector (exactly-once evidence). */
  readonly acceptedTimes = new Map<string, number>();
  cdcReceived = 0;
  pollerReceived = 0;
  lastError: string | undefined;

  constructor(
    private readonly baseUrl: string,
    private readonly members: Map<string, BenchMember>,
    startMs: number,
  ) {
    this.since = startMs;
  }

  start(everyMs: number): this {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.pollOnce().catch((err: unknown) => (this.lastError = String(err)));
        await sleep(everyMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.pollOnce().catch(() => undefined);
  }

  async pollOnce(): Promise<void> {
    const res = await fetch(`${this.baseUrl}/__standin/sends?since=${encodeURIComponent(new Date(this.since).toISOString())}`, {
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`GET /__standin/sends answered ${res.status}`);
    const sends = (await res.json()) as StandinSend[];
    for (const s of sends) {
      const at = Date.parse(s.receivedAt);
      if (at > this.since) this.since = at; // inclusive `since`: the next poll re-reads this ms, deduped below
      const poller = s.messageKey.startsWith(POLLER_KEY_PREFIX);
      const m = this.members.get(poller ? s.messageKey.slice(POLLER_KEY_PREFIX.length) : s.messageKey);
      if (!m) continue;
      if (poller) {
        if (m.pollerAt === undefined) this.pollerReceived++;
        m.pollerAt ??= at;
      } else {
        if (m.cdcAt === undefined) this.cdcReceived++;
        m.cdcAt ??= at;
      }
      this.acceptedTimes.set(s.messageKey, at);
    }
  }
}
