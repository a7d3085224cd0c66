/**
 * The ordering rule for concurrent SFMC requests, pure. A chunk's Welcomes are grouped into one
 * request per (business unit, send definition); the group key comes from the member's
 * organization, so every record of one member lands in the same group, in record order, and
 * its requests never race each other. Distinct groups hold distinct members, so they may be
 * in flight at once: at most `limit` of them. Every group's promise settles before the
 * caller returns, so a chunk is committed only after all of its sends are answered (accepted,
 * rejected or failed); a group that throws fails only its own members (the caller catches).
 */

/** Groups items by key, in first-seen order; items keep their order inside a group. */
export function groupInOrder<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = keyOf(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}

/**
 * Runs `task` for every item, at most `limit` at once, and waits for all of them, even when
 * one rejects (an early return would leave sends in flight while the chunk is retried or
 * committed); then rethrows the first rejection in item order.
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const results: PromiseSettledResult<void>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i] as T).then(
        (): PromiseSettledResult<void> => ({ status: 'fulfilled', value: undefined }),
        (reason: unknown): PromiseSettledResult<void> => ({ status: 'rejected', reason }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
