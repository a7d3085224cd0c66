/**
 * `make schemas`: schemas/*.avsc are the source of truth for the topics we own, and
 * schemas/subjects.json says which subject each one is registered under and with which
 * compatibility level (plus the levels of the subjects Debezium registers by itself).
 *   node dist/tools/schemas.js check      lint + compatibility vs git history and vs the registry
 *   node dist/tools/schemas.js register   set every level, then register each owned schema (idempotent)
 *   node dist/tools/schemas.js status     level, versions and latest id of every subject
 *   node dist/tools/schemas.js override SUBJECT LEVEL   the runbook's one-time override (README)
 * The compatibility checker names the field that breaks, and in which direction.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import avro from 'avsc';
import { ccompatUrl, createRegistry, type Compatibility } from '../consumers/shared/registry';
import { authorizationHeader, loadRegistryAuth, type RegistryAuth } from '../consumers/shared/registry-auth';
import { projectRoot } from '../consumers/shared/schemas';

export const LEVELS: readonly Compatibility[] = ['BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FULL', 'FULL_TRANSITIVE', 'NONE'];
/** Confluent has FORWARD_TRANSITIVE too; the registry.ts type does not, so neither do we. */

export interface SubjectsFile {
  owned: Record<string, { topic: string; compatibility: Compatibility }>;
  debezium: Record<string, Compatibility>;
}

export function loadSubjects(dir: string): SubjectsFile {
  const parsed = JSON.parse(readFileSync(join(dir, 'subjects.json'), 'utf8')) as SubjectsFile;
  const levels = [...Object.values(parsed.owned).map((o) => o.compatibility), ...Object.values(parsed.debezium)];
  const bad = levels.filter((l) => !LEVELS.includes(l) || l === 'NONE' || l === 'FORWARD');
  if (bad.length > 0) throw new Error(`schemas/subjects.json: level(s) ${bad.join(', ')} not allowed (BACKWARD at least)`);
  return parsed;
}

// ───────────────────────── lint: docs, names, namespaces ─────────────────────────

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
type Json = Record<string, unknown>;

/** Problems with one .avsc file: it must parse, name a namespace, and document every field. */
export function lintSchema(file: string, schema: unknown): string[] {
  const out: string[] = [];
  try {
    avro.Type.forSchema(schema as avro.Schema, { wrapUnions: true });
  } catch (err) {
    return [`${file}: avsc cannot parse it: ${(err as Error).message}`];
  }
  const top = schema as Json;
  if (typeof top.namespace !== 'string' || !top.namespace.split('.').every((p) => AVRO_NAME.test(p))) {
    out.push(`${file}: the top-level record needs a namespace of dot-separated Avro names (got ${JSON.stringify(top.namespace)})`);
  }
  const visit = (node: unknown, path: string): void => {
    if (Array.isArray(node)) return node.forEach((n) => visit(n, path));
    if (typeof node !== 'object' || node === null) return;
    const t = node as Json;
    if (t.type === 'record' || t.type === 'enum' || t.type === 'fixed') {
      const name = String(t.name);
      const here = path ? `${path}.${name}` : name;
      if (!AVRO_NAME.test(name)) out.push(`${file}: ${here}: "${name}" is not an Avro-safe name ([A-Za-z_][A-Za-z0-9_]*)`);
      if (t.type === 'record') {
        if (typeof t.doc !== 'string' || t.doc.trim() === '') out.push(`${file}: record ${here} has no doc`);
        for (const f of (t.fields as Json[]) ?? []) {
          const fname = String(f.name);
          if (!AVRO_NAME.test(fname)) out.push(`${file}: ${here}.${fname}: not an Avro-safe field name`);
          if (typeof f.doc !== 'string' || f.doc.trim() === '') out.push(`${file}: ${here}.${fname} has no doc`);
          visit(f.type, `${here}.${fname}`);
        }
      }
      if (t.type === 'enum')
        for (const s of (t.symbols as string[]) ?? []) if (!AVRO_NAME.test(s)) out.push(`${file}: ${here}: symbol "${s}" is not Avro-safe`);
    }
    if (t.type === 'array') visit(t.items, `${path}[]`);
    if (t.type === 'map') visit(t.values, `${path}{}`);
    if (typeof t.type === 'object') visit(t.type, path);
  };
  visit(schema, '');
  return out;
}

// ───────────────────────── compatibility: who can read what ─────────────────────────

const PROMOTIONS: Record<string, string[]> = {
  int: ['long', 'float', 'double'],
  long: ['float', 'double'],
  float: ['double'],
  string: ['bytes'],
  bytes: ['string'],
};
const isUnion = (t: avro.Type): boolean => t.typeName.startsWith('union');
const branches = (t: avro.Type): avro.Type[] => (t as unknown as { types: avro.Type[] }).types;
const label = (t: avro.Type): string => t.name ?? t.typeName;
const named = (t: avro.Type): boolean => ['record', 'enum', 'fixed'].includes(t.typeName);
const sameName = (r: avro.Type, w: avro.Type): boolean => r.name === w.name || (r.aliases ?? []).includes(w.name ?? '');

/** Can a reader of type r take a writer's value of type w at all (shallow: kinds and names)? */
function matches(r: avro.Type, w: avro.Type): boolean {
  if (r.typeName === w.typeName) return named(r) ? sameName(r, w) : true;
  return (PROMOTIONS[w.typeName] ?? []).includes(r.typeName);
}

/**
 * Every reason why data written with `writer` cannot be read with `reader` (Avro schema
 * resolution), each naming the field path: empty when the reader can read it all.
 */
export function readProblems(
  reader: avro.Type,
  writer: avro.Type,
  missing: (fieldPath: string) => string = defaultMissing,
  path = label(reader),
  seen = new Set<string>(),
): string[] {
  const key = `${path}|${label(reader)}|${label(writer)}`;
  if (seen.has(key)) return [];
  seen.add(key);
  if (isUnion(writer)) {
    return branches(writer).flatMap((wb) => {
      const target = isUnion(reader) ? branches(reader).find((rb) => matches(rb, wb)) : matches(reader, wb) ? reader : undefined;
      return target
        ? readProblems(target, wb, missing, path, seen)
        : [`${path}: a ${label(wb)} value (a branch of the writer's union) has no matching type in the reader (${typeList(reader)})`];
    });
  }
  if (isUnion(reader)) {
    const target =
      branches(reader).find((rb) => rb.typeName === writer.typeName && (!named(rb) || sameName(rb, writer))) ??
      branches(reader).find((rb) => matches(rb, writer));
    return target ? readProblems(target, writer, missing, path, seen) : [`${path}: type changed from ${label(writer)} to ${typeList(reader)}`];
  }
  if (!matches(reader, writer)) {
    if (reader.typeName === writer.typeName) return [`${path}: ${reader.typeName} renamed from ${writer.name} to ${reader.name} (no alias)`];
    return [`${path}: type changed from ${label(writer)} to ${label(reader)}`];
  }
  switch (reader.typeName) {
    case 'record': {
      const rFields = (reader as avro.types.RecordType).fields;
      const wFields = (writer as avro.types.RecordType).fields;
      return rFields.flatMap((rf) => {
        const wf = wFields.find((f) => f.name === rf.name || (rf.aliases ?? []).includes(f.name));
        if (!wf) return rf.defaultValue() === undefined ? [missing(`${path}.${rf.name}`)] : [];
        return readProblems(rf.type, wf.type, missing, `${path}.${rf.name}`, seen);
      });
    }
    case 'enum': {
      const symbols = (reader as avro.types.EnumType).symbols;
      const missing = (writer as avro.types.EnumType).symbols.filter((s) => !symbols.includes(s));
      const hasDefault = (reader as unknown as { default?: string }).default !== undefined;
      return missing.length > 0 && !hasDefault
        ? [`${path}: enum symbol(s) ${missing.join(', ')} written but unknown to the reader (and it has no default)`]
        : [];
    }
    case 'fixed': {
      const rs = (reader as avro.types.FixedType).size;
      const ws = (writer as avro.types.FixedType).size;
      return rs === ws ? [] : [`${path}: fixed size changed from ${ws} to ${rs}`];
    }
    case 'array':
      return readProblems((reader as avro.types.ArrayType).itemsType, (writer as avro.types.ArrayType).itemsType, missing, `${path}[]`, seen);
    case 'map':
      return readProblems(
        (reader as avro.types.MapType).valuesType as avro.Type,
        (writer as avro.types.MapType).valuesType as avro.Type,
        missing,
        `${path}{}`,
        seen,
      );
    default:
      return [];
  }
}

const defaultMissing = (field: string): string => `${field}: the reader requires it (no default) but the writer's data does not have it`;

const typeList = (t: avro.Type): string => (isUnion(t) ? `[${branches(t).map(label).join(', ')}]` : label(t));

export const parse = (schema: unknown): avro.Type => avro.Type.forSchema(schema as avro.Schema, { wrapUnions: true });

/** avsc's own resolver is the second opinion: whatever it refuses is a problem too. */
function resolverProblem(reader: avro.Type, writer: avro.Type): string[] {
  try {
    reader.createResolver(writer);
    return [];
  } catch (err) {
    return [`avsc cannot resolve: ${(err as Error).message}`];
  }
}

/**
 * Problems of `next` against the earlier versions (newest first) under a compatibility level,
 * each prefixed with the direction that breaks. BACKWARD: the new schema reads old data;
 * FORWARD: old readers read new data; FULL: both; *_TRANSITIVE: against every earlier version.
 */
export function compatibilityProblems(level: Compatibility, next: unknown, previous: unknown[]): string[] {
  if (level === 'NONE' || previous.length === 0) return [];
  const against = level.endsWith('_TRANSITIVE') ? previous : previous.slice(0, 1);
  const nextType = parse(next);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  return against.flatMap((old, i) => {
    const oldType = parse(old);
    const which = i === 0 ? 'the previous version' : `version -${i + 1}`;
    const out: string[] = [];
    if (backward) {
      const found = readProblems(
        nextType,
        oldType,
        (f) =>
          `${f}: added without a default — data written with ${which} has no value for it (give it a default, e.g. a ["null", ...] union with default null)`,
      );
      const avsc = found.length === 0 ? resolverProblem(nextType, oldType) : [];
      out.push(...[...found, ...avsc].map((p) => `BACKWARD (new schema reading data written with ${which}): ${p}`));
    }
    if (forward) {
      const found = readProblems(oldType, nextType, (f) => `${f}: removed or renamed, but ${which} requires it and has no default`);
      const avsc = found.length === 0 ? resolverProblem(oldType, nextType) : [];
      out.push(...[...found, ...avsc].map((p) => `FORWARD (${which} reading data written with the new schema): ${p}`));
    }
    return out;
  });
}

// ───────────────────────── git history ─────────────────────────

/** Earlier committed versions of a file, newest first, each different from the working copy and its successor. */
export function gitVersions(root: string, file: string): unknown[] {
  return gitHistory(root, file).versions;
}

/** `tracked`: how many commits touched the file; `versions`: the distinct earlier contents, newest first. */
export function gitHistory(root: string, file: string): { tracked: number; versions: unknown[] } {
  const rel = relative(root, file);
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  let commits: string[];
  try {
    commits = git('log', '--format=%H', '--', rel).split('\n').filter(Boolean);
  } catch {
    return { tracked: 0, versions: [] }; // not a git checkout (e.g. the container image): nothing to compare with
  }
  const current = existsSync(file) ? canonical(JSON.parse(readFileSync(file, 'utf8'))) : '';
  const out: unknown[] = [];
  let last = current;
  for (const c of commits) {
    let text: string;
    try {
      text = git('show', `${c}:${rel}`);
    } catch {
      continue; // deleted in that commit
    }
    const parsed: unknown = JSON.parse(text);
    if (canonical(parsed) === last) continue;
    out.push(parsed);
    last = canonical(parsed);
  }
  return { tracked: commits.length, versions: out };
}

const canonical = (schema: unknown): string => JSON.stringify(parse(schema).schema());

// ───────────────────────── registry ─────────────────────────

export interface Env {
  registryUrl: string;
  schemasDir: string;
  root: string;
  registryAuth?: RegistryAuth | undefined;
}

async function ccompat(env: Env, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${ccompatUrl(env.registryUrl)}${path}`, {
    method,
    headers: {
      'content-type': 'application/vnd.schemaregistry.v1+json',
      ...(env.registryAuth ? { authorization: authorizationHeader(env.registryAuth) as string } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status === 401 || res.status === 403) {
    throw new Error(
      `registry ${env.registryUrl} refused ${method} ${path} with ${res.status}: ${env.registryAuth ? 'the REGISTRY_USERNAME/REGISTRY_PASSWORD or REGISTRY_TOKEN credential was rejected' : 'it requires credentials (REGISTRY_USERNAME/REGISTRY_PASSWORD or REGISTRY_TOKEN)'}`,
    );
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

const subjectPath = (s: string): string => `/subjects/${encodeURIComponent(s)}`;

/** Every registered version of a subject, newest first ([] when the subject has none). */
export async function registeredVersions(env: Env, subject: string): Promise<{ version: number; id: number; schema: unknown }[]> {
  const list = await ccompat(env, 'GET', `${subjectPath(subject)}/versions`);
  if (list.status === 404) return [];
  if (list.status !== 200) throw new Error(`${subject}: GET versions answered ${list.status} ${JSON.stringify(list.json)}`);
  const versions = (list.json as number[]).slice().sort((a, b) => b - a);
  return Promise.all(
    versions.map(async (v) => {
      const r = await ccompat(env, 'GET', `${subjectPath(subject)}/versions/${v}`);
      return { version: v, id: (r.json as { id: number }).id, schema: JSON.parse((r.json as { schema: string }).schema) };
    }),
  );
}

export async function setCompatibility(env: Env, subject: string, level: Compatibility): Promise<void> {
  const r = await ccompat(env, 'PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
  if (r.status !== 200) throw new Error(`${subject}: PUT /config answered ${r.status} ${JSON.stringify(r.json)}`);
}

export async function getCompatibility(env: Env, subject: string): Promise<string> {
  const r = await ccompat(env, 'GET', `/config/${encodeURIComponent(subject)}`);
  return r.status === 200 ? String((r.json as { compatibilityLevel?: string }).compatibilityLevel) : `(${r.status})`;
}

const log = (msg: string): void => void process.stdout.write(`${msg}\n`);

function ownedFiles(env: Env, subjects: SubjectsFile): string[] {
  const files = readdirSync(env.schemasDir)
    .filter((f) => f.endsWith('.avsc'))
    .sort();
  const unmapped = files.filter((f) => !subjects.owned[f]);
  if (unmapped.length > 0) throw new Error(`schemas/subjects.json maps no topic for ${unmapped.join(', ')}`);
  return files;
}

/** Lint + git history + (unless offline) the registry. Returns the problems found. */
export async function check(env: Env, opts: { offline?: boolean; log?: (msg: string) => void } = {}): Promise<string[]> {
  const say = opts.log ?? log;
  const subjects = loadSubjects(env.schemasDir);
  const problems: string[] = [];
  for (const file of ownedFiles(env, subjects)) {
    const path = join(env.schemasDir, file);
    const schema: unknown = JSON.parse(readFileSync(path, 'utf8'));
    const lint = lintSchema(file, schema);
    problems.push(...lint);
    if (lint.length > 0) continue;
    const { topic, compatibility } = subjects.owned[file]!;
    const { tracked, versions: history } = gitHistory(env.root, path);
    const vsGit = compatibilityProblems(compatibility, schema, history).map((p) => `${file} vs git history (${compatibility}): ${p}`);
    problems.push(...vsGit);
    const story =
      tracked === 0 ? 'new (not in git yet)' : history.length === 0 ? 'no earlier version in git' : `${history.length} earlier version(s) in git`;
    say(`${file}: ${story}, ${vsGit.length === 0 ? 'compatible' : 'INCOMPATIBLE'}`);
    if (opts.offline) continue;
    const subject = `${topic}-value`;
    const registered = await registeredVersions(env, subject);
    if (registered.length === 0) {
      say(`${subject}: not registered yet`);
      continue;
    }
    // Our own reading first (it names the field), then the registry's verdict under its level.
    const local = compatibilityProblems(
      compatibility,
      schema,
      registered.map((r) => r.schema),
    );
    const verdict = await ccompat(env, 'POST', `/compatibility${subjectPath(subject)}/versions/latest`, { schema: JSON.stringify(schema) });
    const registryOk = verdict.status === 200 && (verdict.json as { is_compatible?: boolean }).is_compatible === true;
    problems.push(...local.map((p) => `${file} vs registered ${subject} v${registered[0]!.version} (${compatibility}): ${p}`));
    if (!registryOk && local.length === 0)
      problems.push(`${file}: the registry calls it incompatible with ${subject} (${verdict.status} ${JSON.stringify(verdict.json)})`);
    say(`${subject}: registered v${registered[0]!.version}, ${registryOk && local.length === 0 ? 'compatible' : 'INCOMPATIBLE'}`);
  }
  return problems;
}

/** Sets every subject's level, then registers each owned schema; a second run changes nothing. */
export async function register(env: Env): Promise<void> {
  const subjects = loadSubjects(env.schemasDir);
  for (const [subject, level] of Object.entries(subjects.debezium)) {
    await setCompatibility(env, subject, level);
    log(`${subject}: ${level} (registered by the Debezium connector)`);
  }
  const registry = createRegistry({ url: env.registryUrl, auth: env.registryAuth });
  for (const file of ownedFiles(env, subjects)) {
    const { topic, compatibility } = subjects.owned[file]!;
    const subject = `${topic}-value`;
    const schema = JSON.parse(readFileSync(join(env.schemasDir, file), 'utf8')) as avro.Schema;
    const before = (await registeredVersions(env, subject)).length;
    const id = await registry.register(subject, schema, compatibility);
    const after = await registeredVersions(env, subject);
    log(`${subject}: ${compatibility}, id ${id}, v${after[0]?.version ?? '?'} (${after.length > before ? 'new version' : 'unchanged'})`);
  }
}

async function status(env: Env): Promise<void> {
  const subjects = loadSubjects(env.schemasDir);
  const all = [...Object.values(subjects.owned).map((o) => `${o.topic}-value`), ...Object.keys(subjects.debezium)];
  for (const subject of all) {
    const versions = await registeredVersions(env, subject);
    log(
      `  ${subject.padEnd(34)} ${(await getCompatibility(env, subject)).padEnd(10)} versions: ${versions.length}${versions[0] ? `, latest v${versions[0].version} id ${versions[0].id}` : ''}`,
    );
  }
}

async function main(argv: string[]): Promise<void> {
  const root = projectRoot(__dirname);
  const env: Env = {
    registryUrl: process.env.REGISTRY_URL ?? 'http://127.0.0.1:8081',
    schemasDir: process.env.SCHEMAS_DIR ?? join(root, 'schemas'),
    root,
    registryAuth: loadRegistryAuth(process.env, (p) => readFileSync(p, 'utf8')),
  };
  const [command = 'check', ...args] = argv;
  switch (command) {
    case 'check': {
      const problems = await check(env, { offline: args.includes('--offline') });
      if (problems.length > 0) throw new Error(`${problems.length} schema problem(s):\n  ${problems.join('\n  ')}`);
      return;
    }
    case 'register':
      return register(env);
    case 'status':
      return status(env);
    case 'override': {
      const [subject, level] = args as [string | undefined, Compatibility | undefined];
      if (!subject || !level || !LEVELS.includes(level)) throw new Error(`usage: schemas override SUBJECT ${LEVELS.join('|')}`);
      await setCompatibility(env, subject, level);
      log(`${subject}: compatibility ${level} — run \`make schemas\` once the change is through, to restore the configured level`);
      return;
    }
    default:
      throw new Error('usage: schemas check [--offline] | register | status | override SUBJECT LEVEL');
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`schemas: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
