/**
 * Renders monitoring/alerts.yml for a faster clock: every duration in it — each rule's `for:`
 * and each range or subquery window in an `expr` — divided by FACTOR. The local stack's
 * Prometheus loads the result (ALERT_TIME_SCALE, default 20: `for: 2m` becomes 6 s), so a
 * live test sees a rule fire in seconds while the expressions, labels and annotations stay
 * exactly the production ones. Windows never shrink below MIN_RANGE_S so a rate() still
 * holds several 3-s scrapes. A rule marked `# alert-rules: unscaled` keeps its durations (one
 * whose fast version would fire on any idle local stack). Text in, text out.
 *
 *   node dist/tools/alert-rules.js scale monitoring/alerts.yml 20 > alerts.local.yml
 */
import { readFileSync } from 'node:fs';

const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d|w|y))+$/;
export const MIN_RANGE_S = 10;

/** Seconds in a Prometheus duration such as 5m, 1h30m, 90s. */
export function parseDuration(text: string): number {
  if (!DURATION.test(text)) throw new Error(`not a Prometheus duration: ${text}`);
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * (UNIT_S[m[2] as string] as number);
  return total;
}

const format = (seconds: number): string => (seconds === 0 ? '0s' : `${Math.max(1, Math.round(seconds))}s`);

/** A rule whose text holds this marker keeps its production durations locally too. */
export const UNSCALED_MARKER = 'alert-rules: unscaled';

export function scaleDurations(text: string, factor: number, minRangeS = MIN_RANGE_S): string {
  if (!(factor >= 1)) throw new Error(`ALERT_TIME_SCALE must be a number >= 1 (got ${factor})`);
  if (factor === 1) return text;
  // one chunk per rule (and the text before the first), so a marked rule can be left alone
  return text
    .split(/(?=^\s*- alert:)/m)
    .map((chunk) => (chunk.includes(UNSCALED_MARKER) ? chunk : scaleChunk(chunk, factor, minRangeS)))
    .join('');
}

function scaleChunk(text: string, factor: number, minRangeS: number): string {
  return (
    text
      .replace(/^(\s*for:\s*)(\S+)\s*$/gm, (_, head: string, d: string) => `${head}${format(parseDuration(d) / factor)}`)
      // [5m] and subqueries [30m:1m]; label matchers never contain brackets in our rules
      .replace(/\[(\d+(?:ms|s|m|h|d|w|y)[0-9a-z]*)(?::(\d+(?:ms|s|m|h|d|w|y)[0-9a-z]*))?\]/g, (_, range: string, step?: string) => {
        const r = format(Math.max(minRangeS, parseDuration(range) / factor));
        return step ? `[${r}:${format(Math.max(1, parseDuration(step) / factor))}]` : `[${r}]`;
      })
  );
}

if (require.main === module) {
  const [cmd, file, factor] = process.argv.slice(2);
  if (cmd !== 'scale' || !file) {
    process.stderr.write('usage: alert-rules.js scale RULES.yml FACTOR\n');
    process.exit(2);
  }
  process.stdout.write(scaleDurations(readFileSync(file, 'utf8'), Number(factor ?? '1')));
}
