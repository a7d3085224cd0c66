/**
 * The Welcome configuration as shipped guards every organization (issue 20, item 3), and the
 * configuration the suites and the bench run with differs from it only by the guards.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOrgConfig } from '../../../consumers/emailer/org-config';

const read = (file: string) => parseOrgConfig(readFileSync(join(__dirname, '..', '..', '..', 'config', file), 'utf8'), file);

test('config/welcome-orgs.json gives every organization a ceiling per minute and per transaction', () => {
  const orgs = read('welcome-orgs.json');
  for (const [org, w] of orgs) {
    expect({ org, maxPerMinute: w.maxPerMinute, maxPerTransaction: w.maxPerTransaction }).toEqual({
      org,
      maxPerMinute: expect.any(Number),
      maxPerTransaction: expect.any(Number),
    });
  }
});

test('the suites and the bench run the same organizations with the guards off, and nothing else changed', () => {
  const shipped = read('welcome-orgs.json');
  const unguarded = read('welcome-orgs.unguarded.json');
  expect([...unguarded.keys()]).toEqual([...shipped.keys()]);
  for (const [org, w] of unguarded) {
    expect(w.maxPerMinute).toBeUndefined();
    expect(w.maxPerTransaction).toBeUndefined();
    const { maxPerMinute: _m, maxPerTransaction: _t, ...rest } = shipped.get(org) ?? {};
    expect(w).toEqual(rest);
  }
});
