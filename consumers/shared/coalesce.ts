/**
 * Merges calls that arrive while one is in flight into a single next call. The stage's
 * workers (one per partition) finish their chunks at about the same time and each wants a
 * produce and a commit; a Kafka connection answers one request at a time (the broker mutes
 * it until the response is out, and our idempotent producer allows one in flight), so N
 * workers used to wait for N round trips one after another. Coalesced they wait for at most
 * two: the one in flight, then one carrying everything that queued behind it.
 *
 * The first call goes out at once (no linger). Each caller's promise settles with the call
 * that carried its items: resolved only once they are done (durable, committed), rejected
 * with that call's error otherwise. Order is kept: items go out in the order they came.
 */
export function createCoalescer<T>(run: (items: T[]) => Promise<void>): (items: T[]) => Promise<void> {
  let queue: { items: T[]; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let running = false;

  async function drain(): Promise<void> {
    running = true;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        await run(batch.flatMap((b) => b.items));
        batch.forEach((b) => b.resolve());
      } catch (err) {
        batch.forEach((b) => b.reject(err));
      }
    }
    running = false;
  }

  return (items) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ items, resolve, reject });
      if (!running) void drain();
    });
}
