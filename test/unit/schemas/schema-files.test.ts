/**
 * Issue 5 (1, 2): schemas/ is the source of truth. Every file parses, documents every field,
 * uses Avro-safe names and a namespace, is mapped to a subject with a level of BACKWARD or
 * stricter, and is compatible with its previous version in git under that level — so an
 * incompatible edit fails `make test` here already, before any registry is involved.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../../consumers/shared/schemas';
import { compatibilityProblems, gitVersions, lintSchema, loadSubjects, parse } from '../../../tools/schemas';

const root = projectRoot(__dirname);
const dir = join(root, 'schemas');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.avsc'))
  .sort();
const read = (file: string): unknown => JSON.parse(readFileSync(join(dir, file), 'utf8'));

test("schemas/ holds the owned topics' schemas", () => {
  expect(files).toEqual(expect.arrayContaining(['new-member-augmented.avsc', 'welcome-sent.avsc']));
});

describe.each(files)('%s', (file) => {
  test('parses with avsc, has a namespace, a doc on every field and only Avro-safe names', () => {
    expect(() => parse(read(file))).not.toThrow();
    expect(lintSchema(file, read(file))).toEqual([]);
  });

  test('is mapped to a topic in schemas/subjects.json with a level of BACKWARD or stricter', () => {
    const owned = loadSubjects(dir).owned[file];
    expect(owned).toBeDefined();
    expect(owned!.topic).toMatch(/^[a-z0-9._]+$/);
    expect(['BACKWARD', 'BACKWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE']).toContain(owned!.compatibility);
  });

  test('is compatible with its previous version in git history under that level', () => {
    const { compatibility } = loadSubjects(dir).owned[file]!;
    expect(compatibilityProblems(compatibility, read(file), gitVersions(root, join(dir, file)))).toEqual([]);
  });
});

test('the Debezium-owned member subjects get an explicit level that rejects what would break readers', () => {
  const { debezium } = loadSubjects(dir);
  expect(debezium['cdc.loyalty.members-value']).toBe('FULL');
  expect(debezium['cdc.loyalty.members-key']).toBe('FULL');
});

test('subjects.json refuses a level weaker than BACKWARD', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'subjects-'));
  writeFileSync(join(tmp, 'subjects.json'), JSON.stringify({ owned: { 'x.avsc': { topic: 'x', compatibility: 'NONE' } }, debezium: {} }));
  try {
    expect(() => loadSubjects(tmp)).toThrow(/NONE not allowed/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
