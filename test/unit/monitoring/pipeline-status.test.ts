/** The `make status` pipeline view's arithmetic, on the text prom-client really writes. */
import { createMetrics } from '../../../consumers/shared/metrics';
import {
  bucketsOf,
  delta,
  histogramQuantile,
  parsePrometheus,
  pickWindow,
  renderView,
  sumOf,
  toSeries,
  type Series,
} from '../../../tools/pipeline-status';

async function emailerSeries(observe: (m: ReturnType<typeof createMetrics>) => void): Promise<Series> {
  const m = createMetrics('emailer');
  observe(m);
  return toSeries(parsePrometheus(await m.registry.metrics()));
}

describe('pipeline status', () => {
  it('parses counters by label and histogram buckets from prom-client text', async () => {
    const s = await emailerSeries((m) => {
      m.consumed.inc(7);
      m.skipped.inc({ reason: 'already-sent' }, 2);
      m.skipped.inc({ reason: 'org-disabled' }, 1);
      m.endToEndSeconds.observe(0.08);
    });
    expect(sumOf(s, 'welcome_records_consumed_total', { stage: 'emailer' })).toBe(7);
    expect(sumOf(s, 'welcome_records_skipped_total')).toBe(3);
    expect(sumOf(s, 'welcome_records_skipped_total', { reason: 'org-disabled' })).toBe(1);
    const b = bucketsOf(s, 'welcome_end_to_end_latency_seconds');
    expect(b.find((x) => x.le === 0.1)?.count).toBe(1);
    expect(b.find((x) => x.le === Infinity)?.count).toBe(1);
  });

  it('estimates quantiles from buckets like PromQL histogram_quantile', () => {
    // 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, 1]
    const buckets = [
      { le: 0.1, count: 50 },
      { le: 0.5, count: 90 },
      { le: 1, count: 100 },
      { le: Infinity, count: 100 },
    ];
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1);
    expect(histogramQuantile(0.7, buckets)).toBeCloseTo(0.3);
    expect(histogramQuantile(0.95, buckets)).toBeCloseTo(0.75);
    expect(
      histogramQuantile(0.99, [
        { le: 1, count: 1 },
        { le: Infinity, count: 10 },
      ]),
    ).toBe(1);
    expect(
      histogramQuantile(0.5, [
        { le: 1, count: 0 },
        { le: Infinity, count: 0 },
      ]),
    ).toBeNaN();
  });

  it('takes percentiles over the window only: the difference of two snapshots', async () => {
    const before = await emailerSeries((m) => {
      for (let i = 0; i < 100; i++) m.endToEndSeconds.observe(20);
    });
    const now = await emailerSeries((m) => {
      for (let i = 0; i < 100; i++) m.endToEndSeconds.observe(20);
      for (let i = 0; i < 100; i++) m.endToEndSeconds.observe(0.12);
    });
    expect(histogramQuantile(0.9, bucketsOf(now, 'welcome_end_to_end_latency_seconds'))).toBeGreaterThan(10);
    expect(histogramQuantile(0.99, bucketsOf(delta(now, before), 'welcome_end_to_end_latency_seconds'))).toBeLessThanOrEqual(0.15);
  });

  it('picks the oldest snapshot inside the window, and none after a consumer restart', async () => {
    const s = (n: number): Series => ({ 'welcome_records_consumed_total{stage="emailer"}': n });
    const now = 1_000_000;
    const history = [
      { t: now - 900_000, series: s(1) },
      { t: now - 200_000, series: s(5) },
      { t: now - 60_000, series: s(8) },
      { t: now - 2_000, series: s(9) },
    ];
    expect(pickWindow(history, now, s(10), 300)?.t).toBe(now - 200_000);
    expect(pickWindow(history, now, s(3), 300)).toBeUndefined(); // counters went backwards: restarted
  });

  it('renders stages, lag, DLQ sizes and latency rows', async () => {
    const series = await emailerSeries((m) => {
      m.consumed.inc(3);
      m.sent.inc({ outcome: 'queued' }, 3);
      m.deadLettered.inc({ code: 'INVALID_EMAIL' });
      m.endToEndSeconds.observe(0.2);
    });
    const text = renderView({
      now: Date.now(),
      series,
      windowFrom: undefined,
      down: [],
      kafka: {
        endOffsets: { 'cdc.loyalty.members': 12, 'welcome.emailer.dlq': 1 },
        lag: {
          'welcome-emailer': [
            { partition: 0, lag: 4 },
            { partition: 1, lag: 0 },
          ],
        },
      },
      topics: {
        member: 'cdc.loyalty.members',
        augmented: 'welcome.members.augmented',
        sent: 'welcome.sent',
        augmenterDlq: 'welcome.augmenter.dlq',
        emailerDlq: 'welcome.emailer.dlq',
      },
    });
    expect(text).toMatch(/emailer\s+3\s/);
    expect(text).toContain('welcome-emailer: p0=4 p1=0');
    expect(text).toContain('welcome.emailer.dlq 1');
    expect(text).toMatch(/end to end: commit → SFMC accepted\s+1\s/);
    expect(text).toContain('since the consumers started');
  });
});
