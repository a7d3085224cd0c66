/** The A/B bench's arms with plain values: parsing, what a switch restarts, the interleaved order. */
import { connectorChanges, consumersToRestart, describeArm, parseArm, schedule } from '../../../bench/lib/ab-arms';

test('an arm is target:KEY=VALUE settings separated by ;', () => {
  const a = parseArm('A', 'emailer:SFMC_CONCURRENT_REQUESTS=1; connector:poll.interval.ms=500 ;augmenter:X=');
  expect(a.settings).toEqual({ emailer: { SFMC_CONCURRENT_REQUESTS: '1' }, connector: { 'poll.interval.ms': '500' }, augmenter: { X: '' } });
  expect(describeArm(parseArm('B', ''))).toBe('(defaults)');
  expect(() => parseArm('A', 'mailer:X=1')).toThrow('BENCH_AB_A: "mailer:X=1" is not target:KEY=VALUE');
  expect(() => parseArm('B', 'emailer:X')).toThrow('BENCH_AB_B');
});

test('a switch restarts only the consumers whose settings differ, and PUTs the connector only when its keys differ', () => {
  const a = parseArm('A', 'emailer:SFMC_CONCURRENT_REQUESTS=1');
  const b = parseArm('B', 'connector:poll.interval.ms=500');
  expect(consumersToRestart(undefined, a)).toEqual(['augmenter', 'emailer']);
  expect(consumersToRestart(a, b)).toEqual(['emailer']);
  expect(consumersToRestart(b, b)).toEqual([]);
  expect(connectorChanges(a, b)).toBe(true);
  expect(connectorChanges(a, parseArm('A', 'emailer:Y=2'))).toBe(false);
});

test('the arms alternate each `rounds` times, the order flipped every round (A, B, B, A, …) so a steady load trend cancels', () => {
  const arms = [parseArm('A', ''), parseArm('B', '')] as const;
  expect(schedule(arms, 3).map((p) => `${p.arm.name}${p.round}`)).toEqual(['A1', 'B1', 'B2', 'A2', 'A3', 'B3']);
});
