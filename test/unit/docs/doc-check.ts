/**
 * The docs check behind test/unit/docs/links.test.ts: relative links, heading anchors and
 * `make <target>` names in the Markdown docs. Pure functions over file text, so the checker
 * itself is tested on deliberate breaks.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export interface Problem {
  file: string;
  line: number;
  message: string;
}

/** Lines outside fenced code blocks, with inline code spans blanked out (links there are not links). */
function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((raw, i) => {
    const marker = /^\s*(```+|~~~+)/.exec(raw)?.[1];
    if (marker) {
      if (fence === undefined) fence = marker[0];
      else if (marker[0] === fence) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line: i + 1, text: raw.replace(/`[^`]*`/g, (m) => ' '.repeat(m.length)) });
  });
  return out;
}

/** Code: fenced blocks line by line, and inline code spans. */
function codeFragments(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((raw, i) => {
    const marker = /^\s*(```+|~~~+)/.exec(raw)?.[1];
    if (marker) {
      if (fence === undefined) fence = marker[0];
      else if (marker[0] === fence) fence = undefined;
      return;
    }
    if (fence !== undefined) out.push({ line: i + 1, text: raw });
    else for (const m of raw.matchAll(/`([^`]+)`/g)) out.push({ line: i + 1, text: m[1] ?? '' });
  });
  return out;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence: string | undefined;
  for (const raw of text.split('\n')) {
    const marker = /^\s*(```+|~~~+)/.exec(raw)?.[1];
    if (marker) {
      if (fence === undefined) fence = marker[0];
      else if (marker[0] === fence) fence = undefined;
      continue;
    }
    const heading = fence === undefined ? /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(raw)?.[1] : undefined;
    if (heading === undefined) continue;
    const plain = heading
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link in a heading keeps its text
      .replace(/<[^>]+>/g, '');
    const slug = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Inline links and images `[text](target)` in prose; external (scheme) targets are left out. */
export function relativeLinks(text: string): { line: number; target: string }[] {
  const links: { line: number; target: string }[] = [];
  for (const { line, text: prose } of proseLines(text)) {
    for (const m of prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
      links.push({ line, target });
    }
  }
  return links;
}

/** `make <target>` named in code (fenced blocks and inline spans). */
export function makeTargets(text: string): { line: number; target: string }[] {
  const found: { line: number; target: string }[] = [];
  for (const { line, text: code } of codeFragments(text)) {
    for (const m of code.matchAll(/(?:^|[\s;&|(])make\s+(?:-[a-zA-Z]\s+)*([a-z][a-z0-9_-]*)(?![=\w])/g)) found.push({ line, target: m[1] ?? '' });
  }
  return found;
}

/** Targets a Makefile defines (`name:` or `a b:` at the start of a line, not `name :=`). */
export function makefileTargets(makefile: string): Set<string> {
  const targets = new Set<string>();
  for (const m of makefile.matchAll(/^([a-zA-Z0-9_.%/ -]+?)\s*:(?![=:])/gm)) {
    for (const t of (m[1] ?? '').split(/\s+/)) if (t && !t.startsWith('.')) targets.add(t);
  }
  return targets;
}

/** Every problem in one Markdown file, given a way to read the files it links to. */
export function checkFile(file: string, text: string, targets: Set<string>, read: (path: string) => string | undefined): Problem[] {
  const problems: Problem[] = [];
  for (const { line, target } of relativeLinks(text)) {
    const [pathPart = '', anchor] = target.split('#', 2) as [string, string | undefined];
    const path = pathPart === '' ? file : resolve(dirname(file), decodeURIComponent(pathPart));
    if (pathPart !== '' && !existsSync(path)) {
      problems.push({ file, line, message: `link to a missing file: ${target}` });
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (!path.endsWith('.md')) continue; // anchors into code (#L10) are GitHub's, not ours
    const linked = pathPart === '' ? text : read(path);
    if (linked !== undefined && !headingAnchors(linked).has(anchor.toLowerCase())) {
      problems.push({ file, line, message: `no heading for the anchor #${anchor} in ${pathPart || 'this file'}` });
    }
  }
  for (const { line, target } of makeTargets(text)) {
    if (!targets.has(target)) problems.push({ file, line, message: `\`make ${target}\`: no such target in the Makefile` });
  }
  return problems;
}

/**
 * The Markdown this repository keeps: README.md, docs/**, schemas/, bench/results/. Left out:
 * docs/incoming-*.md, drafts from other branches that are folded into the pages at merge.
 */
export function docFiles(root: string): string[] {
  const files = [join(root, 'README.md')];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.md') && !(dirname(path) === join(root, 'docs') && name.startsWith('incoming-'))) files.push(path);
    }
  };
  for (const dir of ['docs', 'schemas', join('bench', 'results')]) walk(join(root, dir));
  return files;
}

export function checkDocs(root: string): Problem[] {
  const targets = makefileTargets(readFileSync(join(root, 'Makefile'), 'utf8'));
  const read = (path: string): string | undefined => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  return docFiles(root).flatMap((file) =>
    checkFile(file, readFileSync(file, 'utf8'), targets, read).map((p) => ({ ...p, file: relative(root, p.file) })),
  );
}
