/**
 * Metrics this repo exports that no test can import as objects: the ones a process declares
 * inline in its wiring (starting it is the only way to build them) and the ones
 * `make reconcile` writes to its node_exporter text file. Read from the source, so a rename
 * there fails the tests that check alerts and the dashboard against what really exists.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

export interface Declared {
  name: string;
  type: string;
  labels: string[];
}

/** `new Counter|Gauge|Histogram({ name: '...', ..., labelNames: [...], registers: ... })` in a source file. */
export function declaredIn(file: string): Declared[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name: '([a-z_]+)'[\s\S]*?(?:labelNames: \[([^\]]*)\][\s\S]*?)?registers:/g)].map(
    (m) => ({
      name: m[2] as string,
      type: (m[1] as string).toLowerCase(),
      labels: [...(m[3] ?? '').matchAll(/'([a-z_]+)'/g)].map((l) => l[1] as string),
    }),
  );
}

/** The `# TYPE name type` lines of tools/reconcile.ts's text file, with the labels its samples carry. */
export function reconcileTextfileMetrics(): Declared[] {
  const text = readFileSync(join(ROOT, 'tools/reconcile.ts'), 'utf8');
  return [...text.matchAll(/'# TYPE ([a-z_]+) (gauge|counter)'/g)].map((m) => {
    const name = m[1] as string;
    // the template line that writes its samples, e.g. `welcome_reconcile_members{org="${org}",cause="${cause}"} ${v}`
    const sample = new RegExp(`\`${name}\\{(.*)$`, 'm').exec(text);
    return { name, type: m[2] as string, labels: [...(sample?.[1] ?? '').matchAll(/([a-z_]+)="/g)].map((l) => l[1] as string) };
  });
}
