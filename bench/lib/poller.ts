/**
 * The seed system's design, as the baseline: every 20 s `SELECT ... WHERE id > lastSeenId`,
 * then the same emailing path the pipeline uses — the warehouse Subscriber Key lookup and
 * the SFMC Transactional send, with the production clients (dw-client, sfmc-client) — in
 * one process. It sends with messageKey "poller-" + welcomeMessageKey(org, member), so the
 * stand-in keeps its sends apart from the pipeline's and both paths are timed on the very
 * same rows. It reads only this run's bench rows (org_member_id prefix) so it never mails
 * other people's test members.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { createDwKeyClient, memberRef, type DwKeyClient } from '../../consumers/shared/dw-client';
import { createLogger } from '../../consumers/shared/logger';
import { createSfmcClient, welcomeMessageKey, type SfmcClient, type SfmcRecipient } from '../../consumers/shared/sfmc-client';
import { POLLER_KEY_PREFIX } from './inserter';

export interface PollerOptions {
  pool: Pool;
  intervalMs: number;
  rowPrefix: string;
  definitionKeys: Record<string, string>;
  dw: { baseUrl: string; apiToken: string };
  sfmc: { authBaseUrl: string; clientId: string; clientSecret: string };
}

interface Row extends RowDataPacket {
  id: number;
  org_id: string;
  org_member_id: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
  locale: string | null;
}

export interface RunningPoller {
  polls: number;
  sent: number;
  errors: string[];
  stop(): Promise<void>;
}

export async function startPoller(o: PollerOptions): Promise<RunningPoller> {
  const logger = createLogger('bench-poller', 'fatal');
  const retry = { attempts: 4, baseDelayMs: 100, maxDelayMs: 2_000 };
  const keys: DwKeyClient = createDwKeyClient({ ...o.dw, requestTimeoutMs: 5_000, retry, cacheSize: 0 }, { logger });
  const sfmc: SfmcClient = createSfmcClient({ ...o.sfmc, requestTimeoutMs: 10_000, retry, batchSize: 500 }, { logger });
  const [[top]] = await o.pool.query<RowDataPacket[]>('SELECT COALESCE(MAX(id), 0) AS id FROM members');
  let lastSeenId = Number(top?.['id'] ?? 0);
  const state: RunningPoller = { polls: 0, sent: 0, errors: [], stop: async () => undefined };

  async function pollOnce(): Promise<void> {
    for (;;) {
      const [rows] = await o.pool.query<Row[]>(
        'SELECT id, org_id, org_member_id, email, first_name, last_name, locale FROM members WHERE id > ? AND org_member_id LIKE ? ORDER BY id LIMIT 2000',
        [lastSeenId, `${o.rowPrefix}%`],
      );
      if (rows.length === 0) return;
      const found = await keys.lookup(rows.map((r) => ({ orgId: r.org_id, memberId: r.org_member_id })));
      const byTemplate = new Map<string, SfmcRecipient[]>();
      for (const r of rows) {
        const key = found.get(memberRef(r.org_id, r.org_member_id));
        const definitionKey = o.definitionKeys[r.org_id];
        if (!key?.ok || !definitionKey) continue;
        const recipient: SfmcRecipient = {
          contactKey: key.subscriberKey,
          to: r.email,
          messageKey: POLLER_KEY_PREFIX + welcomeMessageKey(r.org_id, r.org_member_id),
          attributes: { FirstName: r.first_name, LastName: r.last_name, Locale: r.locale, ProgramId: r.org_id, MemberId: r.org_member_id },
        };
        byTemplate.set(definitionKey, [...(byTemplate.get(definitionKey) ?? []), recipient]);
      }
      for (const [definitionKey, recipients] of byTemplate) {
        const outcomes = await sfmc.sendBatch(definitionKey, recipients);
        state.sent += outcomes.filter((x) => x.status === 'queued' || x.status === 'duplicate').length;
      }
      lastSeenId = Number(rows[rows.length - 1]?.id ?? lastSeenId);
    }
  }

  // Fixed-rate schedule (poll k at start + k·interval), like a cron-style poller.
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> = Promise.resolve();
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    const next = state.polls + 1;
    timer = setTimeout(
      () => {
        state.polls = next;
        inflight = pollOnce()
          .catch((err: unknown) => void state.errors.push(String(err)))
          .finally(schedule);
      },
      Math.max(0, started + next * o.intervalMs - Date.now()),
    );
  };
  schedule();
  state.stop = async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await inflight;
    await Promise.all([keys.close(), sfmc.close()]);
  };
  return state;
}
