/**
 * SFMC's status answer for one Welcome → the WelcomeDeliveryStatus record, and when to ask
 * again. Pure functions over plain objects.
 *
 * SFMC keeps a message's status for 3 days; a message still EmailQueued (or not visible yet)
 * when that window closes is recorded as `unknown`, which is final for us.
 */
import type { SfmcMessageStatus } from '../shared/sfmc-client';

export type DeliveryStatus = 'EmailQueued' | 'EmailSent' | 'EmailNotSent' | 'unknown';
export const FINAL_STATUSES: readonly DeliveryStatus[] = ['EmailSent', 'EmailNotSent', 'unknown'];
export const STATUS_WINDOW_MS = 3 * 24 * 3600_000;

/** The WelcomeSent fields this stage needs (schemas/welcome-sent.avsc). */
export interface SentWelcome {
  org_id: string;
  org_member_id: string;
  message_key: string;
  sent_at: number;
}

export interface Recheck {
  /** First re-check after this long; doubles per check up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface DeliveryStatusRecord {
  org_id: string;
  org_member_id: string;
  message_key: string;
  status: DeliveryStatus;
  status_code: number | null;
  status_message: string | null;
  event_at: number | null;
  sent_at: number;
  checks: number;
  checked_at: number;
  next_check_at: number | null;
}

/** SFMC's timestamps are US Central time without DST (UTC-6) and carry no zone; one with a zone is taken as is. */
export function sfmcTimeToUtc(value: string | undefined): number | null {
  if (!value) return null;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(value);
  const ms = Date.parse(zoned ? value : `${value}Z`);
  if (Number.isNaN(ms)) return null;
  return zoned ? ms : ms + 6 * 3600_000;
}

/** EmailQueued (or unknown to SFMC yet) → ask again later; final statuses are kept as they are. */
export function classify(
  answer: SfmcMessageStatus | undefined,
  sentAt: number,
  now: number,
): Pick<DeliveryStatusRecord, 'status' | 'status_code' | 'status_message' | 'event_at'> {
  const type = answer?.eventCategoryType ?? '';
  const event_at = sfmcTimeToUtc(answer?.timestamp);
  if (type.endsWith('.EmailSent')) return { status: 'EmailSent', status_code: null, status_message: null, event_at };
  if (type.endsWith('.EmailNotSent')) {
    return {
      status: 'EmailNotSent',
      status_code: answer?.statusCode ?? null,
      status_message: answer?.statusMessage?.slice(0, 255) ?? null,
      event_at,
    };
  }
  // Queued, not visible yet (404), or a type we do not know: still open — until the window closes.
  if (now - sentAt >= STATUS_WINDOW_MS)
    return {
      status: 'unknown',
      status_code: null,
      status_message: answer ? `still ${type || 'without status'} after 3 days` : 'SFMC has no status (3-day window passed)',
      event_at,
    };
  return { status: 'EmailQueued', status_code: null, status_message: null, event_at };
}

/** Exponential re-checks, and one last check right at the end of SFMC's 3-day window. */
export function nextCheckAt(status: DeliveryStatus, checks: number, sentAt: number, now: number, recheck: Recheck): number | null {
  if (status !== 'EmailQueued') return null;
  const delay = Math.min(recheck.maxDelayMs, recheck.baseDelayMs * 2 ** Math.max(0, checks - 1));
  const windowEnd = sentAt + STATUS_WINDOW_MS;
  return now >= windowEnd ? now : Math.min(now + delay, windowEnd);
}

export function toStatusRecord(
  sent: SentWelcome,
  answer: SfmcMessageStatus | undefined,
  checks: number,
  now: number,
  recheck: Recheck,
): DeliveryStatusRecord {
  const verdict = classify(answer, sent.sent_at, now);
  return {
    org_id: sent.org_id,
    org_member_id: sent.org_member_id,
    message_key: sent.message_key,
    ...verdict,
    sent_at: sent.sent_at,
    checks,
    checked_at: now,
    next_check_at: nextCheckAt(verdict.status, checks, sent.sent_at, now, recheck),
  };
}
