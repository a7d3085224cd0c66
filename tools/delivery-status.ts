/**
 * `make status` delivery view: what SFMC did with the Welcomes, per organization, from
 * loyalty.welcome_delivery_status (the delivery-status stage's table), and why the ones
 * that were not sent were not. Reads with the stage's own read-only database user.
 *
 *   node dist/tools/delivery-status.js
 */
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { readFileSync } from 'node:fs';
import { int, secret, str } from '../consumers/shared/env';

const STATUSES = ['EmailSent', 'EmailNotSent', 'EmailQueued', 'unknown'] as const;

export function renderDelivery(
  rows: { org_id: string; status: string; n: number }[],
  reasons: { status_code: number | null; status_message: string | null; n: number }[],
): string {
  const orgs = [...new Set(rows.map((r) => r.org_id))].sort();
  const count = (org: string, status: string): number => rows.find((r) => r.org_id === org && r.status === status)?.n ?? 0;
  const lines = ['DELIVERY STATUS  (SFMC status call per Welcome; loyalty.welcome_delivery_status)'];
  lines.push(`  ${'org'.padEnd(6)} ${STATUSES.map((s) => s.padStart(13)).join(' ')}`);
  if (orgs.length === 0) lines.push('  (no status recorded yet)');
  for (const org of orgs) lines.push(`  ${org.padEnd(6)} ${STATUSES.map((s) => count(org, s).toLocaleString('en-US').padStart(13)).join(' ')}`);
  if (reasons.length > 0)
    lines.push(
      `  not sent, by SFMC reason: ${reasons.map((r) => `${r.status_code ?? '?'} ${r.status_message ?? ''} ×${r.n}`.replace('  ', ' ')).join(', ')}`,
    );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const env = process.env;
  const conn = await createConnection({
    host: str(env, 'DB_HOST', '127.0.0.1'),
    port: int(env, 'DB_PORT', 3306, 1, 65535),
    user: str(env, 'DELIVERY_DB_USER', 'welcome_delivery'),
    password: secret(env, 'DELIVERY_DB_PASSWORD', (p) => readFileSync(p, 'utf8')),
    database: str(env, 'DB_NAME', 'loyalty'),
    connectTimeout: 3_000,
  });
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT org_id, status, COUNT(*) AS n FROM welcome_delivery_status GROUP BY org_id, status');
    const [reasons] = await conn.query<RowDataPacket[]>(
      "SELECT status_code, status_message, COUNT(*) AS n FROM welcome_delivery_status WHERE status = 'EmailNotSent' GROUP BY status_code, status_message ORDER BY n DESC",
    );
    process.stdout.write(
      `${renderDelivery(
        rows.map((r) => ({ org_id: String(r.org_id), status: String(r.status), n: Number(r.n) })),
        reasons.map((r) => ({
          status_code: r.status_code === null ? null : Number(r.status_code),
          status_message: r.status_message === null ? null : String(r.status_message),
          n: Number(r.n),
        })),
      )}\n`,
    );
  } finally {
    await conn.end();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`delivery-status: ${String(err)}\n`);
    process.exit(1);
  });
}
