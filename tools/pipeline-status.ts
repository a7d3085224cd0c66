/**
 * `make status` pipeline view: per stage counts and rates, consumer lag, DLQ sizes and
 * latency percentiles, from the consumers' /metrics and Kafka. Readable at a glance.
 *
 * "Over the last minutes": every run stores a snapshot of the counters and histogram
 * buckets in $STATE_DIR/pipeline-status.json; rates and percentiles are the difference
 * between now and the oldest snapshot of the last WINDOW_S seconds (default 300). With no
 * usable snapshot (first run, or a consumer restarted since), they are cumulative since the
 * consumers started, and the header says so. `--watch [seconds]` refreshes in place.
 *
 *   node dist/tools/pipeline-status.js [--watch [5]]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createKafka, groupLag } from '../consumers/shared/kafka';
import { kafkaFromEnv, type KafkaSecurity } from '../consumers/shared/kafka-security';
import { createLogger } from '../consumers/shared/logger';

// ------------------------------------------------------------------ Prometheus text
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text exposition format (as prom-client writes it). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const raw = m[3] as string;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (!Number.isNaN(value)) out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

/** Stable series id: name{a="1",b="2"} with labels sorted; `stage` kept (it tells the process). */
export function seriesKey(s: { name: string; labels: Record<string, string> }): string {
  const labels = Object.entries(s.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  return labels ? `${s.name}{${labels}}` : s.name;
}

export type Series = Record<string, number>;

export function toSeries(samples: Sample[], prefix = 'welcome_'): Series {
  const out: Series = {};
  for (const s of samples) if (s.name.startsWith(prefix)) out[seriesKey(s)] = (out[seriesKey(s)] ?? 0) + s.value;
  return out;
}

/** Sum of every series of `name` whose labels include `match`. */
export function sumOf(series: Series, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, value] of Object.entries(series)) {
    const s = parseKey(key);
    if (s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += value;
  }
  return total;
}

export function parseKey(key: string): { name: string; labels: Record<string, string> } {
  const [sample] = parsePrometheus(`${key} 0`);
  return { name: sample?.name ?? key, labels: sample?.labels ?? {} };
}

/** Label values of `label` over the series of `name`. */
export function labelValues(series: Series, name: string, label: string, match: Record<string, string> = {}): string[] {
  const values = new Set<string>();
  for (const key of Object.keys(series)) {
    const s = parseKey(key);
    if (s.name === name && s.labels[label] !== undefined && Object.entries(match).every(([k, v]) => s.labels[k] === v)) values.add(s.labels[label]);
  }
  return [...values].sort();
}

/** now − before, series by series (a series missing before counts from 0). */
export function delta(now: Series, before: Series | undefined): Series {
  if (!before) return now;
  const out: Series = {};
  for (const [k, v] of Object.entries(now)) out[k] = v - (before[k] ?? 0);
  return out;
}

/**
 * Quantile from cumulative histogram buckets, the way PromQL's histogram_quantile does it:
 * linear interpolation inside the bucket that holds the rank; a rank in +Inf gives the
 * largest finite bound. NaN without observations.
 */
export function histogramQuantile(q: number, buckets: { le: number; count: number }[]): number {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted[sorted.length - 1]?.count ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerLe;
      const inBucket = b.count - lowerCount;
      return inBucket <= 0 ? b.le : lowerLe + (b.le - lowerLe) * ((rank - lowerCount) / inBucket);
    }
    lowerLe = b.le;
    lowerCount = b.count;
  }
  return lowerLe;
}

export function bucketsOf(series: Series, name: string, match: Record<string, string> = {}): { le: number; count: number }[] {
  const byLe = new Map<number, number>();
  for (const [key, value] of Object.entries(series)) {
    const s = parseKey(key);
    if (s.name !== `${name}_bucket` || !Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
    byLe.set(le, (byLe.get(le) ?? 0) + value);
  }
  return [...byLe.entries()].map(([le, count]) => ({ le, count }));
}

// ------------------------------------------------------------------ gathering
export interface Snapshot {
  t: number;
  series: Series;
}

export async function scrape(urls: string[]): Promise<{ series: Series; down: string[] }> {
  const series: Series = {};
  const down: string[] = [];
  await Promise.all(
    urls.map(async (url) => {
      try {
        const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(3_000) });
        if (!res.ok) throw new Error(String(res.status));
        for (const [k, v] of Object.entries(toSeries(parsePrometheus(await res.text())))) series[k] = (series[k] ?? 0) + v;
      } catch {
        down.push(url);
      }
    }),
  );
  return { series, down };
}

export interface KafkaView {
  endOffsets: Record<string, number>;
  lag: Record<string, { partition: number; lag: number }[]>;
  error?: string;
}

export async function kafkaView(
  brokers: string[],
  topics: string[],
  groups: { group: string; topic: string }[],
  security?: KafkaSecurity,
): Promise<KafkaView> {
  const kafka = createKafka(
    { brokers, clientId: 'welcome-pipeline-status', ...(security ? { security } : {}) },
    createLogger('pipeline-status', 'fatal'),
  );
  const admin = kafka.admin();
  const view: KafkaView = { endOffsets: {}, lag: {} };
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    for (const topic of topics.filter((t) => existing.has(t))) {
      // records currently held = high − low (a DLQ's size); high alone = records ever written
      view.endOffsets[topic] = (await admin.fetchTopicOffsets(topic)).reduce((a, p) => a + Number(p.high) - Number(p.low), 0);
    }
    for (const g of groups.filter((x) => existing.has(x.topic))) view.lag[g.group] = await groupLag(admin, g.group, g.topic);
  } catch (err) {
    view.error = String(err);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return view;
}

// ------------------------------------------------------------------ rendering
const n = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '—');
const rate = (v: number, s: number): string => (s > 0 ? (v / s).toFixed(v / s >= 10 ? 0 : 1) : '—');
const ms = (seconds: number): string =>
  !Number.isFinite(seconds)
    ? '—'
    : seconds >= 10
      ? `${seconds.toFixed(1)} s`
      : seconds >= 1
        ? `${seconds.toFixed(2)} s`
        : `${Math.round(seconds * 1000)} ms`;
const pad = (s: string, w: number): string => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const lpad = (s: string, w: number): string => (s.length >= w ? s : ' '.repeat(w - s.length) + s);

export interface ViewInput {
  now: number;
  series: Series;
  windowFrom: Snapshot | undefined;
  kafka: KafkaView;
  topics: { member: string; augmented: string; sent: string; augmenterDlq: string; emailerDlq: string };
  down: string[];
}

export function renderView(v: ViewInput): string {
  const d = delta(v.series, v.windowFrom?.series);
  const span = v.windowFrom ? (v.now - v.windowFrom.t) / 1000 : 0;
  const windowLabel = v.windowFrom ? `last ${Math.round(span)} s` : 'since the consumers started (no earlier snapshot yet: run again, or --watch)';
  const lines: string[] = [`PIPELINE  (counts cumulative; rates and latency over: ${windowLabel})`];
  lines.push(
    `  ${pad('stage', 10)} ${lpad('consumed', 10)} ${lpad('/s', 7)} ${lpad('produced', 10)} ${lpad('sent', 9)} ${lpad('skipped', 8)} ${lpad("DLQ'd", 6)} ${lpad('retries', 7)} ${lpad('pauses', 6)} ${lpad('lag', 7)}  skipped by reason`,
  );
  const cdcTotal = v.kafka.endOffsets[v.topics.member];
  lines.push(
    `  ${pad('debezium', 10)} ${lpad('', 10)} ${lpad('', 7)} ${lpad(cdcTotal === undefined ? '—' : n(cdcTotal), 10)}   (records in ${v.topics.member})`,
  );
  for (const [stage, group] of [
    ['augmenter', 'welcome-augmenter'],
    ['emailer', 'welcome-emailer'],
  ] as const) {
    const m = { stage };
    const lag = v.kafka.lag[group];
    const reasons = labelValues(v.series, 'welcome_records_skipped_total', 'reason', m)
      .map((r) => `${r} ${n(sumOf(v.series, 'welcome_records_skipped_total', { ...m, reason: r }))}`)
      .join(', ');
    lines.push(
      `  ${pad(stage, 10)} ${lpad(n(sumOf(v.series, 'welcome_records_consumed_total', m)), 10)} ${lpad(rate(sumOf(d, 'welcome_records_consumed_total', m), span), 7)} ${lpad(n(sumOf(v.series, 'welcome_records_produced_total', m)), 10)} ${lpad(stage === 'emailer' ? n(sumOf(v.series, 'welcome_emails_sent_total', m)) : '', 9)} ${lpad(n(sumOf(v.series, 'welcome_records_skipped_total', m)), 8)} ${lpad(n(sumOf(v.series, 'welcome_records_dead_lettered_total', m)), 6)} ${lpad(n(sumOf(v.series, 'welcome_retries_total', m)), 7)} ${lpad(n(sumOf(v.series, 'welcome_partition_pauses_total', m)), 6)} ${lpad(lag ? n(lag.reduce((a, p) => a + p.lag, 0)) : '—', 7)}  ${reasons || '-'}`,
    );
  }
  const lagLine = Object.entries(v.kafka.lag)
    .map(([g, parts]) => `${g}: ${parts.map((p) => `p${p.partition}=${p.lag}`).join(' ')}`)
    .join('   ');
  if (lagLine) lines.push(`  lag per partition  ${lagLine}`);
  const dlq = [v.topics.augmenterDlq, v.topics.emailerDlq]
    .map((t) => `${t} ${v.kafka.endOffsets[t] === undefined ? '(none)' : n(v.kafka.endOffsets[t] as number)}`)
    .join('   ');
  lines.push(`  DLQ size           ${dlq}`);
  const outcomes = labelValues(v.series, 'welcome_emails_sent_total', 'outcome')
    .map((o) => `${o} ${n(sumOf(v.series, 'welcome_emails_sent_total', { outcome: o }))}`)
    .join(', ');
  if (outcomes) lines.push(`  SFMC outcomes      ${outcomes}`);

  lines.push('', `LATENCY (${windowLabel})`);
  const rows: [string, number, number[]][] = [];
  const row = (label: string, name: string, match: Record<string, string>): void => {
    const b = bucketsOf(d, name, match);
    rows.push([label, sumOf(d, `${name}_count`, match), [0.5, 0.95, 0.99].map((q) => histogramQuantile(q, b))]);
  };
  row('end to end: commit → SFMC accepted', 'welcome_end_to_end_latency_seconds', { stage: 'emailer' });
  row('commit → augmented', 'welcome_stage_latency_seconds', { stage: 'augmenter' });
  for (const target of labelValues(d, 'welcome_http_request_seconds_count', 'target')) {
    const statuses = labelValues(d, 'welcome_http_request_seconds_count', 'status', { target })
      .map((s) => [s, sumOf(d, 'welcome_http_request_seconds_count', { target, status: s })] as const)
      .filter(([, c]) => c > 0)
      .map(([s, c]) => `${s}×${n(c)}`)
      .join(' ');
    row(`HTTP ${target} (${statuses})`, 'welcome_http_request_seconds', { target });
  }
  row('batch (one fetched chunk), augmenter', 'welcome_batch_seconds', { stage: 'augmenter' });
  row('batch (one fetched chunk), emailer', 'welcome_batch_seconds', { stage: 'emailer' });
  const width = Math.max(34, ...rows.map(([label]) => label.length));
  lines.push(`  ${pad('', width)} ${lpad('n', 8)} ${lpad('p50', 8)} ${lpad('p95', 8)} ${lpad('p99', 8)}`);
  for (const [label, count, qs] of rows) lines.push(`  ${pad(label, width)} ${lpad(n(count), 8)} ${qs.map((q) => lpad(ms(q), 8)).join(' ')}`);
  lines.push("  (commit time = the change event's source time as the augmenter records it; `make bench` times members from the client's own clock)");
  if (v.down.length) lines.push('', `  metrics unreachable: ${v.down.join(', ')}`);
  if (v.kafka.error) lines.push(`  kafka: ${v.kafka.error}`);
  return lines.join('\n');
}

/** The oldest snapshot inside the window, if the counters have not gone backwards since (restart). */
export function pickWindow(history: Snapshot[], now: number, series: Series, windowS: number, minS = 10): Snapshot | undefined {
  const consumed = (s: Series): number => sumOf(s, 'welcome_records_consumed_total');
  return history
    .filter((h) => h.t >= now - windowS * 1000 && h.t <= now - minS * 1000 && consumed(h.series) <= consumed(series))
    .sort((a, b) => a.t - b.t)[0];
}

// ------------------------------------------------------------------ main
async function once(): Promise<string> {
  const env = process.env;
  const stateDir = env.STATE_DIR ?? join(__dirname, '..', '..', '.state');
  const file = join(stateDir, 'pipeline-status.json');
  const windowS = Number(env.PIPELINE_WINDOW_S ?? 300);
  const urls = (env.PIPELINE_METRICS_URLS ?? `http://127.0.0.1:${env.AUGMENTER_HTTP_PORT ?? 9464},http://127.0.0.1:${env.EMAILER_HTTP_PORT ?? 9465}`)
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  const topics = {
    member: env.MEMBER_TOPIC ?? 'cdc.loyalty.members',
    augmented: env.AUGMENTED_TOPIC ?? 'welcome.members.augmented',
    sent: env.SENT_TOPIC ?? 'welcome.sent',
    augmenterDlq: env.AUGMENTER_DLQ_TOPIC ?? 'welcome.augmenter.dlq',
    emailerDlq: env.EMAILER_DLQ_TOPIC ?? 'welcome.emailer.dlq',
  };
  const { brokers, security } = kafkaFromEnv(env, (p) => readFileSync(p, 'utf8'));
  const [{ series, down }, kafka] = await Promise.all([
    scrape(urls),
    kafkaView(
      brokers,
      Object.values(topics),
      [
        { group: env.AUGMENTER_GROUP_ID ?? 'welcome-augmenter', topic: topics.member },
        { group: env.EMAILER_GROUP_ID ?? 'welcome-emailer', topic: topics.augmented },
      ],
      security,
    ),
  ]);
  const now = Date.now();
  let history: Snapshot[] = [];
  try {
    if (existsSync(file)) history = JSON.parse(readFileSync(file, 'utf8')) as Snapshot[];
  } catch {
    history = [];
  }
  const view = renderView({ now, series, windowFrom: pickWindow(history, now, series, windowS), kafka, topics, down });
  if (down.length < urls.length) {
    // keep ~30 min of snapshots, at most one per 5 s
    history = history.filter((h) => h.t >= now - 1_800_000);
    if (!history.some((h) => now - h.t < 5_000)) history.push({ t: now, series });
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(history));
  }
  return view;
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--watch');
  if (i < 0) {
    process.stdout.write(`${await once()}\n`);
    return;
  }
  const every = Number(process.argv[i + 1] ?? 5) * 1000 || 5_000;
  for (;;) {
    const text = await once();
    process.stdout.write(`\x1b[H\x1b[2J${new Date().toISOString()}\n${text}\n`);
    await new Promise((r) => setTimeout(r, every));
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`pipeline-status: ${String(err)}\n`);
    process.exit(1);
  });
}
