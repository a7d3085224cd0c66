/**
 * `make status` ALERTS: what the local Prometheus says is firing or pending right now (with
 * its summary and runbook entry), and which scrape targets are down. Reads Prometheus' HTTP
 * API; prints one line per alert.
 *
 *   node dist/tools/alerts-status.js          (PROMETHEUS_PORT, or PROMETHEUS_URL)
 */

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'firing' | 'pending' | 'inactive';
  activeAt?: string;
}
export interface PromTarget {
  labels: Record<string, string>;
  health: 'up' | 'down' | 'unknown';
  lastError?: string;
}

const age = (sinceIso: string | undefined, now: number): string => {
  if (!sinceIso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(sinceIso)) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
};

/** Firing alerts first (critical before warning), then pending; one line each plus its summary. */
export function renderAlerts(alerts: PromAlert[], targets: PromTarget[], now = Date.now()): string {
  const rank = (a: PromAlert): number => (a.state === 'firing' ? 0 : 2) + (a.labels['severity'] === 'critical' ? 0 : 1);
  const active = alerts.filter((a) => a.state !== 'inactive').sort((a, b) => rank(a) - rank(b));
  const lines: string[] = [];
  if (active.length === 0) lines.push('  none firing or pending');
  for (const a of active) {
    const { alertname, severity, ...rest } = a.labels;
    const where = Object.entries(rest)
      .filter(([k]) => k !== 'job' || !rest['stage'])
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(`  ${a.state.toUpperCase().padEnd(8)} ${(severity ?? '').padEnd(9)} ${alertname ?? '?'}  ${where}  (since ${age(a.activeAt, now)})`);
    if (a.annotations['summary']) lines.push(`           ${a.annotations['summary']}`);
    if (a.annotations['runbook_url']) lines.push(`           runbook: ${a.annotations['runbook_url']}`);
  }
  const down = targets.filter((t) => t.health !== 'up');
  for (const t of down)
    lines.push(`  target ${t.labels['job'] ?? '?'} (${t.labels['instance'] ?? '?'}) is ${t.health}${t.lastError ? `: ${t.lastError}` : ''}`);
  return lines.join('\n');
}

async function api<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return ((await res.json()) as { data: T }).data;
}

async function main(): Promise<void> {
  const base = process.env['PROMETHEUS_URL'] ?? `http://127.0.0.1:${process.env['PROMETHEUS_PORT'] ?? '9490'}`;
  try {
    const [{ alerts }, { activeTargets }] = await Promise.all([
      api<{ alerts: PromAlert[] }>(base, '/api/v1/alerts'),
      api<{ activeTargets: PromTarget[] }>(base, '/api/v1/targets?state=active'),
    ]);
    process.stdout.write(`ALERTS (${base}/alerts)\n${renderAlerts(alerts, activeTargets)}\n`);
  } catch (err) {
    process.stdout.write(`ALERTS\n  Prometheus at ${base} does not answer (${(err as Error).message}): \`make up SERVICES=prometheus\`\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) void main();
