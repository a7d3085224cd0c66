/**
 * Issue 24: on the native stack nothing listens for strangers. Every port of the stack (its
 * .env/lib.sh settings) that has a listener is bound to the loopback address, read from the
 * kernel's own table (/proc/net/tcp, tcp6), not from what the processes claim.
 */
import { readFileSync } from 'node:fs';

const env = process.env;
// every port the stack's services listen on
const PORTS = [
  'DB_PORT',
  'KAFKA_PORT',
  'KAFKA_CONTROLLER_PORT',
  'KAFKA_SASL_PORT',
  'KAFKA_MTLS_PORT',
  'REGISTRY_PORT',
  'REGISTRY_MGMT_PORT',
  'CONNECT_PORT',
  'SFMC_STANDIN_PORT',
  'DW_STANDIN_PORT',
  'AUGMENTER_HTTP_PORT',
  'EMAILER_HTTP_PORT',
  'DELIVERY_STATUS_HTTP_PORT',
  'WATCHDOG_HTTP_PORT',
  'KAFKA_METRICS_PORT',
  'CONNECT_METRICS_PORT',
  'PROMETHEUS_PORT',
];

/** LISTEN sockets as [address, port], from /proc/net/tcp and tcp6 (addresses as the kernel stores them). */
function listeners(): { address: string; port: number }[] {
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[3] === '0A') // TCP_LISTEN
      .map((f) => {
        const [hex, port] = (f[1] ?? '').split(':');
        return { address: decode(hex ?? ''), port: parseInt(port ?? '0', 16) };
      }),
  );
}

/** /proc's little-endian 32-bit words as an address: 127.0.0.1, ::1, ::ffff:127.0.0.1, 0.0.0.0, ::. */
function decode(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  if (bytes.slice(0, 15).every((b) => b === 0)) return bytes[15] === 1 ? '::1' : '::';
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
}

const loopback = (a: string): boolean => a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.');

test("every listener of the stack's ports is on the loopback address", () => {
  const all = listeners();
  const ports = PORTS.map((name) => ({ name, port: Number(env[name]) })).filter((p) => p.port > 0);
  expect(ports.length).toBe(PORTS.length);
  const found = ports.flatMap(({ name, port }) => all.filter((l) => l.port === port).map((l) => ({ name, address: l.address })));
  // the stack is up: its HTTP servers and brokers are found at all
  for (const name of [
    'CONNECT_PORT',
    'SFMC_STANDIN_PORT',
    'DW_STANDIN_PORT',
    'AUGMENTER_HTTP_PORT',
    'EMAILER_HTTP_PORT',
    'WATCHDOG_HTTP_PORT',
    'KAFKA_PORT',
    'DB_PORT',
  ]) {
    expect({ name, listening: found.some((f) => f.name === name) }).toEqual({ name, listening: true });
  }
  expect(found.filter((f) => !loopback(f.address))).toEqual([]);
});
