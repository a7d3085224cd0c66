import { mergeFaults, NO_FAULTS, takeMalformed, type Faults } from '../../../standins/dw-key-api/faults';
import { NO_EXTRA, splitExtraPatch, takeAnswer, takeHold } from '../../../standins/sfmc/faults';

test('warehouse: malformedFor answers garbage for lookups that ask for those members, every time, until cleared', () => {
  const f = mergeFaults({ ...NO_FAULTS }, { malformedFor: ['m-7'] }) as Faults;
  expect(takeMalformed(f, ['m-1', 'm-7'])).toBe(true);
  expect(takeMalformed(f, ['m-7'])).toBe(true);
  expect(takeMalformed(f, ['m-1', 'm-2'])).toBe(false);
  expect(mergeFaults(f, { malformedFor: 'm-7' })).toBe('malformedFor must be an array of member ids');
  expect(takeMalformed(mergeFaults(f, { malformedFor: [] }) as Faults, ['m-7'])).toBe(false);
});

test('SFMC: holdSends/holdMs hold the next N sends, and are split from the other fault settings', () => {
  const { extra, rest } = splitExtraPatch({ holdSends: 2, holdMs: 8000, fail429: 1 });
  expect(extra).toEqual({ holdSends: 2, holdMs: 8000 });
  expect(rest).toEqual({ fail429: 1 });
  expect(() => splitExtraPatch({ holdMs: -1 })).toThrow('holdMs must be a non-negative integer');
  const faults = { ...NO_EXTRA, ...extra };
  expect([takeHold(faults), takeHold(faults), takeHold(faults)]).toEqual([8000, 8000, 0]);
});

test('SFMC: an answer row is served to the requests of its call, to answerFor recipients only, answerCount times', () => {
  const { extra } = splitExtraPatch({ answer: ['send.refused', 'token.refused'], answerFor: ['bad@example.com'], answerCount: 2 });
  const faults = { ...NO_EXTRA, ...extra };
  const good = { recipients: [{ to: 'a@example.com', messageKey: 'k1' }] };
  const bad = {
    recipients: [
      { to: 'a@example.com', messageKey: 'k1' },
      { to: 'bad@example.com', messageKey: 'k2' },
    ],
  };
  expect(takeAnswer(faults, 'sfmc-send', ['k1'], good)).toBeUndefined();
  expect(takeAnswer(faults, 'sfmc-send', ['k1', 'k2'], bad)).toMatchObject({ status: 400 });
  expect(takeAnswer(faults, 'sfmc-status', ['k2'], undefined)).toBeUndefined(); // no status row asked for
  expect(takeAnswer(faults, 'sfmc-send', ['k1', 'k2'], bad)).toMatchObject({ status: 400 });
  expect(takeAnswer(faults, 'sfmc-send', ['k1', 'k2'], bad)).toBeUndefined(); // answerCount used up: cleared
  expect(() => splitExtraPatch({ answer: 'send.nope' })).toThrow(/answer must be a row id/);
  expect(() => splitExtraPatch({ answer: ['send.403', 'send.404'] })).toThrow(/two rows of the same call/);
});
