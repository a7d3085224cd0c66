/** The ramp's verdict per step (bench/lib/ramp.ts unsustained): what counts as falling behind. */
import { drainedLate, nextRate, unsustained } from '../../../bench/lib/ramp';

const step = (o: Partial<Parameters<typeof unsustained>[0]>) =>
  unsustained({ rate: 1000, achievedRate: 1000, backlogSlopePerS: 0, backlogEnd: 0, ...o });

test('kept up: no reason', () => expect(step({ backlogSlopePerS: 10, backlogEnd: 80 })).toEqual([]));
test('a slope over a backlog of a few chunks is the collector polling, not a stage behind', () =>
  expect(step({ backlogSlopePerS: 50, backlogEnd: 134 })).toEqual([]));
test('a backlog growing past half a second of inflow is falling behind', () =>
  expect(step({ backlogSlopePerS: 283, backlogEnd: 900 })).toEqual(['backlog grew 283/s']));
test('a backlog over 1.5 s of inflow at the end, and inserts short of the rate, are reasons too', () =>
  expect(step({ achievedRate: 900, backlogSlopePerS: 283, backlogEnd: 3628 })).toEqual([
    'inserts reached only 900/s',
    'backlog grew 283/s',
    '3628 not yet sent at step end (> 1.5 s of inflow)',
  ]));

test('a step that delivered under 97 % of what it inserted is not sustained (4,000/s delivering 3,644/s once passed)', () => {
  expect(step({ rate: 4000, achievedRate: 4000, inserted: 60_000, delivered: 54_660 })).toEqual([
    'delivered 54660 of 60000 inserted during the step (91 % < 97 %)',
  ]);
  expect(step({ inserted: 15_000, delivered: 14_600 })).toEqual([]);
});

test('a backlog that drains only after the next few seconds disqualifies the step; one that never drains too', () => {
  expect(drainedLate(800, 3_000)).toBeUndefined();
  expect(drainedLate(7_400, 3_000)).toBe('backlog drained only 7.4 s after the step (> 3 s)');
  expect(drainedLate(undefined, 3_000)).toBe('did not drain');
});

test('past the configured rates the ramp goes on ×1.5 until a step fails, up to its cap', () => {
  expect(nextRate([500, 1000], 0, 32_000)).toBe(1000);
  expect(nextRate([500, 4000], 1, 32_000)).toBe(6000);
  expect(nextRate([500, 30_000], 1, 32_000)).toBeUndefined();
  expect(nextRate([100], 0, 0)).toBeUndefined(); // the smoke profile does not extend
});
