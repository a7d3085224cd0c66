/**
 * The Grafana dashboard, its provisioning and the Prometheus scrape config are files no test
 * here can run (no Docker): these hold them to the metrics the consumers really export
 * (consumers/shared/metrics.ts) and to docker-compose.yml.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createDeliveryMetrics } from '../../../consumers/delivery-status/checker';
import { createMetrics } from '../../../consumers/shared/metrics';
import { declaredIn, reconcileTextfileMetrics } from './declared-metrics';

const ROOT = join(__dirname, '..', '..', '..');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

interface Target {
  expr: string;
  refId: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Target[];
  datasource?: { uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
}

interface Annotation {
  name: string;
  expr: string;
  enable: boolean;
  datasource?: { uid?: string };
}
const dashboard = JSON.parse(read('monitoring/grafana/dashboards/welcome.json')) as {
  uid: string;
  title: string;
  panels: Panel[];
  annotations: { list: Annotation[] };
};
const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

/** What the consumers export: metric name → type and label names (stage is a default label on every series). */
async function exported(): Promise<Map<string, { type: string; labels: Set<string> }>> {
  const m = createMetrics('test');
  const delivery = createDeliveryMetrics(m);
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    out.set(metric.name, { type: String(metric.type), labels: new Set<string>(['stage']) });
  }
  // label names as declared (getMetricsAsJSON only lists labels of series that exist)
  for (const metric of [...Object.values(m), ...Object.values(delivery)]) {
    const declared = metric as unknown as { name?: string; labelNames?: string[] };
    if (declared.name && out.has(declared.name)) for (const l of declared.labelNames ?? []) out.get(declared.name)?.labels.add(l);
  }
  // the broker's and Connect's, as the JMX exporter rules name them (monitoring/jmx/*.yml)
  for (const file of ['monitoring/jmx/kafka.yml', 'monitoring/jmx/connect.yml']) {
    for (const r of (parse(read(file)) as { rules: { name: string; type: string; labels?: Record<string, string> }[] }).rules) {
      out.set(r.name, { type: r.type.toLowerCase(), labels: new Set(Object.keys(r.labels ?? {})) });
    }
  }
  // the emailer's guard metrics (declared in its wiring) and make reconcile's text file
  for (const d of declaredIn('consumers/emailer/main.ts')) out.set(d.name, { type: d.type, labels: new Set(['stage', ...d.labels]) });
  for (const d of reconcileTextfileMetrics()) out.set(d.name, { type: d.type, labels: new Set(d.labels) });
  // the Connect watchdog's (built separately; these are the names it serves)
  out.set('welcome_connect_watchdog_restarts_total', { type: 'counter', labels: new Set(['connector']) });
  out.set('welcome_connect_watchdog_gave_up', { type: 'gauge', labels: new Set(['connector']) });
  return out;
}

/** Metric names a PromQL expression reads (identifiers followed by `{`, `[` or `)` that look like our metrics). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:welcome|kafka|debezium)_[a-z_]+)\b/g)].map((m) => m[1] as string);
}

/** Label names in `by (...)` clauses. */
function byLabels(expr: string): string[] {
  return [...expr.matchAll(/by\s*\(([^)]*)\)/g)].flatMap((m) =>
    (m[1] as string)
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean),
  );
}

describe('Grafana dashboard (monitoring/grafana/dashboards/welcome.json)', () => {
  it('parses and has a uid, a title and panels with queries', () => {
    expect(dashboard.uid).toBe('welcome-pipeline');
    expect(dashboard.title).toBeTruthy();
    expect(targets.length).toBeGreaterThan(10);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
  });

  it('reads only metrics that consumers/shared/metrics.ts defines (histograms through _bucket/_sum/_count)', async () => {
    const known = await exported();
    const unknown: string[] = [];
    for (const t of targets) {
      for (const name of metricsIn(t.expr)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const def = known.get(name) ?? (base !== name && known.get(base)?.type === 'histogram' ? known.get(base) : undefined);
        if (!def) unknown.push(`${t.panel}: ${name}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('groups only by labels those metrics carry', async () => {
    const known = await exported();
    const wrong: string[] = [];
    for (const t of targets) {
      const names = metricsIn(t.expr).map((n) => n.replace(/_(bucket|sum|count)$/, ''));
      for (const label of byLabels(t.expr)) {
        const ok = label === 'le' || names.some((n) => known.get(n)?.labels.has(label));
        if (!ok) wrong.push(`${t.panel}: by ${label}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('shows throughput, end-to-end percentiles, lag and dead letters per stage', () => {
    const all = targets.map((t) => t.expr).join('\n');
    expect(all).toMatch(/rate\(welcome_records_consumed_total/);
    for (const q of ['0.5', '0.95', '0.99'])
      expect(all).toContain(`histogram_quantile(${q}, sum by (le) (rate(welcome_end_to_end_latency_seconds_bucket`);
    expect(all).toMatch(/welcome_consumer_lag/);
    expect(all).toMatch(/sum by \(stage, code\) \(rate\(welcome_records_dead_lettered_total/);
  });

  it('shows Connect task states, Debezium lag, queue and binlog, INSERTs against sends, and the broker', () => {
    const all = targets.map((t) => t.expr).join('\n');
    for (const name of [
      'kafka_connect_worker_connector_tasks',
      'kafka_connect_connector_status',
      'debezium_milliseconds_behind_source',
      'debezium_milliseconds_since_last_event',
      'debezium_queue_remaining_capacity',
      'debezium_binlog_position',
      'debezium_create_events_seen_total',
      'kafka_connect_task_errors_total',
      'kafka_connect_sink_records_lag_max',
      'welcome_connect_watchdog_gave_up',
      'kafka_server_under_replicated_partitions',
      'kafka_server_messages_in_total',
    ]) {
      expect({ name, shown: all.includes(name) }).toEqual({ name, shown: true });
    }
  });

  it('shows the guards, the delivery status and the reconciliation', () => {
    const all = targets.map((t) => t.expr).join('\n');
    for (const name of [
      'welcome_breaker_open',
      'welcome_held_total',
      'welcome_sfmc_definition_refused',
      'welcome_delivery_status_total',
      'welcome_delivery_queued',
      'welcome_delivery_sweep_errors_total',
      'welcome_reconcile_members',
      'welcome_reconcile_missing_members',
      'welcome_reconcile_last_run_timestamp_seconds',
    ]) {
      expect({ name, shown: all.includes(name) }).toEqual({ name, shown: true });
    }
  });

  it('marks firing alerts as annotations, from the same datasource', () => {
    const alerts = dashboard.annotations.list.find((a) => a.expr.includes('ALERTS'));
    expect(alerts).toEqual(expect.objectContaining({ enable: true, expr: 'ALERTS{alertstate="firing"}' }));
    const ds = parse(read('monitoring/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string }[] };
    expect(alerts?.datasource?.uid).toBe(ds.datasources[0]?.uid);
  });

  it('uses the provisioned Prometheus datasource everywhere', () => {
    const ds = parse(read('monitoring/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; url: string }[] };
    const uid = ds.datasources[0]?.uid;
    expect(ds.datasources[0]?.url).toBe('http://prometheus:9090');
    for (const p of dashboard.panels.filter((x) => x.type !== 'row'))
      expect({ panel: p.title, uid: p.datasource?.uid }).toEqual({ panel: p.title, uid });
  });
});

describe('provisioning and scraping, as docker-compose.yml mounts them', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as {
    services: Record<string, { volumes?: string[]; environment?: Record<string, string>; profiles?: string[] }>;
  };
  const mountTarget = (service: string, source: string): string | undefined =>
    compose.services[service]?.volumes?.find((v) => v.startsWith(`${source}:`))?.split(':')[1];

  it('loads the dashboards from the folder the provider reads', () => {
    const provider = parse(read('monitoring/grafana/provisioning/dashboards/welcome.yml')) as { providers: { options: { path: string } }[] };
    expect(mountTarget('grafana', './monitoring/grafana/dashboards')).toBe(provider.providers[0]?.options.path);
    expect(mountTarget('grafana', './monitoring/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    expect(mountTarget('prometheus', './monitoring/prometheus.yml')).toBe('/etc/prometheus/prometheus.yml');
  });

  it('scrapes every replica of both consumers, on the port they serve /metrics on', () => {
    const prom = parse(read('monitoring/prometheus.yml')) as {
      scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; type: string; port: number }[] }[];
    };
    for (const service of ['augmenter', 'emailer', 'delivery-status']) {
      const job = prom.scrape_configs.find((j) => j.job_name === service);
      expect(job?.dns_sd_configs?.[0]).toEqual(
        expect.objectContaining({ names: [service], type: 'A', port: Number(compose.services[service]?.environment?.['HTTP_PORT']) }),
      );
    }
  });
});
