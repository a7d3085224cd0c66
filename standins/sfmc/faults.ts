/**
 * Send faults of the SFMC stand-in that are not in state.ts's FaultSettings (kept apart so the
 * delivery-status work on state/handlers and this fault work do not meet):
 * - holdSends / holdMs: the next N send requests are held open for holdMs before they are
 *   processed and answered — like an SFMC that takes longer than the caller waits. The send is
 *   still accepted after the hold (the client may have given up meanwhile), as a real server
 *   would do with a request it already received: the retry must then meet 109110, not a second email.
 */
export interface HoldFaults {
  holdSends: number;
  holdMs: number;
}

export const NO_HOLD: Readonly<HoldFaults> = Object.freeze({ holdSends: 0, holdMs: 0 });

const HOLD_KEYS = ['holdSends', 'holdMs'] as const;

/** Takes this module's keys out of a fault patch; throws a message for an invalid value. */
export function splitHoldPatch(body: unknown): { hold: Partial<HoldFaults>; rest: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { hold: {}, rest: body };
  const rest: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const hold: Partial<HoldFaults> = {};
  for (const key of HOLD_KEYS) {
    if (!(key in rest)) continue;
    const value = rest[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new Error(`${key} must be a non-negative integer`);
    hold[key] = value;
    delete rest[key];
  }
  return { hold, rest };
}

/** Consumes one held send; the milliseconds to hold this request (0: none). */
export function takeHold(faults: HoldFaults): number {
  if (faults.holdSends <= 0 || faults.holdMs <= 0) return 0;
  faults.holdSends -= 1;
  return faults.holdMs;
}
