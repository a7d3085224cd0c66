/** The benchmark's own arithmetic: percentiles, "bounded lag" slope, bottleneck location, chart. */
import { latencyChart } from '../../../bench/lib/chart';
import { locate, type StepResult } from '../../../bench/lib/ramp';
import { percentile, slope, summarize } from '../../../bench/lib/stats';

const step = (over: Partial<StepResult>): StepResult => ({
  offered: 2000,
  inserted: 30000,
  achievedInsertRate: 2000,
  delivered: 20000,
  deliveredRate: 1333,
  backlogEnd: 10000,
  backlogSlopePerS: 600,
  sustained: false,
  why: '',
  latency: summarize([1]),
  drainedMs: undefined,
  cpuPct: { emailer: 97, augmenter: 40 },
  machineCpuPct: 70,
  backlogByHop: { 'DB (not inserted)': 0, 'Debezium (committed, not in topic)': 10, 'augmenter (lag)': 50, 'emailer (lag)': 9000 },
  timeSplit: {
    augmenter: { batchS: 10, httpS: 2, records: 1, retries: 0, pauses: 0 },
    emailer: { batchS: 10, httpS: 1, records: 1, retries: 0, pauses: 0 },
  },
  ...over,
});

describe('bench arithmetic', () => {
  it('uses nearest-rank percentiles', () => {
    const s = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(s, 50)).toBe(50);
    expect(percentile(s, 99)).toBe(99);
    expect(summarize(s)).toMatchObject({ n: 100, p50: 50, p95: 95, p99: 99, max: 100 });
  });

  it('measures backlog growth as a least-squares slope', () => {
    expect(
      slope([
        { x: 0, y: 10 },
        { x: 1, y: 110 },
        { x: 2, y: 210 },
      ]),
    ).toBeCloseTo(100);
    expect(
      slope([
        { x: 0, y: 50 },
        { x: 1, y: 40 },
        { x: 2, y: 60 },
      ]),
    ).toBeCloseTo(5);
  });

  it('names the hop holding the backlog, and its HTTP dependency when that is what it waits on', () => {
    expect(locate(step({})).bottleneck).toBe('emailer');
    expect(
      locate(
        step({
          timeSplit: {
            augmenter: { batchS: 1, httpS: 0, records: 1, retries: 0, pauses: 0 },
            emailer: { batchS: 10, httpS: 8, records: 1, retries: 0, pauses: 0 },
          },
        }),
      ).bottleneck,
    ).toBe('SFMC stand-in (emailer waits on sends)');
    expect(locate(step({ backlogByHop: { 'DB (not inserted)': 5000, 'emailer (lag)': 10 }, machineCpuPct: 97 })).bottleneck).toBe(
      'DB; machine CPU-bound (97% of all cores)',
    );
  });

  it('draws an SVG with one curve per path and one line per ramp', () => {
    const svg = latencyChart(
      't',
      [
        { label: 'cdc', color: '#00f', samplesMs: [50, 80, 120] },
        { label: 'poller <20 s>', color: '#f00', samplesMs: [9000, 15000] },
      ],
      [
        {
          label: 'x1',
          color: '#00f',
          steps: [
            { offered: 500, delivered: 500, sustained: true },
            { offered: 1000, delivered: 700, sustained: false },
          ],
        },
      ],
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    expect(svg).toContain('poller &lt;20 s&gt;');
  });
});
