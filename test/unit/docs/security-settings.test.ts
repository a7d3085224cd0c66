/**
 * Issue 13's done-when: the production checklist lists every security setting with its reason.
 * Every such setting of the two env examples must appear in the "Every security setting" table
 * of docs/deploying.md (a name added to an example without a line there fails here).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');
const names = (file: string): string[] => [...read(file).matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] as string);
// what makes a setting security-relevant: credentials, TLS/SASL, principals, secret locations
const SECURITY = /SSL|SASL|JAAS|PASSWORD|TOKEN|SECRET|_USER$|USERNAME|OVERLAYS|REQUIRE/;

const deploying = read('docs/deploying.md');
const start = deploying.indexOf('### Every security setting, and why');
const table = deploying.slice(start, deploying.indexOf('\n### ', start + 1));

test('the table exists', () => {
  expect(start).toBeGreaterThan(0);
  expect(table.split('\n').filter((l) => l.startsWith('| `')).length).toBeGreaterThan(10);
});

test.each(['.env.example', 'deploy/secured.env.example'])('every security setting of %s is in the table, with a reason', (file) => {
  const wanted = [...new Set(names(file).filter((n) => SECURITY.test(n)))];
  expect(wanted.length).toBeGreaterThan(5);
  // a name is covered by its own mention or by a family written as `PREFIX_*` / `…/_SUFFIX`
  const row = (n: string): string | undefined =>
    table.split('\n').find((l) => {
      if (!l.startsWith('|')) return false;
      const first = l.split('|')[1] ?? '';
      if (first.includes(`\`${n}\``)) return true;
      return [...first.matchAll(/`([A-Z_]+)_\*`/g)].some((m) => n.startsWith(`${m[1]}_`));
    });
  const missing = wanted.filter((n) => row(n) === undefined);
  expect({ file, missing }).toEqual({ file, missing: [] });
  for (const n of wanted) expect({ n, reason: (row(n)?.split('|')[3] ?? '').trim().length > 10 }).toEqual({ n, reason: true });
});
