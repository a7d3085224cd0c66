import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { cachedReadiness, READINESS_CACHE_MS, startHealthServer } from '../../../consumers/shared/health-server';

describe('readiness cache', () => {
  test('one check per TTL, however many ask; a new one after it', async () => {
    let t = 0;
    let calls = 0;
    const ready = cachedReadiness(
      async () => {
        calls++;
        return { registry: true, warehouse: calls < 2 };
      },
      3_000,
      () => t,
    );
    const burst = await Promise.all(Array.from({ length: 50 }, () => ready()));
    expect(calls).toBe(1);
    expect(burst.every((r) => r.warehouse)).toBe(true);
    t = 2_999;
    expect((await ready()).warehouse).toBe(true);
    expect(calls).toBe(1);
    t = 3_000;
    expect((await ready()).warehouse).toBe(false);
    expect(calls).toBe(2);
  });

  test('callers during a check share it; a check that throws is not kept', async () => {
    let calls = 0;
    let fail = true;
    const ready = cachedReadiness(async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 20));
      if (fail) throw new Error('registry down');
      return { registry: true };
    });
    await expect(Promise.all([ready(), ready()])).rejects.toThrow('registry down');
    expect(calls).toBe(1);
    fail = false;
    expect(await ready()).toEqual({ registry: true });
    expect(calls).toBe(2);
  });

  test('a few seconds', () => {
    expect(READINESS_CACHE_MS).toBeGreaterThanOrEqual(1_000);
    expect(READINESS_CACHE_MS).toBeLessThanOrEqual(5_000);
  });
});

test('the health server listens on the host it is given (127.0.0.1 by default in every entry point)', async () => {
  let checks = 0;
  const server = await startHealthServer(
    '127.0.0.1',
    0,
    {
      live: () => true,
      ready: cachedReadiness(async () => {
        checks++;
        return { kafka: true };
      }),
    },
    new Registry(),
  );
  try {
    const address = server.address() as AddressInfo;
    expect(address.address).toBe('127.0.0.1');
    const url = `http://127.0.0.1:${address.port}/readyz`;
    for (let i = 0; i < 5; i++) expect((await fetch(url)).status).toBe(200);
    expect(checks).toBe(1);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
