import { createCoalescer } from '../../../consumers/shared/coalesce';

/** A call we finish by hand, to hold requests in flight. */
function controlled(): { calls: number[][]; finish: (err?: Error) => void; run: (items: number[]) => Promise<void> } {
  const calls: number[][] = [];
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  return {
    calls,
    finish: (err) => {
      const p = pending.shift();
      if (err) p?.reject(err);
      else p?.resolve();
    },
    run: (items) =>
      new Promise<void>((resolve, reject) => {
        calls.push(items);
        pending.push({ resolve, reject });
      }),
  };
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the first call goes out at once, and calls made while it is in flight go together in the next one, in order', async () => {
  const c = controlled();
  const send = createCoalescer(c.run);
  const settled: string[] = [];
  const a = send([1]).then(() => settled.push('a'));
  const b = send([2, 3]).then(() => settled.push('b'));
  const d = send([4]).then(() => settled.push('d'));
  await tick();
  expect(c.calls).toEqual([[1]]);
  c.finish();
  await tick();
  expect(settled).toEqual(['a']);
  expect(c.calls).toEqual([[1], [2, 3, 4]]);
  c.finish();
  await Promise.all([a, b, d]);
  expect(settled).toEqual(['a', 'b', 'd']);
});

test('a failed call rejects exactly the callers whose items it carried; the next call is unaffected', async () => {
  const c = controlled();
  const send = createCoalescer(c.run);
  const first = send([1]);
  const second = send([2]);
  const third = send([3]);
  await tick();
  c.finish();
  await first;
  await tick();
  c.finish(new Error('broker gone'));
  await expect(second).rejects.toThrow('broker gone');
  await expect(third).rejects.toThrow('broker gone');
  const fourth = send([4]);
  await tick();
  expect(c.calls).toEqual([[1], [2, 3], [4]]);
  c.finish();
  await expect(fourth).resolves.toBeUndefined();
});

test('a caller is never resolved before the call carrying its items has finished', async () => {
  const c = controlled();
  const send = createCoalescer(c.run);
  let done = false;
  void send([1]);
  const later = send([2]).then(() => (done = true));
  await tick();
  c.finish(); // finishes [1] only
  await tick();
  expect(done).toBe(false);
  c.finish();
  await later;
  expect(done).toBe(true);
});
