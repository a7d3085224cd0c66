/**
 * Process lifecycle shared by the consumers: start the health/metrics server, run the
 * stage, and on SIGTERM/SIGINT stop fetching, let the in-flight batch finish and commit,
 * and exit within 10 s (Kubernetes and Docker send SIGKILL after their grace period).
 */
import type { Server } from 'node:http';
import { ConfigError, PipelineError } from './errors';

/**
 * Refusals by Kafka or the registry at start (wrong password, unknown CA, no ACL): one line
 * that says what was refused, not a stack trace. kafkajs names its errors by class.
 */
export function refusalMessage(err: unknown): string | undefined {
  if (err instanceof PipelineError && err.code === 'REGISTRY_AUTH') return err.message;
  if (!(err instanceof Error)) return undefined;
  const causes: Error[] = [];
  for (
    let e: unknown = err;
    e instanceof Error && causes.length < 5;
    e = (e as { cause?: unknown }).cause ?? (e as { originalError?: unknown }).originalError
  )
    causes.push(e);
  const sasl = causes.find((e) => e.name === 'KafkaJSSASLAuthenticationError');
  if (sasl) return `Kafka refused the SASL login (KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD or the OAuth client): ${sasl.message}`;
  const tls = causes.find(
    (e) =>
      /certificate|self.signed|SSL routines|TLS|EPROTO/i.test(`${e.message} ${(e as { code?: string }).code ?? ''}`) && e.name.startsWith('KafkaJS'),
  );
  if (tls)
    return `Kafka TLS connection failed (KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_CA_FILE, or a TLS port given to a plaintext client): ${tls.message}`;
  if (causes.some((e) => e.name === 'KafkaJSConnectionClosedError')) {
    return 'Kafka closed the connection before answering: a TLS listener reached in plaintext (set KAFKA_SECURITY_PROTOCOL=SASL_SSL or SSL), or a SASL listener without KAFKA_SASL_*';
  }
  const denied = causes.find((e) => /not authorized|authorization failed/i.test(e.message));
  if (denied) return `Kafka denied an operation to this principal (ACLs): ${denied.message}`;
  return undefined;
}
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
        return Promise.all(
          servers.map(
            (s) =>
              new Promise((r) => {
                s.close(r);
                s.closeAllConnections();
              }),
          ),
        );
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

/**
 * Node's process warnings, printed as Node prints them, except TimeoutNegativeWarning after its
 * first time: kafkajs 2.2.4's request queue re-arms its throttle check with a negative delay when
 * nothing is throttled (requestQueue/index.js, kafkajs #1751); Node 24 warns at each one and runs
 * it after 1 ms, which is what kafkajs meant. Returns the listener (for its test).
 */
export function filterKnownWarnings(write: (line: string) => void = (l) => process.stderr.write(l)): (w: Error) => void {
  let negativeTimeouts = 0;
  const listener = (w: Error): void => {
    if (w.name === 'TimeoutNegativeWarning' && negativeTimeouts++ > 0) return;
    const note = w.name === 'TimeoutNegativeWarning' ? ' (kafkajs #1751, harmless: not printed again)' : '';
    write(`(node:${process.pid}) ${w.name}${note}: ${w.message}\n`);
  };
  process.removeAllListeners('warning');
  process.on('warning', listener);
  return listener;
}

/** Entry-point wrapper: a config error is one clear line and exit code 2; anything else, 1. */
export function runMain(name: string, main: () => Promise<void>): void {
  filterKnownWarnings();
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    const refused = refusalMessage(err);
    if (refused) {
      process.stderr.write(`${name}: refused at start: ${refused}\n`);
      process.exit(1);
    }
    process.stderr.write(`${name}: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
