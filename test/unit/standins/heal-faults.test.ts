import { mergeFaults, NO_FAULTS, takeMalformed, type Faults } from '../../../standins/dw-key-api/faults';
import { NO_HOLD, splitHoldPatch, takeHold } from '../../../standins/sfmc/faults';

test('warehouse: malformedFor answers garbage for lookups that ask for those members, every time, until cleared', () => {
  const f = mergeFaults({ ...NO_FAULTS }, { malformedFor: ['m-7'] }) as Faults;
  expect(takeMalformed(f, ['m-1', 'm-7'])).toBe(true);
  expect(takeMalformed(f, ['m-7'])).toBe(true);
  expect(takeMalformed(f, ['m-1', 'm-2'])).toBe(false);
  expect(mergeFaults(f, { malformedFor: 'm-7' })).toBe('malformedFor must be an array of member ids');
  expect(takeMalformed(mergeFaults(f, { malformedFor: [] }) as Faults, ['m-7'])).toBe(false);
});

test('SFMC: holdSends/holdMs hold the next N sends, and are split from the other fault settings', () => {
  const { hold, rest } = splitHoldPatch({ holdSends: 2, holdMs: 8000, fail429: 1 });
  expect(hold).toEqual({ holdSends: 2, holdMs: 8000 });
  expect(rest).toEqual({ fail429: 1 });
  expect(() => splitHoldPatch({ holdMs: -1 })).toThrow('holdMs must be a non-negative integer');
  const faults = { ...NO_HOLD, ...hold };
  expect([takeHold(faults), takeHold(faults), takeHold(faults)]).toEqual([8000, 8000, 0]);
});
