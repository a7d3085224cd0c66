/**
 * Issue 2: the real stack captures `members` by binlog CDC into Avro through the registry.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { memberChangeView, type MemberChange } from '../../consumers/augmenter/member-change';
import { DecodeError } from '../../consumers/shared/errors';
import { createRegistry } from '../../consumers/shared/registry';
import { loadConnectorDefs } from '../../tools/connect-defs';
import { insertMembers, query, rootDb } from '../support/db';
import { ROOT, runId, stackEnv, connectRest } from '../support/env';
import { TopicTap, testKafka, topicExists } from '../support/kafka';
import { waitFor } from '../support/wait';

jest.setTimeout(120_000);

const registry = createRegistry(stackEnv.registryUrl);
/** A member change, or a blank record for bytes that are not one (other tests' poison pills share the topic). */
const blank = { org_member_id: null, __op: null } as unknown as MemberChange;
const decode = (value: Buffer): Promise<MemberChange> =>
  registry.decode<MemberChange>(value, memberChangeView).catch((err: unknown) => {
    if (err instanceof DecodeError) return blank;
    throw err;
  });

async function changesFor(tap: TopicTap, orgMemberId: string): Promise<MemberChange[]> {
  const out: MemberChange[] = [];
  for (const r of tap.records) {
    if (!r.value) continue;
    const c = await decode(r.value);
    if (c.org_member_id === orgMemberId) out.push(c);
  }
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions walk Connect's REST JSON
async function connect(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await connectRest.fetch(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

let db: Connection;
let tap: TopicTap;

beforeAll(async () => {
  db = await rootDb();
  tap = await new TopicTap(stackEnv.memberTopic).start();
});
afterAll(async () => {
  await tap.stop();
  await db.end();
});

test('an INSERT arrives within seconds as one Avro create whose fields equal the row, NULLs and timestamps included', async () => {
  const orgMemberId = `ins-${runId}`;
  await insertMembers(db, [
    { org_id: 'UA', org_member_id: orgMemberId, email: `${orgMemberId}@example.com`, first_name: 'Zoë', last_name: null, locale: 'en-US' },
  ]);
  const started = Date.now();
  const [change] = await waitFor(
    'the create event',
    async () => {
      const found = await changesFor(tap, orgMemberId);
      return found.length > 0 ? found : undefined;
    },
    15_000,
  );
  expect(Date.now() - started).toBeLessThan(15_000);
  const [row] = await query<RowDataPacket>(db, 'SELECT * FROM members WHERE org_member_id = ?', [orgMemberId]);
  expect(change).toMatchObject({
    id: Number(row!.id),
    org_id: 'UA',
    org_member_id: orgMemberId,
    email: row!.email,
    first_name: 'Zoë',
    last_name: null,
    locale: 'en-US',
    __op: 'c',
    __deleted: 'false',
  });
  expect(Date.parse(change!.created_at!)).toBe((row!.created_at as Date).getTime());
  expect(change!.__source_ts_ms).toBeGreaterThan(Date.now() - 120_000);
  expect(change!.__source_snapshot === null || change!.__source_snapshot === 'false').toBe(true);
  expect(await changesFor(tap, orgMemberId)).toHaveLength(1);
});

test('UPDATE and DELETE arrive distinguishable from creates', async () => {
  const orgMemberId = `upd-${runId}`;
  await insertMembers(db, [{ org_id: 'AA', org_member_id: orgMemberId, email: 'before@example.com' }]);
  await db.query('UPDATE members SET email = ? WHERE org_member_id = ?', ['after@example.com', orgMemberId]);
  await db.query('DELETE FROM members WHERE org_member_id = ?', [orgMemberId]);
  const changes = await waitFor(
    'create, update and delete',
    async () => {
      const found = await changesFor(tap, orgMemberId);
      return found.length >= 3 ? found : undefined;
    },
    15_000,
  );
  expect(changes.map((c) => c.__op)).toEqual(['c', 'u', 'd']);
  expect(changes[1]!.email).toBe('after@example.com');
  expect(changes[2]!.__deleted).toBe('true');
});

test('the value schema is registered under the topic subject and the record id resolves at the Confluent API', async () => {
  const orgMemberId = `reg-${runId}`;
  await insertMembers(db, [{ org_id: 'UA', org_member_id: orgMemberId, email: 'r@example.com' }]);
  await waitFor('the record', async () => (await changesFor(tap, orgMemberId)).length > 0, 15_000);
  let bytes: Buffer | undefined;
  for (const r of tap.records) if (r.value && (await decode(r.value)).org_member_id === orgMemberId) bytes = r.value;
  expect(bytes![0]).toBe(0);
  const id = bytes!.readInt32BE(1);
  const ccompat = `${stackEnv.registryUrl}/apis/ccompat/v7`;
  const byId = await fetch(`${ccompat}/schemas/ids/${id}`);
  expect(byId.status).toBe(200);
  const schema = JSON.parse(((await byId.json()) as { schema: string }).schema);
  expect(schema.name).toBe('Value');
  expect(schema.fields.map((f: { name: string }) => f.name)).toEqual(
    expect.arrayContaining(['org_id', 'org_member_id', 'email', '__op', '__source_ts_ms']),
  );
  const subjects = (await (await fetch(`${ccompat}/subjects`)).json()) as string[];
  expect(subjects).toContain(`${stackEnv.memberTopic}-value`);
  const versions = (await (await fetch(`${ccompat}/subjects/${stackEnv.memberTopic}-value/versions`)).json()) as number[];
  const ids = await Promise.all(
    versions.map(async (v) => ((await (await fetch(`${ccompat}/subjects/${stackEnv.memberTopic}-value/versions/${v}`)).json()) as { id: number }).id),
  );
  expect(ids).toContain(id);
});

test('rows that existed before a connector was first registered are never emitted; rows after it are', async () => {
  // A second connector with its own name, topic prefix and server id sees this table fresh.
  const prefix = `cdctest${runId}`;
  const name = `members-source-test-${runId}`;
  const before = `pre-${runId}`;
  await insertMembers(db, [{ org_id: 'UA', org_member_id: before, email: 'pre@example.com' }]);
  const def = loadConnectorDefs(join(ROOT, 'connect'), (process.env.CONNECT_FLAVOUR ?? 'mariadb') as 'mariadb').find(
    (d) => d.name === 'members-source',
  )!;
  const config = {
    ...def.config,
    'topic.prefix': prefix,
    'database.server.id': String(200000 + Math.floor(Math.random() * 100000)),
    'schema.history.internal.kafka.topic': `_schema-history.${prefix}`,
  };
  const topic = `${prefix}.loyalty.members`;
  expect((await connect('PUT', `/connectors/${name}/config`, config)).status).toBe(201);
  try {
    await waitFor(
      'test connector RUNNING',
      async () => {
        const s = await connect('GET', `/connectors/${name}/status`);
        return s.json?.tasks?.[0]?.state === 'RUNNING';
      },
      60_000,
    );
    // RUNNING comes before Debezium has fixed its binlog position, so a row written right
    // now may still count as pre-existing. Keep writing fresh "after" rows until one arrives.
    let n = 0;
    const after = (i: number): string => `post-${runId}-${i}`;
    const insertAfter = async (): Promise<void> =>
      void (await insertMembers(db, [{ org_id: 'UA', org_member_id: after(n++), email: 'post@example.com' }]));
    // The topic appears with the first event this connector emits.
    await waitFor(
      'the test connector to emit its first create',
      async () => {
        await insertAfter();
        return topicExists(topic);
      },
      60_000,
      1_000,
    );
    const testTap = await new TopicTap(topic).start();
    try {
      const seen = await waitFor(
        'a post-registration create',
        async () => {
          const all = await Promise.all(testTap.records.filter((r) => r.value).map((r) => decode(r.value!)));
          if (all.some((c) => c.org_member_id?.startsWith(`post-${runId}`))) return all;
          await insertAfter();
          return undefined;
        },
        30_000,
        1_000,
      );
      expect(seen.filter((c) => c.org_member_id === before)).toHaveLength(0);
      expect(seen.filter((c) => c.__op === 'r')).toHaveLength(0);
      const posts = seen.filter((c) => c.org_member_id?.startsWith(`post-${runId}`));
      expect(posts.every((c) => c.__op === 'c')).toBe(true);
      // Once streaming, every later row arrives: the last one written must be there.
      const last = after(n - 1);
      await waitFor(
        'the last post row',
        async () => {
          const all = await Promise.all(testTap.records.filter((r) => r.value).map((r) => decode(r.value!)));
          return all.some((c) => c.org_member_id === last);
        },
        15_000,
      );
    } finally {
      await testTap.stop();
    }
  } finally {
    await connect('DELETE', `/connectors/${name}`);
    const admin = testKafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic, `_schema-history.${prefix}`, `__debezium-heartbeat.${prefix}`] }).catch(() => undefined);
    await admin.disconnect();
  }
});

test('make connectors twice: same config, no task restart, no duplicate records', async () => {
  const orgMemberId = `idem-${runId}`;
  await insertMembers(db, [{ org_id: 'UA', org_member_id: orgMemberId, email: 'i@example.com' }]);
  await waitFor('the record', async () => (await changesFor(tap, orgMemberId)).length > 0, 15_000);
  const configBefore = (await connect('GET', '/connectors/members-source/config')).json;
  const run = (): string => execFileSync('node', [join(ROOT, 'dist/tools/connectors.js'), 'register'], { encoding: 'utf8', env: process.env });
  const first = run();
  const second = run();
  expect(first).toMatch(/members-source \(\w+\): unchanged/);
  expect(second).toMatch(/members-source \(\w+\): unchanged/);
  expect(second).toMatch(/welcome-audit \(\w+\): unchanged/);
  expect((await connect('GET', '/connectors/members-source/config')).json).toEqual(configBefore);
  const status = (await connect('GET', '/connectors/members-source/status')).json;
  expect(status.tasks.map((t: { state: string }) => t.state)).toEqual(['RUNNING']);
  // A marker written after both runs: once it is through, anything re-emitted would be too.
  const marker = `idem-marker-${runId}`;
  await insertMembers(db, [{ org_id: 'UA', org_member_id: marker, email: 'm@example.com' }]);
  await waitFor('the marker', async () => (await changesFor(tap, marker)).length > 0, 15_000);
  expect(await changesFor(tap, orgMemberId)).toHaveLength(1);
});

test('every connector file validates at Connect with zero errors', () => {
  const out = execFileSync('node', [join(ROOT, 'dist/tools/connectors.js'), 'validate'], { encoding: 'utf8', env: process.env });
  expect(out).toMatch(/members-source: 0 error\(s\)/);
  expect(out).toMatch(/welcome-audit: 0 error\(s\)/);
});
