/**
 * The alert rules, the JMX exporter rules and the runbook hold together: every alert links
 * to a runbook entry that exists, has a promtool test that makes it fire, and reads only
 * metrics something really exports (the consumers, the JMX exporter rules, the watchdog).
 * promtool itself runs the rules' unit tests (`make test-rules`); this checks what it cannot.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createDeliveryMetrics } from '../../../consumers/delivery-status/checker';
import { createMetrics, READINESS_BUDGET_MS } from '../../../consumers/shared/metrics';
import { MIN_RANGE_S, parseDuration, scaleDurations, UNSCALED_MARKER } from '../../../tools/alert-rules';
import { renderAlerts } from '../../../tools/alerts-status';
import { headingAnchors } from '../docs/doc-check';
import { declaredIn, reconcileTextfileMetrics } from './declared-metrics';

const ROOT = join(__dirname, '..', '..', '..');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const groups = (parse(read('monitoring/alerts.yml')) as { groups: { name: string; rules: Rule[] }[] }).groups;
const rules = groups.flatMap((g) => g.rules);

interface JmxRule {
  pattern: string;
  name: string;
  labels?: Record<string, string>;
  type?: string;
}
const jmxFiles = ['monitoring/jmx/kafka.yml', 'monitoring/jmx/connect.yml'];
const jmxRules = jmxFiles.flatMap((f) => (parse(read(f)) as { rules: JmxRule[] }).rules.map((r) => ({ file: f, ...r })));

/** The Connect watchdog's /metrics (built separately): the names this repo alerts on. */
const WATCHDOG_METRICS = ['welcome_connect_watchdog_restarts_total', 'welcome_connect_watchdog_gave_up'];

/** Metric names in a PromQL expression: identifiers outside strings, label matchers and by/on lists, not followed by `(`. */
function metricNames(expr: string): string[] {
  const noStrings = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1()');
  const words = [...noStrings.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1] as string);
  const keywords = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'le']);
  return words.filter((w) => (!keywords.has(w) && !/^\d/.test(w) && /_/.test(w)) || w === 'up');
}

async function knownMetrics(): Promise<Set<string>> {
  const names = new Set<string>([
    'up',
    ...WATCHDOG_METRICS,
    ...[...declaredIn('consumers/emailer/main.ts'), ...reconcileTextfileMetrics()].map((d) => d.name),
  ]);
  const metrics = createMetrics('test');
  createDeliveryMetrics(metrics);
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
  }
  for (const r of jmxRules) names.add(r.name);
  return names;
}

describe('alert rules (monitoring/alerts.yml)', () => {
  it('are twenty alerts with unique names, a severity and an actionable summary', () => {
    expect(rules.length).toBeGreaterThanOrEqual(20);
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const r of rules) {
      expect({ alert: r.alert, severity: r.labels?.['severity'] }).toEqual({
        alert: r.alert,
        severity: expect.stringMatching(/^(critical|warning)$/),
      });
      expect(r.annotations?.['summary']?.length ?? 0).toBeGreaterThan(30);
      expect(r.annotations?.['description']?.length ?? 0).toBeGreaterThan(30);
    }
  });

  it('link each alert to its own runbook entry, whose heading exists in the docs with exactly that anchor', () => {
    const anchors = headingAnchors(read('docs/operations.md'));
    for (const r of rules) {
      const url = r.annotations?.['runbook_url'] ?? '';
      expect({ alert: r.alert, url }).toEqual({ alert: r.alert, url: `docs/operations.md#${r.alert.toLowerCase()}` });
      expect({ alert: r.alert, anchorInDocs: anchors.has(url.split('#')[1] as string) }).toEqual({ alert: r.alert, anchorInDocs: true });
    }
  });

  it('each have a promtool test in which they fire', () => {
    const tests = (
      parse(read('monitoring/tests/alerts.test.yml')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] }
    ).tests;
    const fired = new Set(tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    expect(rules.map((r) => r.alert).filter((a) => !fired.has(a))).toEqual([]);
    // a near miss for most: the rules that cannot stay quiet on a healthy input are trivially covered by 0
    expect(rules.map((r) => r.alert).filter((a) => !quiet.has(a))).toEqual([
      'ConnectWatchdogRestarting',
      'WarehouseErrorRateHigh',
      'MetricsTargetDown',
    ]);
  });

  it('read only metrics that the consumers, the JMX exporter rules, the watchdog or the reconciliation export', async () => {
    // the source scans find what they are meant to find (else the check below proves nothing for them)
    expect(declaredIn('consumers/emailer/main.ts')).toEqual([
      { name: 'welcome_held_total', type: 'counter', labels: ['org', 'guard'] },
      { name: 'welcome_breaker_open', type: 'gauge', labels: ['org'] },
    ]);
    expect(reconcileTextfileMetrics()).toEqual(
      expect.arrayContaining([
        { name: 'welcome_reconcile_members', type: 'gauge', labels: ['org', 'cause'] },
        { name: 'welcome_reconcile_missing_members', type: 'gauge', labels: [] },
        { name: 'welcome_reconcile_last_run_timestamp_seconds', type: 'gauge', labels: [] },
      ]),
    );
    const known = await knownMetrics();
    const unknown = rules.flatMap((r) =>
      metricNames(r.expr)
        .filter((n) => !known.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });
});

describe('JMX exporter rules (monitoring/jmx/*.yml)', () => {
  it('name every metric literally, with a type, and patterns that compile', () => {
    for (const r of jmxRules) {
      expect({ file: r.file, name: r.name }).toEqual({ file: r.file, name: expect.stringMatching(/^(kafka|debezium)_[a-z_]+$/) });
      expect(['GAUGE', 'COUNTER']).toContain(r.type);
      if (r.type === 'COUNTER') expect(r.name).toMatch(/_total$/);
      expect(() => new RegExp(r.pattern)).not.toThrow();
    }
  });

  it('turn the MBean names Connect and Debezium register into the series the alerts group by', () => {
    const match = (name: string, bean: string): Record<string, string> | undefined => {
      const r = jmxRules.find((x) => x.name === name && new RegExp(`^${x.pattern}$`).test(bean));
      const m = r && new RegExp(`^${r.pattern}$`).exec(bean);
      if (!r || !m) return undefined;
      return Object.fromEntries(Object.entries(r.labels ?? {}).map(([k, v]) => [k, v.replace(/\$(\d)/g, (_, i: string) => m[Number(i)] ?? '')]));
    };
    expect(match('kafka_connect_connector_status', 'kafka.connect<type=connector-metrics, connector=members-source><>status: paused')).toEqual({
      connector: 'members-source',
      status: 'paused',
    });
    expect(
      match(
        'kafka_connect_worker_connector_tasks',
        'kafka.connect<type=connect-worker-metrics, connector=welcome-audit><>connector-failed-task-count',
      ),
    ).toEqual({ connector: 'welcome-audit', state: 'failed' });
    expect(
      match(
        'kafka_connect_sink_records_lag_max',
        'kafka.consumer<type=consumer-fetch-manager-metrics, client-id=connector-consumer-welcome-audit-0><>records-lag-max',
      ),
    ).toEqual({ connector: 'welcome-audit', task: '0' });
    expect(
      match(
        'debezium_create_events_seen_total',
        'debezium.mariadb<type=connector-metrics, context=streaming, server=cdc><>TotalNumberOfCreateEventsSeen',
      ),
    ).toEqual({ plugin: 'mariadb', server: 'cdc' });
    expect(
      match(
        'debezium_milliseconds_behind_source',
        'debezium.mysql<type=connector-metrics, context=streaming, server=cdc, task=0><>MilliSecondsBehindSource',
      ),
    ).toEqual({ plugin: 'mysql', server: 'cdc' });
    expect(match('kafka_log_end_offset', 'kafka.log<type=Log, name=LogEndOffset, topic=welcome.emailer.dlq, partition=3><>Value')).toEqual({
      topic: 'welcome.emailer.dlq',
      partition: '3',
    });
    expect(match('kafka_log_end_offset', 'kafka.log<type=Log, name=LogEndOffset, topic=__consumer_offsets, partition=3><>Value')).toBeUndefined();
  });
});

describe('local time scaling (tools/alert-rules.ts)', () => {
  it('parses Prometheus durations', () => {
    expect(parseDuration('5m')).toBe(300);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('90s')).toBe(90);
    expect(() => parseDuration('5 minutes')).toThrow(/not a Prometheus duration/);
  });

  it('divides every for: and range window, keeps a minimum window, and leaves everything else as it is', () => {
    const text =
      'x:\n        for: 5m\n        expr: rate(a_total{x="[1m]"}[10m]) > 0 and changes(b[15m]) == 0 and max_over_time(c[1h:1m]) > 1\n        # 300 [5m] stays? no: comments are text too\n';
    const scaled = scaleDurations(text, 20);
    expect(scaled).toContain('for: 15s');
    expect(scaled).toContain('rate(a_total{x="[1m]"}[30s])'.replace('[1m]', `[${MIN_RANGE_S}s]`));
    expect(scaled).toContain('changes(b[45s])');
    expect(scaled).toContain('max_over_time(c[180s:3s])');
    expect(scaleDurations(text, 1)).toBe(text);
    expect(() => scaleDurations(text, 0)).toThrow(/ALERT_TIME_SCALE/);
  });

  it('renders the real rules into rules that keep every alert and only shorter durations', () => {
    const scaled = parse(scaleDurations(read('monitoring/alerts.yml'), 20)) as { groups: { rules: Rule[] }[] };
    const scaledRules = scaled.groups.flatMap((g) => g.rules);
    expect(scaledRules.map((r) => r.alert)).toEqual(rules.map((r) => r.alert));
    const unscaled = new Set(
      read('monitoring/alerts.yml')
        .split(/(?=^\s*- alert:)/m)
        .filter((c) => c.includes(UNSCALED_MARKER))
        .map((c) => /- alert: (\w+)/.exec(c)?.[1]),
    );
    expect(unscaled).toEqual(new Set(['BinlogPositionNotAdvancing', 'DeliveryStatusSweepFailing']));
    scaledRules.forEach((r, i) => {
      if (unscaled.has(r.alert)) return expect(r).toEqual(rules[i]);
      expect(parseDuration(r.for ?? '0s')).toBeLessThanOrEqual(Math.max(1, parseDuration(rules[i]?.for ?? '0s') / 20));
      expect(r.annotations).toEqual(rules[i]?.annotations);
    });
  });
});

describe('alerts in make status (tools/alerts-status.ts)', () => {
  it('lists firing before pending, critical before warning, with summary, runbook and down targets', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    const text = renderAlerts(
      [
        {
          state: 'pending',
          labels: { alertname: 'ConsumerNotReady', severity: 'critical', stage: 'emailer', job: 'emailer' },
          annotations: { summary: 'not ready' },
          activeAt: '2026-12-01T09:59:50Z',
        },
        {
          state: 'firing',
          labels: { alertname: 'DeadLettersGrowing', severity: 'warning', stage: 'emailer' },
          annotations: { summary: 'dlq' },
          activeAt: '2026-12-01T09:50:00Z',
        },
        {
          state: 'firing',
          labels: { alertname: 'ConnectorNotRunning', severity: 'critical', connector: 'members-source' },
          annotations: { summary: 'paused', runbook_url: 'docs/operations.md#connectornotrunning' },
          activeAt: '2026-12-01T09:59:00Z',
        },
      ],
      [{ labels: { job: 'watchdog', instance: '127.0.0.1:9466' }, health: 'down', lastError: 'connection refused' }],
      now,
    );
    const order = ['ConnectorNotRunning', 'DeadLettersGrowing', 'ConsumerNotReady'].map((a) => text.indexOf(a));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(text).toContain('FIRING   critical  ConnectorNotRunning  connector=members-source  (since 60 s)');
    expect(text).toContain('runbook: docs/operations.md#connectornotrunning');
    expect(text).toContain('(since 10 min)');
    expect(text).toContain('target watchdog (127.0.0.1:9466) is down: connection refused');
    expect(renderAlerts([], [])).toContain('none firing or pending');
  });
});

describe('welcome_ready (consumers/shared/metrics.ts)', () => {
  const readyLines = async (m: ReturnType<typeof createMetrics>): Promise<string[]> =>
    (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('welcome_ready{'));

  it('exports each readiness check as 1 or 0 at scrape time, nothing before the checks are set', async () => {
    const m = createMetrics('augmenter');
    expect(await readyLines(m)).toEqual([]);
    let warehouse = true;
    m.setReadiness(async () => ({ kafka: true, warehouse }));
    expect(await readyLines(m)).toEqual(['welcome_ready{check="kafka",stage="augmenter"} 1', 'welcome_ready{check="warehouse",stage="augmenter"} 1']);
    warehouse = false;
    expect(await readyLines(m)).toContain('welcome_ready{check="warehouse",stage="augmenter"} 0');
  });

  it('counts checks that hang past the budget as failing, without failing the scrape', async () => {
    const m = createMetrics('emailer');
    let hang = false;
    m.setReadiness(() => (hang ? new Promise<Record<string, boolean>>(() => undefined) : Promise.resolve({ kafka: true, sfmc: true })));
    expect(await readyLines(m)).toHaveLength(2);
    hang = true;
    const t0 = Date.now();
    const text = await m.registry.metrics();
    expect(Date.now() - t0).toBeLessThan(READINESS_BUDGET_MS + 1_000);
    expect(text).toContain('welcome_ready{check="kafka",stage="emailer"} 0');
    expect(text).toContain('welcome_ready{check="sfmc",stage="emailer"} 0');
    expect(text).toContain('welcome_consumer_lag');
  });
});
