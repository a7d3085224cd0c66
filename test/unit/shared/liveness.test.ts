import { createLiveness } from '../../../consumers/shared/liveness';

function clocked(stallTimeoutMs = 60_000, restartGraceMs = 30_000) {
  const clock = { t: 0 };
  const failures: string[] = [];
  const l = createLiveness({ stallTimeoutMs, restartGraceMs, now: () => clock.t });
  l.onFail((r) => failures.push(r));
  return { l, clock, failures };
}

test('a crash kafkajs will not restart from fails liveness at once', () => {
  const { l, failures } = clocked();
  l.crashed(false, 'The coordinator is not aware of this member');
  expect(l.failure()).toMatch(/crashed and will not restart: The coordinator is not aware/);
  expect(failures).toHaveLength(1);
});

test('a crash kafkajs restarts from is fine if the group is joined again within the grace, fails otherwise', () => {
  const { l, clock } = clocked();
  l.crashed(true, 'Connection timeout');
  clock.t = 20_000;
  l.joined();
  clock.t = 100_000;
  l.check();
  expect(l.failure()).toBeUndefined();
  l.crashed(true, 'Connection timeout');
  clock.t = 131_000;
  l.check();
  expect(l.failure()).toMatch(/has not re-joined/);
});

test('no commit for longer than the stall timeout while there is lag fails; no lag is never a stall', () => {
  const { l, clock, failures } = clocked();
  clock.t = 500_000;
  l.lag(0);
  clock.t = 559_000;
  l.lag(5);
  expect(l.failure()).toBeUndefined();
  l.progress();
  clock.t = 610_000;
  l.lag(5);
  expect(l.failure()).toBeUndefined();
  clock.t = 559_000 + 60_001;
  l.lag(5);
  expect(l.failure()).toMatch(/no offset committed for 60 s while the group lags 5/);
  clock.t += 1_000;
  l.lag(5);
  l.stopped();
  expect(failures).toHaveLength(1); // reported once
});

test('a consumer that stops by itself (kafkajs emits STOP before CRASH) fails unless it re-joins within the grace', () => {
  const { l, clock } = clocked();
  l.stopped();
  l.crashed(true, 'KafkaJSNumberOfRetriesExceeded');
  clock.t = 10_000;
  l.joined();
  clock.t = 100_000;
  l.check();
  expect(l.failure()).toBeUndefined();
  l.stopped();
  clock.t = 130_001;
  l.check();
  expect(l.failure()).toMatch(/stopped or crashed 30 s ago and has not re-joined/);
});
