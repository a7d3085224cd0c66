/**
 * Process lifecycle shared by the consumers: start the health/metrics server, run the
 * stage, and on SIGTERM/SIGINT stop fetching, let the in-flight batch finish and commit,
 * and exit within 10 s (Kubernetes and Docker send SIGKILL after their grace period).
 */
import type { Server } from 'node:http';
import { ConfigError } from './errors';
import type { Logger } from './logger';

export const SHUTDOWN_DEADLINE_MS = 9_000;

export function handleShutdown(logger: Logger, stop: () => Promise<void>, servers: Server[] = []): void {
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing the in-flight batch');
    const force = setTimeout(() => {
      logger.error('shutdown deadline passed; exiting without waiting further (uncommitted records are re-read on restart)');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    force.unref();
    const started = Date.now();
    stop()
      .then(() => {
        logger.info({ ms: Date.now() - started }, 'consumer stopped and offsets committed');
        // close() alone waits for idle keep-alive connections (a scraper's) to time out.
        return Promise.all(servers.map((s) => new Promise((r) => {
          s.close(r);
          s.closeAllConnections();
        })));
      })
      .then(() => {
        logger.info({ ms: Date.now() - started }, 'stopped cleanly');
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** Entry-point wrapper: a config error is one clear line and exit code 2; anything else, 1. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${name}: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
