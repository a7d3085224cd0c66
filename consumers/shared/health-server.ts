import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * /healthz: the process can still work (liveness: fails when the Kafka consumer crashed or
 * stopped, or the stage stalled with lag of its own — and the process then exits); while it
 * waits on a dependency or a setup hold it answers 200 {"status":"paused", holds, pausedPartitions}. /readyz: it can do its work — Kafka joined,
 * registry and its HTTP dependency reachable (readiness). /metrics: Prometheus text.
 */
export interface HealthChecks {
  live: () => boolean;
  /** Why liveness fails (shown in the /healthz body). */
  liveReason?: () => string | undefined;
  ready: () => Promise<Record<string, boolean>>;
  /** What a live process is waiting for (setup holds, paused partitions): shown, never a failure. */
  waiting?: () => { holds: unknown[]; pausedPartitions: Record<string, number> };
}

/** 200's body: ok, or paused with the holds and paused partitions (alive: a paused process is not restarted). */
function liveBody(checks: HealthChecks): Record<string, unknown> {
  const w = checks.waiting?.();
  const paused = w ? Object.values(w.pausedPartitions).reduce((a, n) => a + n, 0) : 0;
  if (!w || (w.holds.length === 0 && paused === 0)) return { status: 'ok' };
  return { status: 'paused', holds: w.holds, pausedPartitions: w.pausedPartitions };
}

/** How long one readiness answer is reused (by /readyz and the readiness gauge alike). */
export const READINESS_CACHE_MS = 3_000;

/**
 * The readiness check, run at most once per `ttlMs`: each run calls the registry and the
 * stage's dependency (warehouse, database), and /readyz answers anyone who can reach the port,
 * so a burst of requests must not turn into a burst of calls. Callers during a run share it;
 * a run that throws is not kept.
 */
export function cachedReadiness(
  check: () => Promise<Record<string, boolean>>,
  ttlMs = READINESS_CACHE_MS,
  now: () => number = Date.now,
): () => Promise<Record<string, boolean>> {
  let last: { at: number; value: Promise<Record<string, boolean>> } | undefined;
  return () => {
    if (last && now() - last.at < ttlMs) return last.value;
    const entry = { at: now(), value: check() };
    last = entry;
    entry.value.catch(() => {
      if (last === entry) last = undefined;
    });
    return entry.value;
  };
}

/** Serves the checks on host:port (host 127.0.0.1 unless a container's probes need 0.0.0.0). */
export function startHealthServer(host: string, port: number, checks: HealthChecks, metrics: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    const reply = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type }).end(body);
    };
    void (async () => {
      switch (req.url?.split('?')[0]) {
        case '/healthz':
          return checks.live()
            ? reply(200, JSON.stringify(liveBody(checks)))
            : reply(
                503,
                JSON.stringify(
                  checks.liveReason?.() === undefined || checks.liveReason() === 'stopping'
                    ? { status: 'stopping' }
                    : { status: 'failed', reason: checks.liveReason() },
                ),
              );
        case '/readyz': {
          const parts = await checks.ready();
          const ok = Object.values(parts).every(Boolean);
          return reply(ok ? 200 : 503, JSON.stringify({ status: ok ? 'ready' : 'not-ready', ...parts }));
        }
        case '/metrics':
          return reply(200, await metrics.metrics(), metrics.contentType);
        default:
          return reply(404, '{"error":"not found"}');
      }
    })().catch((err: unknown) => reply(500, JSON.stringify({ error: String(err) })));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
