/**
 * The compatibility checker behind `make schemas` / `make test`: it must catch an
 * incompatible edit and say which field broke in which direction, and it must let the
 * evolutions we rely on through (a nullable field with a default, a promoted type).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSchema } from '../../../consumers/shared/schemas';
import { check, compatibilityProblems, lintSchema } from '../../../tools/schemas';

type Field = { name: string; type: unknown; default?: unknown; doc?: string; aliases?: string[] };
type RecordSchema = { type: 'record'; name: string; namespace?: string; doc?: string; fields: Field[] };

const augmented = (): RecordSchema => JSON.parse(JSON.stringify(loadSchema('new-member-augmented.avsc'))) as RecordSchema;
const withFields = (s: RecordSchema, edit: (fields: Field[]) => Field[]): RecordSchema => ({ ...s, fields: edit(s.fields) });

describe('an incompatible edit is caught, naming the field', () => {
  test('a field added without a default breaks BACKWARD (old data has no value for it)', () => {
    const next = withFields(augmented(), (f) => [...f, { name: 'loyalty_tier', type: 'string', doc: 'Tier.' }]);
    const problems = compatibilityProblems('BACKWARD', next, [augmented()]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^BACKWARD .*welcome\.v1\.NewMemberAugmented\.loyalty_tier: added without a default/);
  });

  test('a type change that is no promotion breaks BACKWARD', () => {
    const next = withFields(augmented(), (f) => f.map((x) => (x.name === 'email' ? { ...x, type: 'int' } : x)));
    expect(compatibilityProblems('BACKWARD', next, [augmented()]).join('\n')).toMatch(/NewMemberAugmented\.email: type changed from string to int/);
  });

  test('a type change inside a union names the field and the type', () => {
    const next = withFields(augmented(), (f) => f.map((x) => (x.name === 'locale' ? { ...x, type: ['null', 'int'] } : x)));
    expect(compatibilityProblems('BACKWARD', next, [augmented()]).join('\n')).toMatch(
      /NewMemberAugmented\.locale: a string value .* no matching type/,
    );
  });

  test('a rename without an alias breaks BACKWARD; with an alias it reads old data', () => {
    const renamed = withFields(augmented(), (f) => f.map((x) => (x.name === 'email' ? { ...x, name: 'email_address' } : x)));
    expect(compatibilityProblems('BACKWARD', renamed, [augmented()]).join('\n')).toMatch(
      /NewMemberAugmented\.email_address: added without a default/,
    );
    const aliased = withFields(augmented(), (f) => f.map((x) => (x.name === 'email' ? { ...x, name: 'email_address', aliases: ['email'] } : x)));
    expect(compatibilityProblems('BACKWARD', aliased, [augmented()])).toEqual([]);
  });

  test('removing a required field passes BACKWARD but breaks FULL, naming it in the FORWARD direction', () => {
    const next = withFields(augmented(), (f) => f.filter((x) => x.name !== 'subscriber_key'));
    expect(compatibilityProblems('BACKWARD', next, [augmented()])).toEqual([]);
    const problems = compatibilityProblems('FULL', next, [augmented()]);
    expect(problems).toEqual([
      expect.stringMatching(/^FORWARD .*NewMemberAugmented\.subscriber_key: removed or renamed, but the previous version requires it/),
    ]);
  });

  test('int → long is a promotion for BACKWARD but not for FORWARD', () => {
    const old: RecordSchema = { type: 'record', name: 'R', namespace: 'n', doc: 'd', fields: [{ name: 'n', type: 'int', doc: 'd' }] };
    const next = withFields(old, () => [{ name: 'n', type: 'long', doc: 'd' }]);
    expect(compatibilityProblems('BACKWARD', next, [old])).toEqual([]);
    expect(compatibilityProblems('FULL', next, [old]).join('\n')).toMatch(/FORWARD .*n\.R\.n: type changed from long to int/);
  });

  test('an enum that drops a symbol breaks BACKWARD, naming the symbol', () => {
    const e = (symbols: string[]): RecordSchema => ({
      type: 'record',
      name: 'R',
      namespace: 'n',
      doc: 'd',
      fields: [{ name: 'kind', doc: 'd', type: { type: 'enum', name: 'Kind', symbols } }],
    });
    expect(compatibilityProblems('BACKWARD', e(['A']), [e(['A', 'B'])]).join('\n')).toMatch(/n\.R\.kind: enum symbol\(s\) B written but unknown/);
  });

  test('TRANSITIVE levels look at every earlier version, the plain ones only at the last', () => {
    const v1 = withFields(augmented(), (f) => [...f, { name: 'x', type: 'string', doc: 'x' }]);
    const v2 = augmented();
    const v3 = withFields(augmented(), (f) => [...f, { name: 'x', type: 'int', default: 0, doc: 'x' }]);
    expect(compatibilityProblems('BACKWARD', v3, [v2, v1])).toEqual([]);
    expect(compatibilityProblems('BACKWARD_TRANSITIVE', v3, [v2, v1]).join('\n')).toMatch(
      /version -2.*NewMemberAugmented\.x: type changed from string to int/,
    );
  });
});

describe('the evolutions we rely on pass', () => {
  test('a nullable field with default null passes FULL', () => {
    const next = withFields(augmented(), (f) => [
      ...f,
      { name: 'consent_source', type: ['null', 'string'], default: null, doc: 'Where consent came from.' },
    ]);
    expect(compatibilityProblems('FULL', next, [augmented()])).toEqual([]);
  });

  test('adding marketing_opt_in (the current file) is BACKWARD-compatible with the version before it', () => {
    const before = withFields(augmented(), (f) => f.filter((x) => x.name !== 'marketing_opt_in'));
    expect(compatibilityProblems('BACKWARD', augmented(), [before])).toEqual([]);
  });
});

describe('lint', () => {
  test.each([
    [
      'a field without doc',
      withFields(augmented(), (f) => [...f, { name: 'x', type: ['null', 'string'], default: null }]),
      /NewMemberAugmented\.x has no doc/,
    ],
    [
      'a hyphenated field name',
      withFields(augmented(), (f) => [...f, { name: 'bad-name', type: 'string', doc: 'd' }]),
      /avsc cannot parse it|bad-name/,
    ],
    ['no namespace', { ...augmented(), namespace: undefined }, /needs a namespace/],
    ['a record without doc', { ...augmented(), doc: undefined }, /record NewMemberAugmented has no doc/],
  ])('catches %s', (_what, schema, message) => {
    expect(lintSchema('x.avsc', schema).join('\n')).toMatch(message);
  });
});

describe('check against git history (what `make schemas` runs)', () => {
  const git = (cwd: string, ...args: string[]): string =>
    execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', '-c', 'commit.gpgsign=false', ...args], { cwd, encoding: 'utf8' });

  const made: string[] = [];
  afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  function repo(): { root: string; schemasDir: string; file: string } {
    const root = mkdtempSync(join(tmpdir(), 'schemas-git-'));
    made.push(root);
    const schemasDir = join(root, 'schemas');
    mkdirSync(schemasDir);
    git(root, 'init', '-q');
    writeFileSync(
      join(schemasDir, 'subjects.json'),
      JSON.stringify({ owned: { 'm.avsc': { topic: 'm', compatibility: 'BACKWARD' } }, debezium: {} }),
    );
    return { root, schemasDir, file: join(schemasDir, 'm.avsc') };
  }
  const write = (file: string, schema: unknown): void => writeFileSync(file, JSON.stringify(schema, null, 2));
  const silent = { offline: true, log: () => undefined };

  test('a file that is new (never committed) passes with nothing to compare', async () => {
    const r = repo();
    write(r.file, augmented());
    expect(await check({ registryUrl: 'http://unused', ...r }, silent)).toEqual([]);
  });

  test('an uncommitted incompatible edit fails with the file, the level and the field', async () => {
    const r = repo();
    const v1 = withFields(augmented(), (f) => f.filter((x) => x.name !== 'marketing_opt_in'));
    write(r.file, v1);
    git(r.root, 'add', '.');
    git(r.root, 'commit', '-qm', 'v1');
    write(r.file, augmented()); // compatible: nullable with default
    git(r.root, 'commit', '-qam', 'v2');
    expect(await check({ registryUrl: 'http://unused', ...r }, silent)).toEqual([]);
    write(
      r.file,
      withFields(augmented(), (f) => [...f, { name: 'tier', type: 'string', doc: 'Tier.' }]),
    );
    const problems = await check({ registryUrl: 'http://unused', ...r }, silent);
    expect(problems).toEqual([
      expect.stringMatching(/^m\.avsc vs git history \(BACKWARD\): BACKWARD .*NewMemberAugmented\.tier: added without a default/),
    ]);
  });

  test('on a clean checkout the committed file is compared with the commit before it', async () => {
    const r = repo();
    write(r.file, augmented());
    git(r.root, 'add', '.');
    git(r.root, 'commit', '-qm', 'v1');
    write(
      r.file,
      withFields(augmented(), (f) => f.map((x) => (x.name === 'org_id' ? { ...x, type: 'long' } : x))),
    );
    git(r.root, 'commit', '-qam', 'v2 breaks');
    expect(readFileSync(r.file, 'utf8')).toContain('"long"');
    expect((await check({ registryUrl: 'http://unused', ...r }, silent)).join('\n')).toMatch(
      /NewMemberAugmented\.org_id: type changed from string to long/,
    );
  });
});
