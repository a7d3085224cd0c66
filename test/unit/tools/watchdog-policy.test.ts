import { loadConfig } from '../../../tools/connect-watchdog';
import {
  backoffMs,
  decide,
  emptyMemory,
  recordRestart,
  traceHead,
  type ConnectorState,
  type Memory,
  type WatchdogPolicy,
} from '../../../tools/watchdog-policy';

const policy: WatchdogPolicy = { initialBackoffMs: 5_000, maxBackoffMs: 30_000, maxRestarts: 4, windowMs: 600_000, stableMs: 120_000 };
const TRACE =
  'org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n\tat org.apache.kafka.Foo.bar(Foo.java:1)\nCaused by: io.apicurio.rest.client.error.RestClientException: Connection refused\n\tat x';

const status = (connector: string, ...tasks: string[]): ConnectorState => ({
  name: 'members-source',
  connector: { state: connector },
  tasks: tasks.map((state, id) => ({ id, state, ...(state === 'FAILED' ? { trace: TRACE } : {}) })),
});
const failed = status('RUNNING', 'FAILED');
const running = status('RUNNING', 'RUNNING');

/** Runs the watchdog's loop against a scripted list of states, restarting whenever told to. */
function simulate(states: { at: number; s: ConnectorState }[]): { kinds: string[]; memory: Memory } {
  let memory = emptyMemory();
  const kinds: string[] = [];
  for (const { at, s } of states) {
    const { decision, memory: next } = decide(policy, s, memory, at);
    memory = next;
    if (decision?.kind === 'restart') memory = recordRestart(memory, at);
    kinds.push(decision ? `${at}:${decision.kind}` : `${at}:-`);
  }
  return { kinds, memory };
}

describe('Connect watchdog policy', () => {
  test('a RUNNING connector is left alone, and so are states that are not FAILED', () => {
    for (const s of [running, status('UNASSIGNED', 'UNASSIGNED'), status('RUNNING', 'RESTARTING'), status('PAUSED', 'PAUSED')]) {
      expect(decide(policy, s, emptyMemory(), 0).decision).toBeUndefined();
    }
  });

  test('a FAILED task is restarted at once, with the first line and causes of its trace', () => {
    const { decision, memory } = decide(policy, failed, emptyMemory(), 1_000);
    expect(decision).toEqual({
      kind: 'restart',
      connector: 'members-source',
      attempt: 1,
      traces: [
        'task 0: org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler | Caused by: io.apicurio.rest.client.error.RestClientException: Connection refused',
      ],
    });
    expect(memory.failing).toBe(true);
  });

  test('a FAILED connector (not only a task) is restarted too', () => {
    expect(decide(policy, status('FAILED'), emptyMemory(), 0).decision?.kind).toBe('restart');
  });

  test('backoff doubles from the initial delay and stops at the maximum', () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffMs(policy, n))).toEqual([0, 5_000, 10_000, 20_000, 30_000, 30_000]);
  });

  test('repeated failures wait out the backoff, counted from the previous restart', () => {
    const { kinds } = simulate([
      { at: 0, s: failed }, // restart 1
      { at: 2_000, s: failed }, // 5 s not yet passed
      { at: 5_000, s: failed }, // restart 2
      { at: 14_000, s: failed }, // 10 s not yet passed
      { at: 15_000, s: failed }, // restart 3
    ]);
    expect(kinds).toEqual(['0:restart', '2000:wait', '5000:restart', '14000:wait', '15000:restart']);
  });

  test('gives up after maxRestarts within the window, stays silent, and recovers when the connector runs again', () => {
    const { kinds, memory } = simulate([
      { at: 0, s: failed },
      { at: 5_000, s: failed },
      { at: 15_000, s: failed },
      { at: 35_000, s: failed }, // 4th restart: the limit
      { at: 65_000, s: failed }, // give up
      { at: 200_000, s: failed }, // silent: no more restarts
    ]);
    expect(kinds).toEqual(['0:restart', '5000:restart', '15000:restart', '35000:restart', '65000:give-up', '200000:-']);
    expect(memory.gaveUp).toBe(true);
    const after = decide(policy, running, memory, 300_000);
    expect(after.decision).toEqual({ kind: 'recovered', connector: 'members-source', restarts: 4, gaveUp: true });
    expect(after.memory.gaveUp).toBe(false);
  });

  test('restarts older than the window no longer count', () => {
    const { kinds } = simulate([
      { at: 0, s: failed },
      { at: 5_000, s: failed },
      { at: 15_000, s: failed },
      { at: 35_000, s: failed },
      { at: 36_000, s: running },
      { at: 700_000, s: failed }, // the four restarts are more than 600 s old: a fresh start
    ]);
    expect(kinds).toEqual(['0:restart', '5000:restart', '15000:restart', '35000:restart', '36000:recovered', '700000:restart']);
  });

  test('after running stableMs without a failure, the next failure is restarted at once again, but the restarts still count toward the limit', () => {
    const { kinds } = simulate([
      { at: 0, s: failed },
      { at: 5_000, s: failed },
      { at: 15_000, s: failed },
      { at: 40_000, s: running }, // recovered after 3 restarts
      { at: 100_000, s: running },
      { at: 160_000, s: running }, // running for 120 s: stable
      { at: 170_000, s: failed }, // restarted at once: the backoff starts afresh (restart 4: the limit)
      { at: 171_000, s: running },
      { at: 172_000, s: failed }, // 4 restarts within the window, however long it ran: give up
      { at: 177_000, s: failed }, // silent
    ]);
    expect(kinds).toEqual([
      '0:restart',
      '5000:restart',
      '15000:restart',
      '40000:recovered',
      '100000:-',
      '160000:-',
      '170000:restart',
      '171000:recovered',
      '172000:give-up',
      '177000:-',
    ]);
  });

  test('a connector that fails after every run of stableMs or more is given up on, not restarted forever', () => {
    // Polled every 5 s for an hour: each restart makes it run 130 s (more than stableMs, 120 s), then it fails again.
    let memory = emptyMemory();
    let runsUntil = -1;
    const kinds: string[] = [];
    for (let t = 0; t < 3_600_000; t += 5_000) {
      const { decision, memory: next } = decide(policy, t < runsUntil ? running : failed, memory, t);
      memory = next;
      if (decision?.kind === 'restart') {
        memory = recordRestart(memory, t);
        runsUntil = t + 130_000;
      }
      if (decision && decision.kind !== 'wait') kinds.push(decision.kind);
    }
    expect(kinds.filter((k) => k === 'restart')).toHaveLength(policy.maxRestarts);
    expect(kinds[kinds.length - 1]).toBe('give-up');
    expect(memory.gaveUp).toBe(true);
  });

  test('a connector that flaps (runs a moment, fails again) still reaches the limit', () => {
    const { kinds } = simulate([
      { at: 0, s: failed },
      { at: 1_000, s: running },
      { at: 6_000, s: failed },
      { at: 7_000, s: running },
      { at: 17_000, s: failed },
      { at: 18_000, s: running },
      { at: 38_000, s: failed },
      { at: 39_000, s: running },
      { at: 69_000, s: failed },
    ]);
    expect(kinds.filter((k) => !k.endsWith('recovered'))).toEqual(['0:restart', '6000:restart', '17000:restart', '38000:restart', '69000:give-up']);
  });

  test('a restart Connect did not accept is not counted: the next poll tries again', () => {
    const first = decide(policy, failed, emptyMemory(), 0);
    expect(first.decision?.kind).toBe('restart');
    // not recorded (409 during a rebalance)
    expect(decide(policy, failed, first.memory, 2_000).decision).toMatchObject({ kind: 'restart', attempt: 1 });
  });

  test('traceHead keeps the reason, not the frames', () => {
    expect(traceHead(undefined)).toBe('(no trace)');
    expect(traceHead('a\n\tat b\nCaused by: c\n\tat d\nCaused by: e')).toBe('a | Caused by: c | Caused by: e');
  });
});

describe('Connect watchdog config', () => {
  test('defaults', () => {
    const { connect, ...rest } = loadConfig({});
    expect({ connectUrl: connect.url, ...rest }).toEqual({
      connectUrl: 'http://127.0.0.1:8083',
      httpHost: '127.0.0.1',
      httpPort: 9466,
      pollIntervalMs: 5_000,
      connectors: undefined,
      stateFile: undefined,
      policy: { initialBackoffMs: 5_000, maxBackoffMs: 60_000, maxRestarts: 10, windowMs: 86_400_000, stableMs: 300_000 },
      logLevel: 'info',
    });
  });

  test('reads every setting and names the bad variable', () => {
    const c = loadConfig({
      CONNECT_URL: 'http://connect:8083/',
      WATCHDOG_HTTP_PORT: '9270',
      WATCHDOG_CONNECTORS: 'a, b',
      WATCHDOG_MAX_RESTARTS: '3',
    });
    expect(c.connect.url).toBe('http://connect:8083');
    expect(c).toMatchObject({ httpPort: 9270, connectors: ['a', 'b'], policy: { maxRestarts: 3 } });
    expect(loadConfig({ HTTP_HOST: '0.0.0.0' }).httpHost).toBe('0.0.0.0');
    expect(() => loadConfig({ WATCHDOG_POLL_INTERVAL_MS: 'soon' })).toThrow(/WATCHDOG_POLL_INTERVAL_MS/);
    expect(() => loadConfig({ WATCHDOG_MAX_RESTARTS: '0' })).toThrow(/WATCHDOG_MAX_RESTARTS/);
    expect(() => loadConfig({ CONNECT_URL: 'connect:8083' })).toThrow(/CONNECT_URL/);
  });
});
