/**
 * filterKnownWarnings in a real Node process: kafkajs's negative timer warning
 * (TimeoutNegativeWarning, kafkajs #1751) is printed once, every other warning as Node prints it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

test('TimeoutNegativeWarning once, other warnings each time', () => {
  const script = `
    require(${JSON.stringify(join(__dirname, '../../../consumers/shared/process'))}).filterKnownWarnings();
    setTimeout(() => undefined, -5); // Node 24 warns here; Node 20 does not
    setTimeout(() => undefined, -5);
    process.emitWarning('a negative timer', 'TimeoutNegativeWarning');
    process.emitWarning('something else', 'DeprecationWarning');
    process.emitWarning('something else again', 'DeprecationWarning');
  `;
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  expect(r.status).toBe(0);
  const lines = r.stderr.split('\n').filter(Boolean);
  expect(lines.filter((l) => l.includes('TimeoutNegativeWarning'))).toHaveLength(1);
  expect(lines.find((l) => l.includes('TimeoutNegativeWarning'))).toContain('kafkajs #1751');
  expect(lines.filter((l) => l.includes('DeprecationWarning'))).toEqual([
    expect.stringContaining('something else'),
    expect.stringContaining('something else again'),
  ]);
});
