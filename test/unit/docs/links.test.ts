import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkDocs, docFiles, headingAnchors, makeTargets, makefileTargets, relativeLinks } from './doc-check';

const ROOT = resolve(__dirname, '..', '..', '..');

describe('the docs of this repository', () => {
  test('cover the README and every page in docs/ (drafts docs/incoming-*.md left out)', () => {
    const files = docFiles(ROOT).map((f) => f.slice(ROOT.length + 1));
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docs/architecture.md', 'docs/operations.md', 'docs/contracts/sfmc.md']));
    expect(files.filter((f) => /^docs\/incoming-/.test(f))).toEqual([]);
  });

  test('every relative link, heading anchor and `make <target>` they name exists', () => {
    expect(checkDocs(ROOT).map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([]);
  });
});

describe('the docs check itself', () => {
  test('makes GitHub anchors: punctuation and code marks dropped, spaces to hyphens, repeats numbered', () => {
    const anchors = headingAnchors(
      [
        '# Fault injection (`make test-faults`)',
        '## What it enforces (Apicurio 3.3.3)',
        '## Setup',
        '## Setup',
        '```',
        '# not a heading',
        '```',
      ].join('\n'),
    );
    expect([...anchors]).toEqual(['fault-injection-make-test-faults', 'what-it-enforces-apicurio-333', 'setup', 'setup-1']);
  });

  test('finds relative links in prose only, never in code or external ones', () => {
    const text = [
      'see [a](a.md#x) and ![b](img/b.svg)',
      '`[c](c.md)` <https://example.com> [d](https://example.com)',
      '```',
      '[e](e.md)',
      '```',
    ].join('\n');
    expect(relativeLinks(text)).toEqual([
      { line: 1, target: 'a.md#x' },
      { line: 1, target: 'img/b.svg' },
    ]);
  });

  test('finds make targets in code, not in prose ("make that harmless")', () => {
    const text = [
      '`make up SERVICES="kafka"` and `FAULTS_PROFILE=ci make test-faults`; messageKeys make that harmless',
      '```bash',
      'make up && make connectors',
      '```',
    ].join('\n');
    expect(makeTargets(text).map((t) => t.target)).toEqual(['up', 'test-faults', 'up', 'connectors']);
  });

  test('reads Makefile targets, not variable assignments', () => {
    expect([
      ...makefileTargets('X := 1\nY ?= 2\n.PHONY: a b\na b: c ## both\nnode_modules/.package-lock.json: package.json\n\tcmd: not a target\n'),
    ]).toEqual(['a', 'b', 'node_modules/.package-lock.json']);
  });

  test('reports a missing file, a missing anchor and an unknown make target', () => {
    const root = mkdtempSync(join(tmpdir(), 'docs-check-'));
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'Makefile'), 'demo:\n\ttrue\n');
    writeFileSync(join(root, 'docs', 'a.md'), '# A\n\n## Present\n');
    writeFileSync(join(root, 'docs', 'incoming-x.md'), '[ignored](nowhere.md)\n');
    writeFileSync(
      join(root, 'README.md'),
      [
        '# R',
        '[ok](docs/a.md#present) [self](#r)',
        '[gone](docs/b.md)',
        '[bad anchor](docs/a.md#absent) [bad self](#nope)',
        'run `make demo`, then `make deploy`',
      ].join('\n'),
    );
    expect(checkDocs(root).map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([
      'README.md:3: link to a missing file: docs/b.md',
      'README.md:4: no heading for the anchor #absent in docs/a.md',
      'README.md:4: no heading for the anchor #nope in this file',
      'README.md:5: `make deploy`: no such target in the Makefile',
    ]);
  });
});
