/**
 * `make demo`: signs up a handful of members on the local stack and shows, per member, when
 * the INSERT committed, when SFMC (the stand-in) accepted the Welcome, the latency, the
 * Subscriber Key and the template — and the members that rightly got no Welcome.
 */
import { createConnection, type Connection, type ResultSetHeader } from 'mysql2/promise';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClientOptions, kafkaFromEnv } from '../consumers/shared/kafka-security';
import { welcomeMessageKey } from '../consumers/shared/sfmc-client';
import { ConnectAuthError, createConnectClient } from './connect-client';

const env = process.env;
const stateDir = env.STATE_DIR ?? join(__dirname, '..', '..', '.state');
const sfmcUrl = env.SFMC_AUTH_URL ?? 'http://127.0.0.1:8090';
const run = Date.now().toString(36);

interface Signup {
  org: string;
  memberId: string;
  email: string;
  first: string;
  why?: string;
  committedAt?: number;
}

async function insert(db: Connection, s: Signup): Promise<number> {
  const [res] = await db.query<ResultSetHeader>('INSERT INTO members (org_id, org_member_id, email, first_name, locale) VALUES (?, ?, ?, ?, ?)', [
    s.org,
    s.memberId,
    s.email,
    s.first,
    'en-US',
  ]);
  s.committedAt = Date.now();
  return res.insertId;
}

interface Send {
  messageKey: string;
  contactKey: string;
  definitionKey: string;
  receivedAt: string;
}

async function sends(): Promise<Map<string, Send>> {
  const all = (await (await fetch(`${sfmcUrl}/__standin/sends`)).json()) as Send[];
  return new Map(all.map((s) => [s.messageKey, s]));
}

const kafkaEnv = kafkaFromEnv(env, (p) => readFileSync(p, 'utf8'));
const kafka = new Kafka({
  clientId: 'welcome-demo',
  brokers: kafkaEnv.brokers,
  ...kafkaClientOptions(kafkaEnv.security),
  logLevel: logLevel.NOTHING,
});
const GROUPS: [string, string][] = [
  [env.AUGMENTER_GROUP_ID ?? 'welcome-augmenter', env.MEMBER_TOPIC ?? 'cdc.loyalty.members'],
  [env.EMAILER_GROUP_ID ?? 'welcome-emailer', env.AUGMENTED_TOPIC ?? 'welcome.members.augmented'],
];

async function pipelineIdle(deadline: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (;;) {
      const lags = await Promise.all(
        GROUPS.map(async ([groupId, topic]) => {
          const [ends, [done]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
          const committed = new Map((done?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
          return ends.some((e) => BigInt(e.high) > 0n && committed.get(e.partition) !== BigInt(e.high));
        }),
      );
      if (!lags.some(Boolean) || Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.disconnect();
  }
}

// RUNNING comes before Debezium has fixed its binlog position (snapshot.mode=no_data): a row
// written before that counts as pre-existing and never gets a Welcome. A stored source offset
// means the position is fixed; on a freshly registered connector the first one comes with the
// first heartbeat (every 10 s).
async function sourceStreaming(deadline: number): Promise<void> {
  const connectApi = createConnectClient(env);
  const url = `${connectApi.url}/connectors/members-source/offsets`;
  let said = false;
  for (;;) {
    // a refused credential (ConnectAuthError) stops the demo; a worker not answering yet is waited for
    const res = await connectApi.fetch('/connectors/members-source/offsets').catch((err: unknown) => {
      if (err instanceof ConnectAuthError) throw err;
      return undefined;
    });
    const body = res?.ok ? ((await res.json()) as { offsets?: unknown[] }) : undefined;
    if ((body?.offsets?.length ?? 0) > 0) return;
    if (Date.now() > deadline) throw new Error(`members-source has no source offset after 60 s (${url}): see make status`);
    if (!said) process.stdout.write('waiting for the source connector to start reading the binlog (first run: up to ~10 s)...\n');
    said = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}

const pad = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));

async function main(): Promise<void> {
  const db = await createConnection({ socketPath: join(stateDir, 'mariadb', 'mariadb.sock'), user: env.USER ?? 'root', database: 'loyalty' });
  const fresh: Signup[] = [
    { org: 'UA', memberId: `UA${run}1`, email: `ann.${run}@example.com`, first: 'Ann' },
    { org: 'UA', memberId: `UA${run}2`, email: `bo.${run}@example.com`, first: 'Bo' },
    { org: 'AA', memberId: `AA${run}1`, email: `cy.${run}@example.com`, first: 'Cy' },
    { org: 'AA', memberId: `AA${run}2`, email: `di.${run}@example.com`, first: 'Di' },
    // SFMC accepts her Welcome but does not send it: the address is on the stand-in's unsubscribed list.
    { org: 'AA', memberId: `AA${run}3`, email: `eve.${run}@unsubscribed.example`, first: 'Eve' },
  ];
  const none: Signup[] = [
    { org: 'UA', memberId: `UA${run}old`, email: `old.${run}@example.com`, first: 'Old', why: 'existed before CDC (written with the binlog off)' },
    { org: 'DL', memberId: `DL${run}1`, email: `ed.${run}@example.com`, first: 'Ed', why: 'organization DL is switched off' },
    {
      org: 'UA',
      memberId: `UA${run}pre`,
      email: `pre.${run}@example.com`,
      first: 'Pre',
      why: 'pre-existing (make seed-preexisting), deleted and inserted again',
    },
    {
      org: 'UA',
      memberId: `UA${run}aged`,
      email: `aged.${run}@example.com`,
      first: 'Aged',
      why: 'too old: created_at 2 days before its commit (UA maxAgeSeconds)',
    },
  ];
  await sourceStreaming(Date.now() + 60_000);
  process.stdout.write(`signing up ${fresh.length} new members (UA, AA) and ${none.length} that must get no Welcome...\n`);
  await db.query('SET SESSION sql_log_bin = 0');
  await insert(db, none[0] as Signup);
  await db.query('SET SESSION sql_log_bin = 1');
  for (const s of fresh) await insert(db, s);
  await insert(db, none[1] as Signup);
  // Member guards: a member from before the switch-on (recorded as the seed does) comes back
  // through DELETE + INSERT, and a restored row with an old created_at arrives as a create.
  const pre = none[2] as Signup;
  await db.query('SET SESSION sql_log_bin = 0');
  await insert(db, pre);
  await db.query('SET SESSION sql_log_bin = 1');
  await db.query(
    'INSERT IGNORE INTO welcome_preexisting_members (org_id, org_member_id, member_id) SELECT org_id, org_member_id, id FROM members WHERE org_id = ? AND org_member_id = ?',
    [pre.org, pre.memberId],
  );
  await db.query('DELETE FROM members WHERE org_id = ? AND org_member_id = ?', [pre.org, pre.memberId]);
  await insert(db, pre);
  const aged = none[3] as Signup;
  await db.query(
    'INSERT INTO members (org_id, org_member_id, email, first_name, locale, created_at) VALUES (?, ?, ?, ?, ?, NOW(3) - INTERVAL 2 DAY)',
    [aged.org, aged.memberId, aged.email, aged.first, 'en-US'],
  );
  // An update of a new member: must not become a second Welcome.
  await db.query('UPDATE members SET email = ? WHERE org_member_id = ?', [`ann.changed.${run}@example.com`, fresh[0]?.memberId]);
  await db.query('UPDATE members SET first_name = ? WHERE org_member_id = ?', ['Olde', none[0]?.memberId]);

  const deadline = Date.now() + 30_000;
  let seen = await sends();
  while (fresh.some((s) => !seen.has(welcomeMessageKey(s.org, s.memberId))) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    seen = await sends();
  }
  // The updates and the switched-off org travel the same path: once both stages have committed
  // everything written so far, whatever they were going to send has been sent.
  await pipelineIdle(Date.now() + 30_000);
  seen = await sends();

  process.stdout.write(
    `\n${pad('member', 18)} ${pad('inserted at', 13)} ${pad('Welcome at', 13)} ${pad('latency', 9)} ${pad('subscriber key', 22)} template\n`,
  );
  const time = (ms: number): string => new Date(ms).toISOString().slice(11, 23);
  let missing = 0;
  for (const s of fresh) {
    const send = seen.get(welcomeMessageKey(s.org, s.memberId));
    if (!send) {
      missing++;
      process.stdout.write(`${pad(`${s.org}/${s.memberId}`, 18)} ${pad(time(s.committedAt ?? 0), 13)} NO WELCOME within 30 s\n`);
      continue;
    }
    const at = Date.parse(send.receivedAt);
    process.stdout.write(
      `${pad(`${s.org}/${s.memberId}`, 18)} ${pad(time(s.committedAt ?? 0), 13)} ${pad(time(at), 13)} ${pad(`${at - (s.committedAt ?? at)} ms`, 9)} ${pad(send.contactKey, 22)} ${send.definitionKey}\n`,
    );
  }
  process.stdout.write('\nno Welcome, as it should be:\n');
  let wrong = 0;
  for (const s of none) {
    const got = seen.has(welcomeMessageKey(s.org, s.memberId));
    if (got) wrong++;
    process.stdout.write(`  ${pad(`${s.org}/${s.memberId}`, 18)} ${got ? 'GOT A WELCOME (wrong!)' : 'none'}  — ${s.why}\n`);
  }
  process.stdout.write(`  ${pad(`${fresh[0]?.org}/${fresh[0]?.memberId}`, 18)} one Welcome only — its email UPDATE is not a signup\n`);
  missing += await showDeliveryStatus(db, fresh);
  wrong += await showImportGuard(db);
  await db.end();
  if (missing > 0 || wrong > 0) process.exit(1);
}

/** What SFMC did with each Welcome (delivery-status stage → welcome_audit view); 1 if Eve's EmailNotSent never shows. */
/**
 * The mass-email guard as configured (WELCOME_ORGS_FILE; `make demo` runs the shipped one): an
 * import of 15 UA rows in one transaction sends UA's first maxPerTransaction and holds the rest.
 * Returns 1 when what went out is not what the configuration says.
 */
async function showImportGuard(db: Connection): Promise<number> {
  const file = env.WELCOME_ORGS_FILE ?? join(__dirname, '..', '..', 'config', 'welcome-orgs.json');
  const ua = (JSON.parse(readFileSync(file, 'utf8')) as Record<string, { maxPerTransaction?: number }>).UA;
  const rows = 15;
  const expected = Math.min(rows, ua?.maxPerTransaction ?? rows);
  const ids = Array.from({ length: rows }, (_, i) => `UA${run}imp${i}`);
  await db.query('INSERT INTO members (org_id, org_member_id, email, first_name, locale) VALUES ?', [
    ids.map((id) => ['UA', id, `${id.toLowerCase()}@example.com`, 'Imported', 'en-US']),
  ]);
  const deadline = Date.now() + 30_000;
  const welcomed = async (): Promise<number> => {
    const seen = await sends();
    return ids.filter((id) => seen.has(welcomeMessageKey('UA', id))).length;
  };
  while ((await welcomed()) < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  await pipelineIdle(Date.now() + 30_000);
  const n = await welcomed();
  process.stdout.write(
    `\nthe mass-email guard (${file.split('/').pop() ?? file}): an import of ${rows} UA rows in one transaction\n` +
      `  ${n} welcomed, ${rows - n} held on welcome.held${ua?.maxPerTransaction !== undefined ? ` (UA maxPerTransaction ${ua.maxPerTransaction}: the rest of a transaction is an import)` : ' (UA has no maxPerTransaction)'}\n` +
      `  make release-held lists them; make release-held ORG=UA would send them, once each\n`,
  );
  return n === expected ? 0 : 1;
}

async function showDeliveryStatus(db: Connection, members: Signup[]): Promise<number> {
  const deadline = Date.now() + 30_000;
  let rows: { org_member_id: string; delivery_status: string | null; delivery_status_code: number | null; delivery_status_message: string | null }[] =
    [];
  for (;;) {
    const [result] = await db.query(
      'SELECT org_member_id, delivery_status, delivery_status_code, delivery_status_message FROM welcome_audit WHERE org_member_id IN (?)',
      [members.map((m) => m.memberId)],
    );
    rows = result as typeof rows;
    const final = rows.filter((r) => r.delivery_status === 'EmailSent' || r.delivery_status === 'EmailNotSent');
    if (final.length === members.length || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  process.stdout.write("\ndelivery status (SFMC's status call, as marketing reads it in loyalty.welcome_audit):\n");
  for (const m of members) {
    const r = rows.find((x) => x.org_member_id === m.memberId);
    const reason = r?.delivery_status_code != null ? ` (${r.delivery_status_code} ${r.delivery_status_message ?? ''})` : '';
    process.stdout.write(`  ${pad(`${m.org}/${m.memberId}`, 18)} ${r?.delivery_status ?? 'not checked yet'}${reason}\n`);
  }
  const eve = rows.find((x) => x.org_member_id === members[members.length - 1]?.memberId);
  return eve?.delivery_status === 'EmailNotSent' ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
