/** The ramp's verdict per step (bench/lib/ramp.ts unsustained): what counts as falling behind. */
import { unsustained } from '../../../bench/lib/ramp';

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
