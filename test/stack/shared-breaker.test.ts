/**
 * Issue 20, item 3: one send ceiling per organization across emailer replicas and restarts.
 * Three breakers, each with its own connection pool as three emailer replicas have, logged in
 * as the emailer's own database user (its grants are all the breaker needs), admit members of
 * one organization at the same time; a fourth, created afterwards (a restarted replica), sees
 * what they counted. The organization is this run's own.
 */
import { createPool, type Pool } from 'mysql2/promise';
import { createSharedBreaker } from '../../consumers/emailer/breaker';
import { rootDb } from '../support/db';
import { runId, stackEnv } from '../support/env';

const org = `B${runId}`.slice(0, 16);
const pools: Pool[] = [];
const replica = () => {
  const pool = createPool({
    host: '127.0.0.1',
    port: stackEnv.dbPort,
    user: process.env.EMAILER_DB_USER ?? 'welcome_emailer',
    password: process.env.EMAILER_DB_PASSWORD ?? '',
    database: 'loyalty',
    connectionLimit: 4,
    multipleStatements: true,
    timezone: 'Z',
  });
  pools.push(pool);
  return createSharedBreaker(pool);
};

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  const db = await rootDb();
  await db.query('DELETE FROM welcome_send_admissions WHERE org_id = ?', [org]);
  await db.query('DELETE FROM welcome_send_ceiling WHERE org_id = ?', [org]);
  await db.end();
});

test('three replicas admitting at once share one ceiling; a restarted one counts nobody twice', async () => {
  const ceiling = 250;
  const replicas = [replica(), replica(), replica()];
  // Each replica gets 20 chunks of 10 members (600 in all), interleaved as partitions would be.
  const chunks = Array.from({ length: 60 }, (_, c) => Array.from({ length: 10 }, (_, i) => `${org}:m${c * 10 + i}`));
  const results = await Promise.all(
    chunks.map((keys, c) => (replicas[c % 3] as ReturnType<typeof replica>).admit(org, keys, ceiling, Date.now() + 30_000)),
  );
  const held = new Set(results.flatMap((h) => [...h]));
  expect(600 - held.size).toBe(ceiling);

  // A restart: a new breaker, the same chunks retried. Every member keeps its verdict; none is counted again.
  const restarted = replica();
  const again = new Set((await Promise.all(chunks.map((keys) => restarted.admit(org, keys, ceiling, Date.now() + 30_000)))).flatMap((h) => [...h]));
  expect(again).toEqual(held);
});

test('least privilege: the emailer may count in the breaker tables, not touch the audit table', async () => {
  const pool = createPool({
    host: '127.0.0.1',
    port: stackEnv.dbPort,
    user: process.env.EMAILER_DB_USER ?? 'welcome_emailer',
    password: process.env.EMAILER_DB_PASSWORD ?? '',
    database: 'loyalty',
  });
  pools.push(pool);
  await expect(
    pool.query(
      "INSERT INTO new_members_sent_to_salesforce (org_id, org_member_id, subscriber_key, message_key, definition_key, sent_at) VALUES ('X', 'x', 'k', 'k', 'd', NOW())",
    ),
  ).rejects.toThrow(/denied/);
  await expect(pool.query('UPDATE welcome_send_admissions SET admitted = 1')).rejects.toThrow(/denied/);
});
