/**
 * `make reconcile [SINCE=…] [GRACE=minutes] [ARGS=--redrive|--json]`: every member older
 * than the grace period with no Welcome on record (audit table) and not pre-existing,
 * per organization and cause, where the cause is the latest trace the pipeline left:
 *   dead-lettered  a DLQ record (augmenter or emailer), with its error code and reason
 *   skipped        a rule (welcome.skipped: org-disabled, too-old, pre-existing)
 *   held           the send-rate breaker holds it (welcome.held, not yet released)
 *   audit-failed   sent, but the audit sink dead-lettered its row (welcome.audit.dlq)
 *   missing        no trace at all: its change event never reached the pipeline
 *   forgotten      erased (make forget) while the company kept its members row: never welcomed, never re-driven
 * `--redrive` puts a create event for each missing member on the member topic (encoded with
 * the topic's own writer schemas), so it takes the normal path: augmenter, emailer, audit. Its
 * commit time is the member's created_at, so a member older than its organization's
 * maxAgeSeconds is still welcomed (late, and its latency says so); it has no transaction, so
 * the import guard does not apply and the send-rate breaker does (a large re-drive is held
 * past the ceiling: make release-held).
 * A second email is impossible: the emailer checks the audit table first, and SFMC refuses
 * the member's fixed messageKey.
 *
 * For the alerts: writes a Prometheus text file (RECONCILE_METRICS_FILE, for node_exporter's
 * textfile collector) with welcome_reconcile_members{org,cause}, and exits 3 when members
 * are missing (0 when none, 1 on error).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import avro from 'avsc';
import type { RowDataPacket } from 'mysql2/promise';
import { GUARD_HEADERS } from '../consumers/emailer/guards';
import { DecodeError } from '../consumers/shared/errors';
import { memberKey } from '../consumers/shared/member';
import { createRegistry } from '../consumers/shared/registry';
import { DLQ_HEADERS } from '../consumers/shared/stage';
import { forgottenCheck } from './forgotten-db';
import { heldPending } from './held';
import { n, opsDb } from './ops-db';
import { header, kafka, readToEnd } from './topic-read';
import { createProducer, produceAll } from '../consumers/shared/kafka';

const env = process.env;
const T = {
  member: env.MEMBER_TOPIC ?? 'cdc.loyalty.members',
  augmenterDlq: env.AUGMENTER_DLQ_TOPIC ?? 'welcome.augmenter.dlq',
  emailerDlq: env.EMAILER_DLQ_TOPIC ?? 'welcome.emailer.dlq',
  auditDlq: env.AUDIT_DLQ_TOPIC ?? 'welcome.audit.dlq',
  skipped: env.SKIPPED_TOPIC ?? 'welcome.skipped',
};
const registryUrl = env.REGISTRY_URL ?? 'http://127.0.0.1:8081';
const log = (line: string): void => void process.stderr.write(`${line}\n`);

export type Cause = 'dead-lettered' | 'skipped' | 'held' | 'audit-failed' | 'missing' | 'forgotten';
interface Unwelcomed {
  id: number;
  org: string;
  orgMemberId: string;
  createdAt: string;
  cause: Cause;
  detail: string;
}
interface Trace {
  at: number;
  cause: Exclude<Cause, 'missing' | 'forgotten'>;
  detail: string;
}

/** Members with neither an audit row nor a pre-existing record, created in [since, cutoff). */
async function unwelcomed(since: Date | undefined, cutoff: Date, chunk: number): Promise<{ rows: RowDataPacket[]; scanned: number }> {
  const db = await opsDb();
  try {
    const [[range]] = await db.query<RowDataPacket[]>('SELECT MIN(id) AS lo, MAX(id) AS hi FROM members');
    if (!range || range.lo === null) return { rows: [], scanned: 0 };
    const lo = Number(range.lo);
    const hi = Number(range.hi);
    const rows: RowDataPacket[] = [];
    const started = Date.now();
    let lastLog = 0;
    for (let from = lo; from <= hi; from += chunk) {
      const to = Math.min(from + chunk, hi + 1);
      const [part] = await db.query<RowDataPacket[]>(
        `SELECT m.id, m.org_id, m.org_member_id, m.created_at FROM members m
           LEFT JOIN new_members_sent_to_salesforce a ON a.org_id = m.org_id AND a.org_member_id = m.org_member_id
           LEFT JOIN welcome_preexisting_members p ON p.org_id = m.org_id AND p.org_member_id = m.org_member_id
          WHERE m.id >= ? AND m.id < ? AND m.created_at < ?${since ? ' AND m.created_at >= ?' : ''} AND a.org_id IS NULL AND p.org_id IS NULL`,
        since ? [from, to, cutoff, since] : [from, to, cutoff],
      );
      rows.push(...part);
      if (Date.now() - lastLog >= 1000 || to > hi) {
        lastLog = Date.now();
        const pct = Math.floor(((to - lo) / (hi + 1 - lo)) * 100);
        log(
          `  members ${String(pct).padStart(3)}%  up to id ${n(to - 1)}: ${n(rows.length)} without a Welcome (${((Date.now() - started) / 1000).toFixed(1)} s)`,
        );
      }
    }
    return { rows, scanned: hi + 1 - lo };
  } finally {
    await db.end();
  }
}

/** The latest trace per member, from the DLQs, the skip topic and the held topic. */
async function traces(): Promise<{ byKey: Map<string, Trace>; byId: Map<number, Trace> }> {
  const byKey = new Map<string, Trace>();
  const byId = new Map<number, Trace>();
  const put = (map: Map<string, Trace> | Map<number, Trace>, k: string | number, t: Trace): void => {
    const m = map as Map<string | number, Trace>;
    const prev = m.get(k);
    if (!prev || prev.at <= t.at) m.set(k, t);
  };
  const dlqDetail = (h: Parameters<typeof header>[0]): string =>
    `${header(h, DLQ_HEADERS.errorCode) ?? header(h, '__connect.errors.exception.class.name')?.split('.').pop() ?? 'unknown'}: ${(header(h, DLQ_HEADERS.reason) ?? header(h, '__connect.errors.exception.message') ?? '').slice(0, 160)}`;

  await readToEnd(T.emailerDlq, (m) => {
    if (m.key) put(byKey, m.key.toString(), { at: Number(m.timestamp), cause: 'dead-lettered', detail: `emailer ${dlqDetail(m.headers)}` });
  });
  await readToEnd(T.auditDlq, (m) => {
    if (m.key) put(byKey, m.key.toString(), { at: Number(m.timestamp), cause: 'audit-failed', detail: `audit sink ${dlqDetail(m.headers)}` });
  });
  // The augmenter's dead letters keep Debezium's key: the Avro {id} of the member row.
  const registry = createRegistry(registryUrl);
  const asWritten = (w: avro.Type): avro.Type => w;
  await readToEnd(T.augmenterDlq, async (m) => {
    if (!m.key) return;
    try {
      const key = await registry.decode<{ id?: number }>(m.key, asWritten);
      if (typeof key.id === 'number')
        put(byId, key.id, { at: Number(m.timestamp), cause: 'dead-lettered', detail: `augmenter ${dlqDetail(m.headers)}` });
    } catch (err) {
      // A key that is not Debezium's (a hand-made record) names no member row; a registry
      // outage must fail the run instead, or its dead letters would be reported as missing.
      if (!(err instanceof DecodeError)) throw err;
    }
  });
  await readToEnd(
    T.skipped,
    (m) => {
      if (m.key)
        put(byKey, m.key.toString(), {
          at: Number(m.timestamp),
          cause: 'skipped',
          detail: header(m.headers, GUARD_HEADERS.skipReason) ?? 'unknown rule',
        });
    },
    { progress: (d, t) => log(`  ${T.skipped}: ${n(d)}/${n(t)} read`) },
  );
  for (const [org, e] of await heldPending()) {
    for (const key of e.members)
      put(byKey, key, { at: Number.MAX_SAFE_INTEGER, cause: 'held', detail: `held by the ${org} send-rate breaker (make release-held ORG=${org})` });
  }
  return { byKey, byId };
}

async function subjectLatest(subject: string): Promise<{ id: number; type: avro.Type }> {
  const res = await fetch(`${registryUrl.replace(/\/+$/, '')}/apis/ccompat/v7/subjects/${encodeURIComponent(subject)}/versions/latest`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`registry: ${subject} latest answered ${res.status}`);
  const body = (await res.json()) as { id: number; schema: string };
  return { id: body.id, type: avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema, { wrapUnions: false }) };
}

const framed = (id: number, payload: Buffer): Buffer => {
  const h = Buffer.alloc(5);
  h.writeInt32BE(id, 1);
  return Buffer.concat([h, payload]);
};

/** A create event as Debezium writes it (ExtractNewRecordState + op, source.ts_ms, source.snapshot). */
async function redrive(ids: number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const [keySchema, valueSchema] = await Promise.all([subjectLatest(`${T.member}-key`), subjectLatest(`${T.member}-value`)]);
  const fields = (valueSchema.type as avro.types.RecordType).fields.map((f) => f.name);
  const db = await opsDb();
  const producer = createProducer(kafka);
  await producer.connect();
  let sent = 0;
  try {
    for (let i = 0; i < ids.length; i += 500) {
      const [rows] = await db.query<RowDataPacket[]>('SELECT * FROM members WHERE id IN (?)', [ids.slice(i, i + 500)]);
      const messages = rows.map((r) => {
        const value: Record<string, unknown> = Object.fromEntries(fields.map((f) => [f, null]));
        for (const f of fields) {
          const v = r[f];
          if (v !== undefined) value[f] = v instanceof Date ? v.toISOString() : v;
        }
        // A re-drive's commit time is the row's own created_at (the server set it as the INSERT
        // ran): the member was missed, not restored, so the age guard judges its signup, not
        // how late the re-drive came (stamped now, a member older than maxAgeSeconds could never
        // be recovered). Restored rows are not "missing": they are seeded as pre-existing.
        const createdAt = r.created_at instanceof Date ? r.created_at.getTime() : Date.now();
        Object.assign(value, { __op: 'c', __source_ts_ms: createdAt, __source_snapshot: 'false', __deleted: 'false' });
        return {
          key: framed(keySchema.id, keySchema.type.toBuffer({ id: Number(r.id) })),
          value: framed(valueSchema.id, valueSchema.type.toBuffer(value)),
          headers: { 'welcome.redrive': 'reconcile', 'welcome.redrive.at': new Date().toISOString() },
        };
      });
      await produceAll(
        producer,
        messages.map((m) => ({ topic: T.member, ...m })),
      );
      sent += messages.length;
      log(`  redriven ${n(sent)}/${n(ids.length)}`);
    }
  } finally {
    await producer.disconnect();
    await db.end();
  }
  return sent;
}

function metricsText(counts: Map<string, number>, missing: number, seconds: number): string {
  const lines = [
    '# HELP welcome_reconcile_members Members older than the grace period with no Welcome, by organization and cause (last reconciliation)',
    '# TYPE welcome_reconcile_members gauge',
    ...[...counts].map(([k, v]) => {
      const [org, cause] = k.split('\t');
      return `welcome_reconcile_members{org="${org}",cause="${cause}"} ${v}`;
    }),
    '# HELP welcome_reconcile_missing_members Members with no Welcome and no trace at all (last reconciliation)',
    '# TYPE welcome_reconcile_missing_members gauge',
    `welcome_reconcile_missing_members ${missing}`,
    '# HELP welcome_reconcile_last_run_timestamp_seconds When the last reconciliation finished',
    '# TYPE welcome_reconcile_last_run_timestamp_seconds gauge',
    `welcome_reconcile_last_run_timestamp_seconds ${Math.floor(Date.now() / 1000)}`,
    '# HELP welcome_reconcile_duration_seconds How long the last reconciliation took',
    '# TYPE welcome_reconcile_duration_seconds gauge',
    `welcome_reconcile_duration_seconds ${seconds.toFixed(3)}`,
  ];
  return `${lines.join('\n')}\n`;
}

interface Args {
  since?: Date;
  graceMinutes: number;
  redrive: boolean;
  json: boolean;
  chunk: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { graceMinutes: 15, redrive: false, json: false, chunk: 100_000 };
  for (const arg of argv) {
    const [k, v] = arg.split('=', 2);
    if (k === '--since' && v) {
      a.since = new Date(v);
      if (Number.isNaN(a.since.getTime())) throw new Error(`--since: "${v}" is not a date/time (e.g. 2026-12-01T00:00:00Z)`);
    } else if (k === '--grace-minutes' && v !== undefined && Number(v) >= 0) a.graceMinutes = Number(v);
    else if (k === '--chunk' && v && Number(v) > 0) a.chunk = Number(v);
    else if (k === '--redrive') a.redrive = true;
    else if (k === '--json') a.json = true;
    else throw new Error(`unknown argument "${arg}" (usage: reconcile [--since=ISO] [--grace-minutes=N] [--redrive] [--json])`);
  }
  return a;
}

export async function reconcile(args: Args): Promise<{ members: Unwelcomed[]; missing: number; scanned: number; seconds: number; redriven: number }> {
  const started = Date.now();
  const cutoff = new Date(started - args.graceMinutes * 60_000);
  log(
    `reconciling members created ${args.since ? `from ${args.since.toISOString()} ` : ''}before ${cutoff.toISOString()} (grace ${args.graceMinutes} min)`,
  );
  const { rows, scanned } = await unwelcomed(args.since, cutoff, args.chunk);
  log(`  reading the pipeline's traces (${T.emailerDlq}, ${T.augmenterDlq}, ${T.auditDlq}, ${T.skipped}, held)`);
  const { byKey, byId } = rows.length > 0 ? await traces() : { byKey: new Map<string, Trace>(), byId: new Map<number, Trace>() };
  // Forgotten members are accounted for, not missing: a re-drive would put their row on a topic again.
  const isForgotten = rows.length > 0 ? await forgottenCheck() : (): boolean => false;
  const members: Unwelcomed[] = rows.map((r) => {
    const org = String(r.org_id);
    const orgMemberId = String(r.org_member_id);
    const id = Number(r.id);
    const createdAt = (r.created_at as Date).toISOString();
    if (isForgotten(memberKey(org, orgMemberId))) return { id, org, orgMemberId, createdAt, cause: 'forgotten', detail: 'forgotten (make forget)' };
    const a = byKey.get(memberKey(org, orgMemberId));
    const b = byId.get(id);
    const t = a && b ? (a.at >= b.at ? a : b) : (a ?? b);
    return {
      id,
      org,
      orgMemberId,
      createdAt,
      cause: t?.cause ?? 'missing',
      detail: t?.detail ?? 'no trace: its change event never reached the pipeline',
    };
  });
  const missing = members.filter((m) => m.cause === 'missing');
  const redriven = args.redrive ? await redrive(missing.map((m) => m.id)) : 0;
  return { members, missing: missing.length, scanned, seconds: (Date.now() - started) / 1000, redriven };
}

if (require.main === module) {
  (async () => {
    const args = parseArgs(process.argv.slice(2));
    const r = await reconcile(args);
    const counts = new Map<string, number>();
    for (const m of r.members) counts.set(`${m.org}\t${m.cause}`, (counts.get(`${m.org}\t${m.cause}`) ?? 0) + 1);
    const file = env.RECONCILE_METRICS_FILE ?? join(env.STATE_DIR ?? '.state', 'metrics', 'welcome_reconcile.prom');
    mkdirSync(dirname(file), { recursive: true });
    // Written then renamed: the collector never reads half a file.
    writeFileSync(`${file}.tmp`, metricsText(counts, r.missing, r.seconds));
    renameSync(`${file}.tmp`, file);
    if (args.json) {
      process.stdout.write(
        `${JSON.stringify({ scanned: r.scanned, seconds: r.seconds, missing: r.missing, redriven: r.redriven, byOrgAndCause: Object.fromEntries(counts), members: r.members }, null, 2)}\n`,
      );
    } else {
      const out = (l: string): void => void process.stdout.write(`${l}\n`);
      out(
        `\n${n(r.scanned)} member ids scanned in ${r.seconds.toFixed(1)} s; ${n(r.members.length)} without a Welcome (not pre-existing), ${n(r.missing)} with no trace`,
      );
      if (counts.size > 0) {
        out(`\n  ${'ORG'.padEnd(8)} ${'CAUSE'.padEnd(14)} ${'MEMBERS'.padStart(8)}`);
        for (const [k, v] of [...counts].sort()) {
          const [org, cause] = k.split('\t');
          out(`  ${(org ?? '').padEnd(8)} ${(cause ?? '').padEnd(14)} ${String(v).padStart(8)}`);
        }
        out(`\n  ${'MEMBER'.padEnd(40)} ${'CREATED'.padEnd(24)} ${'CAUSE'.padEnd(14)} DETAIL`);
        const shown = r.members.slice(0, 200);
        for (const m of shown) out(`  ${`${m.org}/${m.orgMemberId}#${m.id}`.padEnd(40)} ${m.createdAt.padEnd(24)} ${m.cause.padEnd(14)} ${m.detail}`);
        if (r.members.length > shown.length) out(`  ... and ${n(r.members.length - shown.length)} more (ARGS=--json lists all)`);
      }
      if (args.redrive)
        out(`\nredriven: ${n(r.redriven)} missing member(s) put back on ${T.member}; run make reconcile again in a minute to see them welcomed`);
      out(`metrics: ${file}`);
    }
    // Exit only once stdout is flushed: a large --json report to a pipe is written asynchronously.
    const code = r.missing > 0 && !args.redrive ? 3 : 0;
    process.stdout.write('', () => process.exit(code));
  })().catch((err: unknown) => {
    process.stderr.write(`reconcile: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
