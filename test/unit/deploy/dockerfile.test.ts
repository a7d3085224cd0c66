/**
 * The Dockerfile cannot be built on the machines here (no Docker engine), so it is right by
 * construction: these tests read it instruction by instruction and hold it to package.json,
 * tsconfig.build.json, .dockerignore and docker-compose.yml.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const ROOT = join(__dirname, '..', '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Dockerfile -> instructions: comments dropped, `\` continuations joined. */
function instructionsOf(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!pending && /^\s*(#|$)/.test(line)) continue;
    if (pending && /^\s*#/.test(line)) continue; // comment lines inside a continuation
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m) out.push({ op: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').trim() });
  }
  return out;
}

function stagesOf(instructions: Instruction[]): { globalArgs: Map<string, string>; stages: Stage[] } {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const [image = '', as, name] = ins.args.replace(/--platform=\S+\s+/, '').split(/\s+/);
      const from = image.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_w, v: string) => globalArgs.get(v) ?? `\${${v}}`);
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0 && ins.op === 'ARG') {
      const [k = '', v = ''] = ins.args.split('=');
      globalArgs.set(k.trim(), v.trim());
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

const instructions = instructionsOf(read('Dockerfile'));
const { stages } = stagesOf(instructions);
const runtime = stages.at(-1) as Stage;
const build = stages[0] as Stage;
const ops = (stage: Stage, op: string): string[] => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
const runs = (stage: Stage): string[] => ops(stage, 'RUN');
const execForm = (args: string): string[] => JSON.parse(args) as string[];

describe('Dockerfile', () => {
  it('has a build stage and a runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build.name).toBeDefined();
    expect(ops(runtime, 'COPY').some((c) => c.startsWith(`--from=${build.name} `))).toBe(true);
  });

  it('builds on a supported Node LTS (22 or 24), pinned to a version tag, the same in every stage', () => {
    for (const stage of stages) {
      const m = /^node:(\d+)(\.\d+\.\d+)?-([a-z]+-)?slim$/.exec(stage.from);
      expect({ from: stage.from, ok: m !== null }).toEqual({ from: stage.from, ok: true });
      expect(['22', '24']).toContain(m?.[1]);
    }
    expect(new Set(stages.map((s) => s.from)).size).toBe(1);
    // the code also runs on the machines' Node (package.json engines): the image's major is not below it
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    const minMajor = Number(/(\d+)/.exec(engines)?.[1]);
    expect(Number(/^node:(\d+)/.exec(runtime.from)?.[1])).toBeGreaterThanOrEqual(minMajor);
  });

  it('runs the Node that the tests and the local stack run on (devDependency `node`, in node_modules/.bin)', () => {
    const pkg = JSON.parse(read('package.json')) as { devDependencies: Record<string, string>; allowScripts?: Record<string, boolean> };
    const pinned = pkg.devDependencies.node ?? '';
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(/^node:(\d+\.\d+\.\d+)-/.exec(runtime.from)?.[1]).toBe(pinned);
    // its binary arrives by the package's preinstall script: npm runs only approved ones
    expect(pkg.allowScripts?.node).toBe(true);
  });

  it('installs from the lockfile only: npm ci after copying package-lock.json, never npm install', () => {
    for (const stage of stages) {
      for (const run of runs(stage)) expect(run).not.toMatch(/\bnpm\s+(install|i|add)\b/);
      const ciAt = stage.instructions.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
      const lockAt = stage.instructions.findIndex((i) => i.op === 'COPY' && /\bpackage-lock\.json\b/.test(i.args));
      expect({ stage: stage.name, lockBeforeCi: lockAt >= 0 && lockAt < ciAt }).toEqual({ stage: stage.name, lockBeforeCi: true });
    }
  });

  it('compiles with npm run build, from every folder tsconfig.build.json includes', () => {
    expect(runs(build)).toContain('npm run build');
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['build']).toMatch(/tsconfig\.build\.json/);
    const copied = ops(build, 'COPY')
      .flatMap((c) => c.split(/\s+/).slice(0, -1))
      .map((p) => p.replace(/\/$/, ''));
    const included = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;
    for (const folder of [...included, 'tsconfig.json', 'tsconfig.build.json']) expect(copied).toContain(folder);
  });

  it('runs production dependencies only, with NODE_ENV=production', () => {
    expect(runs(runtime).some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(ops(runtime, 'ENV').some((e) => /\bNODE_ENV=production\b/.test(e))).toBe(true);
  });

  it('ships the compiled code, package.json and the connect/, config/ and schemas/ folders', () => {
    const copies = ops(runtime, 'COPY');
    expect(copies).toContainEqual(expect.stringMatching(new RegExp(`^--from=${build.name} /app/dist/? `)));
    // the consumers find schemas/ by walking up to package.json
    expect(copies).toContainEqual(expect.stringMatching(/^package\.json /));
    for (const folder of ['connect', 'config', 'schemas']) {
      expect(copies).toContainEqual(expect.stringMatching(new RegExp(`^${folder}/? `)));
      expect({ folder, exists: existsSync(join(ROOT, folder)) }).toEqual({ folder, exists: true });
    }
  });

  it('runs as the non-root node user', () => {
    const users = ops(runtime, 'USER');
    expect(users.at(-1)).toBe('node');
    const userAt = runtime.instructions.findIndex((i) => i.op === 'USER');
    const lastRunAt = runtime.instructions.map((i) => i.op).lastIndexOf('RUN');
    expect(userAt).toBeGreaterThan(lastRunAt);
  });

  it('checks health with node itself against /healthz on HTTP_PORT (default 9464)', () => {
    const [check] = ops(runtime, 'HEALTHCHECK');
    expect(check).toBeDefined();
    const cmd = execForm((check ?? '').replace(/^.*?\bCMD\s+/, ''));
    expect(cmd[0]).toBe('node');
    expect(cmd.join(' ')).toMatch(/process\.env\.HTTP_PORT\|\|9464/);
    expect(cmd.join(' ')).toMatch(/\/healthz/);
    expect(check).toMatch(/--timeout=\d+s/);
  });

  it('starts node directly, the augmenter by default', () => {
    expect(execForm(ops(runtime, 'ENTRYPOINT').at(-1) ?? '[]')).toEqual(['node']);
    const cmd = execForm(ops(runtime, 'CMD').at(-1) ?? '[]');
    expect(cmd).toEqual(['dist/consumers/augmenter/main.js']);
    expect(existsSync(join(ROOT, 'consumers/augmenter/main.ts'))).toBe(true);
  });

  it('agrees with docker-compose.yml on paths and ports', () => {
    const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, { environment?: Record<string, unknown> }> };
    const workdir = ops(runtime, 'WORKDIR').at(-1) ?? '';
    expect(workdir).toBe('/app');
    const emailerEnv = compose.services['emailer']?.environment ?? {};
    const orgsFile = String(emailerEnv['WELCOME_ORGS_FILE']);
    expect(orgsFile.startsWith(`${workdir}/`)).toBe(true);
    expect(existsSync(join(ROOT, orgsFile.slice(workdir.length + 1)))).toBe(true);
    for (const name of ['augmenter', 'emailer']) expect(String(compose.services[name]?.environment?.['HTTP_PORT'])).toBe('9464');
    // the stand-ins write under /data, which the image creates for the node user
    expect(runs(runtime).some((r) => /mkdir -p \/data/.test(r) && /chown node:node \/data/.test(r))).toBe(true);
  });
});

describe('.dockerignore', () => {
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('keeps local state, build output, git and secrets out of the build context', () => {
    for (const entry of ['node_modules', '.state', 'dist', '.git', 'bench/results', '.env']) expect(ignored).toContain(entry);
  });

  it('ignores nothing the Dockerfile copies', () => {
    const sources = stages
      .flatMap((s) => ops(s, 'COPY'))
      .filter((c) => !c.startsWith('--from='))
      .flatMap((c) => c.split(/\s+/).slice(0, -1))
      .map((p) => p.replace(/\/$/, ''));
    for (const source of sources) expect({ source, ignored: ignored.includes(source) }).toEqual({ source, ignored: false });
  });
});
