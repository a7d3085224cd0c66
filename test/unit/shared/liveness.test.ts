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
  l.joined([0]);
  clock.t = 100_000;
  l.check();
  expect(l.failure()).toBeUndefined();
  l.crashed(true, 'Connection timeout');
  clock.t = 131_000;
  l.check();
  expect(l.failure()).toMatch(/has not re-joined/);
});

test('owned partitions with records waiting and no attempt finished for longer than the stall timeout fail; no lag of ours is never a stall', () => {
  const { l, clock, failures } = clocked();
  l.joined([0, 1]);
  clock.t = 500_000;
  l.lag([{ partition: 0, lag: 0 }]);
  clock.t = 559_000;
  l.lag([{ partition: 0, lag: 5 }]);
  expect(l.failure()).toBeUndefined();
  l.attempted(); // a chunk attempt ended, even in a pause: alive
  clock.t = 610_000;
  l.lag([{ partition: 0, lag: 5 }]);
  expect(l.failure()).toBeUndefined();
  clock.t = 559_000 + 60_001;
  l.lag([
    { partition: 0, lag: 5 },
    { partition: 4, lag: 99 },
  ]);
  expect(l.failure()).toMatch(/no chunk attempt finished for 60 s while partition\(s\) 0 of this process lag 5/);
  clock.t += 1_000;
  l.lag([{ partition: 0, lag: 5 }]);
  l.stopped();
  expect(failures).toHaveLength(1); // reported once
});

test("a replica that owns no partition (more replicas than partitions) is never stalled by the group's lag", () => {
  const { l, clock } = clocked();
  l.joined([]);
  for (let i = 1; i <= 10; i++) {
    clock.t = i * 60_000;
    l.lag([
      { partition: 0, lag: 500 },
      { partition: 1, lag: 700 },
    ]);
  }
  expect(l.failure()).toBeUndefined();
});

test('a replica paused by a throttle or a setup hold keeps finishing attempts: alive however long it waits', () => {
  const { l, clock } = clocked();
  l.joined([2]);
  for (let t = 0; t <= 600_000; t += 10_000) {
    clock.t = t;
    l.attempted(); // each retry of the held chunk ends in a pause
    l.lag([{ partition: 2, lag: 40 }]);
  }
  expect(l.failure()).toBeUndefined();
});

test('a consumer that stops by itself (kafkajs emits STOP before CRASH) fails unless it re-joins within the grace', () => {
  const { l, clock } = clocked();
  l.stopped();
  l.crashed(true, 'KafkaJSNumberOfRetriesExceeded');
  clock.t = 10_000;
  l.joined([0]);
  clock.t = 100_000;
  l.check();
  expect(l.failure()).toBeUndefined();
  l.stopped();
  clock.t = 130_001;
  l.check();
  expect(l.failure()).toMatch(/stopped or crashed 30 s ago and has not re-joined/);
});
