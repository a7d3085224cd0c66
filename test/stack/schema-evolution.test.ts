/**
 * Issue 5 (3, 4): the member table changes under a running pipeline and nothing breaks or is lost.
 * - A scratch copy of the members table with its own connector, topic and subjects takes the
 *   destructive experiments (and gives exact version counts): additive columns while signups
 *   flow, a widened column, and a rename the registry must reject — then the README runbook
 *   (README, "Evolving schemas") is followed back to a running connector with nothing lost.
 * - The real members table gets the same ADDITIVE columns (idempotent, left in place: dropping
 *   them later would itself be a schema change) while the real augmenter and emailer keep
 *   sending, without a restart.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import type { Connection } from 'mysql2/promise';
import { memberChangeView, type MemberChange } from '../../consumers/augmenter/member-change';
import { toAugmentedRecord, toNewMember } from '../../consumers/augmenter/transform';
import { augmentedMemberReader, type AugmentedMember } from '../../consumers/emailer/augmented-member';
import { DecodeError } from '../../consumers/shared/errors';
import { createRegistry } from '../../consumers/shared/registry';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { loadConnectorDefs } from '../../tools/connect-defs';
import { getCompatibility, loadSubjects, registeredVersions, setCompatibility } from '../../tools/schemas';
import { rootDb } from '../support/db';
import { ROOT, runId, STATE_DIR, stackEnv, connectRest } from '../support/env';
import { testKafka, TopicTap } from '../support/kafka';
import { waitFor } from '../support/wait';
import { expectNoSecondWelcome } from '../support/accounting';

jest.setTimeout(240_000);

const env = { registryUrl: stackEnv.registryUrl, schemasDir: join(ROOT, 'schemas'), root: ROOT };
const MEMBER_LEVEL = loadSubjects(env.schemasDir).debezium[`${stackEnv.memberTopic}-value`]!;
// One registry client per reader view (its decode cache is keyed by schema id).
const memberRegistry = createRegistry(stackEnv.registryUrl);
const rawRegistry = createRegistry(stackEnv.registryUrl);
const augmentedRegistry = createRegistry(stackEnv.registryUrl);
const asMember = (v: Buffer): Promise<MemberChange> => memberRegistry.decode<MemberChange>(v, memberChangeView);
/** The writer's own view: every column the record carries, including ones our view does not know. */
const asWritten = (v: Buffer): Promise<Record<string, unknown>> =>
  rawRegistry.decode(v, (w) => avro.Type.forSchema(w.schema() as avro.Schema, { wrapUnions: false }));
const augmentedReader = augmentedMemberReader();
const augmentedView = (): typeof augmentedReader => augmentedReader;
const asAugmented = (v: Buffer): Promise<AugmentedMember> => augmentedRegistry.decode<AugmentedMember>(v, augmentedView);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions walk Connect's REST JSON
async function connectApi(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await connectRest.fetch(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}
const taskState = async (name: string): Promise<{ state?: string; trace?: string }> =>
  (await connectApi('GET', `/connectors/${name}/status`)).json?.tasks?.[0] ?? {};
const fieldNames = (schema: unknown): string[] => ((schema as { fields: { name: string }[] }).fields ?? []).map((f) => f.name);
const schemasTool = (...args: string[]): string =>
  execFileSync('node', [join(ROOT, 'dist/tools/schemas.js'), ...args], { encoding: 'utf8', env: process.env });

interface Signup {
  orgMemberId: string;
  phase: number;
  optIn: number | null;
  consent?: string;
}

/**
 * A load generator on its own connection: one INSERT at a time, columns chosen by the phase
 * the test is in (the columns exist from that phase on). Paced a little so a phase has rows.
 */
function startSignups(db: Connection, table: string, prefix: string, phase: () => number): { rows: Signup[]; stop: () => Promise<Signup[]> } {
  const rows: Signup[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const p = phase();
      const orgMemberId = `${prefix}-${i}`;
      const row: Record<string, unknown> = { org_id: 'UA', org_member_id: orgMemberId, email: `${orgMemberId}@example.com` };
      const optIn = p >= 1 ? ([1, 0, null] as const)[i % 3]! : null;
      if (p >= 1) row.marketing_opt_in = optIn;
      const consent = p >= 2 && i % 2 === 0 ? 'web' : undefined;
      if (consent) row.consent_source = consent;
      await db.query(`INSERT INTO loyalty.${table} SET ?`, [row]);
      rows.push({ orgMemberId, phase: p, optIn, ...(consent ? { consent } : {}) });
      await new Promise((r) => setTimeout(r, 30)); // pacing of the generator, not a wait for an outcome
    }
  })();
  return {
    rows,
    stop: async () => {
      running = false;
      await loop;
      return rows;
    },
  };
}

/** Runs the two additive ALTERs while signups flow; returns every row written. */
async function evolveWhileSigningUp(table: string, prefix: string): Promise<Signup[]> {
  const writer = await rootDb();
  const ddl = await rootDb();
  let phase = 0;
  const signups = startSignups(writer, table, prefix, () => phase);
  try {
    const inPhase = (p: number, n: number) => async () => signups.rows.filter((r) => r.phase === p).length >= n;
    await waitFor('signups before the ALTER', inPhase(0, 5), 20_000, 20);
    await ddl.query(`ALTER TABLE loyalty.${table} ADD COLUMN IF NOT EXISTS marketing_opt_in TINYINT NULL`);
    phase = 1;
    await waitFor('signups with marketing_opt_in', inPhase(1, 6), 20_000, 20);
    await ddl.query(`ALTER TABLE loyalty.${table} ADD COLUMN IF NOT EXISTS consent_source VARCHAR(32) NULL DEFAULT 'signup'`);
    phase = 2;
    await waitFor('signups with consent_source', inPhase(2, 6), 20_000, 20);
    return await signups.stop();
  } finally {
    await signups.stop();
    await Promise.all([writer.end(), ddl.end()]);
  }
}

/** Creates per org_member_id (op c), decoded through our member view, for the given ids. */
async function createsOn(
  tap: TopicTap,
  ids: Set<string>,
): Promise<Map<string, { change: MemberChange; raw: Record<string, unknown>; schemaId: number }[]>> {
  const out = new Map<string, { change: MemberChange; raw: Record<string, unknown>; schemaId: number }[]>();
  for (const r of tap.records) {
    if (!r.value) continue;
    let change: MemberChange;
    try {
      change = await asMember(r.value);
    } catch (err) {
      if (err instanceof DecodeError) continue; // other tests put poison pills on the shared topic
      throw err;
    }
    if (change.__op !== 'c' || !change.org_member_id || !ids.has(change.org_member_id)) continue;
    const list = out.get(change.org_member_id) ?? [];
    list.push({ change, raw: await asWritten(r.value), schemaId: r.value.readInt32BE(1) });
    out.set(change.org_member_id, list);
  }
  return out;
}

const expectedOptIn = (s: Signup): boolean | null => (s.optIn === null ? null : s.optIn === 1);

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
});
afterAll(async () => {
  await db.end();
});

test('make schemas sets every configured level and registers idempotently', () => {
  const first = schemasTool('register');
  const second = schemasTool('register');
  expect(first).toMatch(new RegExp(`${stackEnv.memberTopic}-value: ${MEMBER_LEVEL}`));
  expect(second).toMatch(/welcome\.members\.augmented-value: BACKWARD, id \d+, v\d+ \(unchanged\)/);
  expect(second).toMatch(/welcome\.sent-value: BACKWARD, id \d+, v\d+ \(unchanged\)/);
  expect(second).not.toMatch(/new version/);
  expect(schemasTool('check')).toMatch(/welcome\.members\.augmented-value: registered v\d+, compatible/);
});

describe('a scratch copy of members with its own connector', () => {
  const table = `members_evo_${runId}`;
  const prefix = `cdcevo${runId}`;
  const connector = `members-evo-${runId}`;
  const topic = `${prefix}.loyalty.${table}`;
  const valueSubject = `${topic}-value`;
  let tap: TopicTap;
  let writes = 0;
  const insert = async (row: Record<string, unknown>): Promise<void> =>
    void (await db.query(`INSERT INTO loyalty.${table} SET ?`, [{ org_id: 'UA', ...row }]));

  beforeAll(async () => {
    // The members DDL as shipped (stack/sql/01-schema.sql), not `LIKE members`: the real table
    // may already carry the columns this suite adds. The CDC user may read it during the test only.
    const ddl = /CREATE TABLE IF NOT EXISTS loyalty\.members \(([\s\S]*?)\n\);/.exec(readFileSync(join(ROOT, 'stack/sql/01-schema.sql'), 'utf8'));
    if (!ddl) throw new Error('stack/sql/01-schema.sql: no CREATE TABLE for loyalty.members');
    await db.query(`CREATE TABLE loyalty.${table} (${ddl[1]})`);
    await db.query(`GRANT SELECT ON loyalty.${table} TO ?@'%'`, [stackEnv.cdcUser]);
    // What `make schemas` does for the real subjects, before the connector registers anything.
    for (const s of [valueSubject, `${topic}-key`]) await setCompatibility(env, s, MEMBER_LEVEL);
    const def = loadConnectorDefs(join(ROOT, 'connect'), (process.env.CONNECT_FLAVOUR ?? 'mariadb') as 'mariadb').find(
      (d) => d.name === 'members-source',
    )!;
    const config = {
      ...def.config,
      'topic.prefix': prefix,
      'database.server.id': String(200000 + Math.floor(Math.random() * 100000)),
      'table.include.list': `loyalty.${table}`,
      'schema.history.internal.kafka.topic': `_schema-history.${prefix}`,
    };
    expect((await connectApi('PUT', `/connectors/${connector}/config`, config)).status).toBe(201);
    await waitFor('scratch connector RUNNING', async () => (await taskState(connector)).state === 'RUNNING', 60_000);
    // RUNNING comes before the binlog position is fixed: write warm-up rows until one is
    // through (its schema registered), so the evolution below starts from a streaming connector.
    await waitFor(
      'a warm-up row through the scratch connector',
      async () => {
        if ((await registeredVersions(env, valueSubject)).length > 0) return true;
        await insert({ org_member_id: `warm-${writes++}`, email: 'warm@example.com' });
        return false;
      },
      60_000,
      1_000,
    );
    tap = await new TopicTap(topic).start();
  });

  afterAll(async () => {
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`cleanup (${what}) failed: ${String(err)}\n`);
      }
    };
    await attempt('tap', async () => tap?.stop());
    // Connect may be restarting under another engineer's test: retry until it is gone.
    await attempt('connector', () =>
      waitFor(
        `scratch connector ${connector} deleted`,
        async () => [204, 404].includes((await connectApi('DELETE', `/connectors/${connector}`)).status),
        90_000,
        1_000,
      ),
    );
    await attempt('grant', () => db.query(`REVOKE SELECT ON loyalty.${table} FROM ?@'%'`, [stackEnv.cdcUser]));
    await attempt('table', () => db.query(`DROP TABLE IF EXISTS loyalty.${table}`));
    for (const subject of [valueSubject, `${topic}-key`, `__debezium-heartbeat.${prefix}-value`, `__debezium-heartbeat.${prefix}-key`]) {
      await attempt(subject, () =>
        fetch(`${stackEnv.registryUrl}/apis/registry/v3/groups/default/artifacts/${encodeURIComponent(subject)}`, { method: 'DELETE' }),
      );
    }
    await attempt('topics', async () => {
      const admin = testKafka.admin();
      await admin.connect();
      try {
        const existing = new Set(await admin.listTopics());
        const mine = [topic, `__debezium-heartbeat.${prefix}`, `_schema-history.${prefix}`].filter((t) => existing.has(t));
        if (mine.length > 0) await admin.deleteTopics({ topics: mine });
      } finally {
        await admin.disconnect();
      }
    });
  });

  test('(a) columns added while signups flow: two new versions, every row exactly once, old and new read by one view', async () => {
    const before = await registeredVersions(env, valueSubject);
    expect(before).toHaveLength(1);
    const rows = await evolveWhileSigningUp(table, `a-${runId}`);
    const ids = new Set(rows.map((r) => r.orgMemberId));
    const seen = await waitFor(
      `all ${rows.length} rows on ${topic}`,
      async () => {
        const found = await createsOn(tap, ids);
        return found.size === ids.size ? found : undefined;
      },
      60_000,
      500,
    );

    const after = await registeredVersions(env, valueSubject);
    expect(after).toHaveLength(3);
    expect(fieldNames(after[0]!.schema)).toEqual(expect.arrayContaining(['marketing_opt_in', 'consent_source']));
    expect(await getCompatibility(env, valueSubject)).toBe(MEMBER_LEVEL);
    for (const row of rows) {
      const copies = seen.get(row.orgMemberId)!;
      expect(copies).toHaveLength(1); // none lost (all seen), none duplicated
      const { change, raw, schemaId } = copies[0]!;
      const verdict = toNewMember(change);
      if (verdict.kind !== 'new-member') throw new Error(`${row.orgMemberId}: ${JSON.stringify(verdict)}`);
      expect(toAugmentedRecord(verdict.member, 'SK', Date.now()).marketing_opt_in).toBe(expectedOptIn(row));
      // A row whose INSERT raced the ALTER may carry the next version; none carries an older one.
      if (row.phase === 0) expect([before[0]!.id, after[1]!.id]).toContain(schemaId);
      if (row.phase === 1) expect([after[1]!.id, after[0]!.id]).toContain(schemaId);
      if (row.phase === 2) {
        expect(schemaId).toBe(after[0]!.id);
        expect(raw.consent_source).toBe(row.consent ?? 'signup'); // the column DEFAULT travels
      }
    }
    expect(seen.get(rows[0]!.orgMemberId)![0]!.schemaId).toBe(before[0]!.id); // written before any ALTER
  });

  test('(b) widening VARCHAR(100) → VARCHAR(200) changes nothing the registry sees; long values arrive whole', async () => {
    const before = await registeredVersions(env, valueSubject);
    await db.query(`ALTER TABLE loyalty.${table} MODIFY first_name VARCHAR(200) NULL`);
    const id = `b-${runId}`;
    const name = 'W'.repeat(180);
    await insert({ org_member_id: id, email: `${id}@example.com`, first_name: name });
    const seen = await waitFor(
      'the widened row',
      async () => {
        const found = await createsOn(tap, new Set([id]));
        return found.get(id);
      },
      30_000,
      500,
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]!.change.first_name).toBe(name);
    // Debezium maps VARCHAR(n) to string without the length: same schema, no new version.
    expect((await registeredVersions(env, valueSubject)).map((v) => v.version)).toEqual(before.map((v) => v.version));
    expect((await taskState(connector)).state).toBe('RUNNING');
  });

  test('(c) a rename is rejected by the registry, the task fails visibly, and the runbook recovers it with nothing lost', async () => {
    const before = await registeredVersions(env, valueSubject);
    await db.query(`ALTER TABLE loyalty.${table} RENAME COLUMN email TO email_address`);
    const id = `c-${runId}`;
    await insert({ org_member_id: id, email_address: `${id}@example.com` });

    const failed = await waitFor(
      'the task to FAIL on the rejected schema',
      async () => {
        const t = await taskState(connector);
        return t.state === 'FAILED' ? t : undefined;
      },
      60_000,
      500,
    );
    expect(failed.trace).toMatch(/RuleViolationException: Incompatible artifact: .*email_address.*email/);
    const status = execFileSync('make', ['-s', '--no-print-directory', 'status'], { cwd: ROOT, encoding: 'utf8', env: process.env });
    expect(status).toMatch(new RegExp(`${connector}\\s+\\S+\\s+tasks: 0=FAILED`));
    expect((await registeredVersions(env, valueSubject)).length).toBe(before.length); // rejected, not registered

    // Runbook, option A (the change is intended): override once, restart the failed task,
    // wait for the new version, then restore the configured level.
    schemasTool('override', valueSubject, 'NONE');
    expect((await connectApi('POST', `/connectors/${connector}/restart?includeTasks=true&onlyFailed=true`)).status).toBeLessThan(300);
    await waitFor('the task RUNNING again', async () => (await taskState(connector)).state === 'RUNNING', 60_000, 500);
    const seen = await waitFor('the row written while the task was down', async () => (await createsOn(tap, new Set([id]))).get(id), 60_000, 500);
    schemasTool('override', valueSubject, MEMBER_LEVEL);
    expect(await getCompatibility(env, valueSubject)).toBe(MEMBER_LEVEL);

    const after = await registeredVersions(env, valueSubject);
    expect(after).toHaveLength(before.length + 1);
    expect(fieldNames(after[0]!.schema)).toContain('email_address');
    expect(seen.length).toBeGreaterThanOrEqual(1); // at least once: the failed batch is re-read
    expect(seen[0]!.raw.email_address).toBe(`${id}@example.com`);
    // Why the runbook says "consumers first": our view has no email_address, so this row is
    // unusable (dead-lettered), never silently mis-sent.
    expect(toNewMember(seen[0]!.change)).toMatchObject({ kind: 'invalid', code: 'MISSING_EMAIL' });

    // Back to normal: the next row flows, under the restored level.
    const next = `c2-${runId}`;
    await insert({ org_member_id: next, email_address: `${next}@example.com` });
    await waitFor('a row after recovery', async () => (await createsOn(tap, new Set([next]))).get(next), 30_000, 500);
    expect((await taskState(connector)).state).toBe('RUNNING');
  });
});

describe('the real members table', () => {
  const pid = (service: string): number => Number(readFileSync(join(STATE_DIR, 'pids', `${service}.pid`), 'utf8').trim());
  const alive = (p: number): boolean => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  };
  interface Send {
    messageKey: string;
    contactKey: string;
    to: string;
    definitionKey: string;
    receivedAt: string;
  }
  const sendsSince = async (since: string): Promise<Send[]> =>
    (await (await fetch(`${stackEnv.sfmcUrl}/__standin/sends?since=${encodeURIComponent(since)}`)).json()) as Send[];

  test('(a) additive columns while signups flow: the running augmenter and emailer send exactly one Welcome each, and marketing_opt_in reaches the augmented record', async () => {
    // A reused stack has the columns from an earlier run: drop them first, so every run adds
    // them for real while signups flow (dropping an optional column with a default is itself a
    // compatible change; the creates below show which schema each row was written with).
    await db.query('ALTER TABLE loyalty.members DROP COLUMN IF EXISTS marketing_opt_in, DROP COLUMN IF EXISTS consent_source');
    const pids = { augmenter: pid('augmenter'), emailer: pid('emailer') };
    const since = new Date(Date.now() - 1_000).toISOString();
    const subject = `${stackEnv.memberTopic}-value`;
    const cdcTap = await new TopicTap(stackEnv.memberTopic).start();
    const augmentedTap = await new TopicTap(stackEnv.augmentedTopic).start();
    try {
      const rows = await evolveWhileSigningUp('members', `evo-${runId}`);
      const keys = new Map(rows.map((r) => [welcomeMessageKey('UA', r.orgMemberId), r]));
      await waitFor(
        `${rows.length} Welcomes`,
        async () => (await sendsSince(since)).filter((s) => keys.has(s.messageKey)).length >= rows.length,
        90_000,
        500,
      );
      // A marker written after all of them: once its Welcome is out, a late duplicate would be too.
      const marker = `evo-marker-${runId}`;
      await db.query('INSERT INTO loyalty.members SET ?', [{ org_id: 'UA', org_member_id: marker, email: `${marker}@example.com` }]);
      await waitFor(
        'the marker Welcome',
        async () => (await sendsSince(since)).some((s) => s.messageKey === welcomeMessageKey('UA', marker)),
        60_000,
        500,
      );

      const sends = (await sendsSince(since)).filter((s) => keys.has(s.messageKey));
      // Counted at SFMC, POST by POST: one key per member, no re-POST (the accepted list keeps one per key).
      await expectNoSecondWelcome(`evo-${runId}`, Date.parse(since));
      for (const [key, row] of keys) {
        const mine = sends.filter((s) => s.messageKey === key);
        expect({ member: row.orgMemberId, sends: mine.length }).toEqual({ member: row.orgMemberId, sends: 1 });
        expect(mine[0]!.to).toBe(`${row.orgMemberId}@example.com`);
        expect(mine[0]!.definitionKey).toBe('welcome-ua');
      }

      const ids = new Set(rows.map((r) => r.orgMemberId));
      const creates = await waitFor(
        'every create on the CDC topic',
        async () => {
          const found = await createsOn(cdcTap, ids);
          return found.size === ids.size ? found : undefined;
        },
        30_000,
        500,
      );
      for (const r of rows)
        expect({ member: r.orgMemberId, creates: creates.get(r.orgMemberId)!.length }).toEqual({ member: r.orgMemberId, creates: 1 });
      for (const r of rows.filter((x) => x.phase === 2)) expect(creates.get(r.orgMemberId)![0]!.raw.consent_source).toBe(r.consent ?? 'signup');

      const augmented = await waitFor(
        'every augmented record',
        async () => {
          const out = new Map<string, AugmentedMember>();
          for (const rec of augmentedTap.records) {
            if (!rec.value) continue;
            const m = await asAugmented(rec.value).catch((err: unknown) => {
              if (err instanceof DecodeError) return undefined; // someone else's poison pill
              throw err;
            });
            if (m && ids.has(m.org_member_id)) out.set(m.org_member_id, m);
          }
          return out.size === ids.size ? out : undefined;
        },
        30_000,
        500,
      );
      for (const r of rows) {
        expect({ member: r.orgMemberId, optIn: augmented.get(r.orgMemberId)!.marketing_opt_in }).toEqual({
          member: r.orgMemberId,
          optIn: expectedOptIn(r),
        });
      }
      expect(rows.some((r) => r.optIn === 1) && rows.some((r) => r.optIn === 0)).toBe(true);

      const versions = await registeredVersions(env, subject);
      expect(versions.length).toBeGreaterThanOrEqual(2);
      expect(fieldNames(versions[0]!.schema)).toEqual(expect.arrayContaining(['marketing_opt_in', 'consent_source']));
      // The evolution as it reached the topic: the first signups (written before the first ALTER)
      // carry a writer schema without either column, those after both ALTERs one with both.
      const writtenWith = (r: Signup): string[] => Object.keys(creates.get(r.orgMemberId)![0]!.raw);
      for (const r of rows.filter((x) => x.phase === 0).slice(0, 5))
        expect({ member: r.orgMemberId, optIn: writtenWith(r).includes('marketing_opt_in') }).toEqual({ member: r.orgMemberId, optIn: false });
      for (const r of rows.filter((x) => x.phase === 2))
        expect({
          member: r.orgMemberId,
          fields: writtenWith(r)
            .filter((f) => f === 'marketing_opt_in' || f === 'consent_source')
            .sort(),
        }).toEqual({
          member: r.orgMemberId,
          fields: ['consent_source', 'marketing_opt_in'],
        });

      // Same processes before and after: nobody restarted the consumers.
      expect({ augmenter: pid('augmenter'), emailer: pid('emailer') }).toEqual(pids);
      expect(alive(pids.augmenter) && alive(pids.emailer)).toBe(true);
      expect((await taskState('members-source')).state).toBe('RUNNING');
    } finally {
      await Promise.all([cdcTap.stop(), augmentedTap.stop()]);
    }
  });
});
