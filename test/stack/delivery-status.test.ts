/**
 * Issue 12 items 5 and 6 on the real stack: every Welcome gets SFMC's delivery status in the
 * audit view (EmailSent, or EmailNotSent with SFMC's reason), and a later duplicate
 * WelcomeSent never overwrites the audit row's first send.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { createRegistry } from '../../consumers/shared/registry';
import { loadSchema, valueSubject } from '../../consumers/shared/schemas';
import { welcomeMessageKey } from '../../consumers/shared/sfmc-client';
import { insertMembers, query, rootDb } from '../support/db';
import { runId, stackEnv } from '../support/env';
import { produceRaw } from '../support/kafka';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
});
afterAll(async () => {
  await db.end();
});

const deliveryMetricsUrl = `http://127.0.0.1:${process.env['DELIVERY_STATUS_HTTP_PORT'] ?? '9467'}/metrics`;

async function metricValue(name: string, labels: string): Promise<number> {
  const text = await (await fetch(deliveryMetricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

test("each Welcome gets its final delivery status: EmailSent, or EmailNotSent with SFMC's code and message (unsubscribed, held)", async () => {
  const prefix = `ds-${runId}-`;
  const notSentBefore = await metricValue('welcome_delivery_status_total', 'status="EmailNotSent"');
  await insertMembers(db, [
    { org_id: 'UA', org_member_id: `${prefix}ok`, email: `${prefix}ok@example.com` },
    { org_id: 'UA', org_member_id: `${prefix}unsub`, email: `${prefix}unsub@unsubscribed.example` },
    { org_id: 'AA', org_member_id: `${prefix}held`, email: `${prefix}held@held.example` },
  ]);
  // The stack's stand-in reports EmailQueued for 500 ms first: the final status comes from a re-check or a later first check.
  const rows = await waitFor(
    'three final delivery statuses in welcome_audit',
    async () => {
      const r = await query<RowDataPacket>(
        db,
        "SELECT * FROM welcome_audit WHERE org_member_id LIKE ? AND delivery_status IN ('EmailSent', 'EmailNotSent')",
        [`${prefix}%`],
      );
      return r.length === 3 ? r : undefined;
    },
    120_000,
    500,
  );
  const by = new Map(rows.map((r) => [String(r.org_member_id).slice(prefix.length), r]));
  expect(by.get('ok')).toMatchObject({
    delivery_status: 'EmailSent',
    delivery_status_code: null,
    message_key: welcomeMessageKey('UA', `${prefix}ok`),
  });
  expect(by.get('unsub')).toMatchObject({ delivery_status: 'EmailNotSent', delivery_status_code: 1, delivery_status_message: 'Unsubscribed' });
  expect(by.get('held')).toMatchObject({ delivery_status: 'EmailNotSent', delivery_status_code: 2, delivery_status_message: 'Held' });
  for (const r of rows) expect(r.delivery_checked_at).toBeInstanceOf(Date);
  // Counted for the dashboards and `make status`.
  expect(await metricValue('welcome_delivery_status_total', 'status="EmailNotSent"')).toBeGreaterThanOrEqual(notSentBefore + 2);
});

test("a later duplicate WelcomeSent (a 109110 answer, a replay) leaves the audit row's first request id and send time as they were", async () => {
  const prefix = `first-${runId}-`;
  const id = `${prefix}m`;
  await insertMembers(db, [{ org_id: 'UA', org_member_id: id, email: `${id}@example.com` }]);
  const first = await waitFor(
    'the first audit row',
    async () =>
      (await query<RowDataPacket>(db, 'SELECT * FROM new_members_sent_to_salesforce WHERE org_id = ? AND org_member_id = ?', ['UA', id]))[0],
    60_000,
  );
  expect(first.request_id).toEqual(expect.any(String));

  // What the emailer writes when SFMC answers 109110 to a resend: no request id, a later time.
  const registry = createRegistry(stackEnv.registryUrl);
  const schemaId = await registry.register(valueSubject(stackEnv.sentTopic), loadSchema('welcome-sent.avsc'), 'BACKWARD');
  const later = (first.sent_at as Date).getTime() + 3_600_000;
  const welcomeSent = (orgMemberId: string, requestId: string | null) => ({
    org_id: 'UA',
    org_member_id: orgMemberId,
    member_id: first.member_id,
    subscriber_key: first.subscriber_key,
    message_key: welcomeMessageKey('UA', orgMemberId),
    request_id: requestId,
    definition_key: first.definition_key,
    source_committed_at: null,
    sent_at: later,
  });
  // The duplicate, then a marker on the same partition: once the marker's row exists, the sink has written the duplicate too.
  const marker = `${prefix}marker`;
  await produceRaw(stackEnv.sentTopic, [
    { key: `UA:${id}`, value: await registry.encode(schemaId, welcomeSent(id, null)), partition: 0 },
    { key: `UA:${marker}`, value: await registry.encode(schemaId, welcomeSent(marker, 'marker-request')), partition: 0 },
  ]);
  try {
    const markerRow = await waitFor(
      'the marker row (the sink got past the duplicate)',
      async () =>
        (await query<RowDataPacket>(db, 'SELECT * FROM new_members_sent_to_salesforce WHERE org_id = ? AND org_member_id = ?', ['UA', marker]))[0],
      60_000,
    );
    expect(markerRow).toMatchObject({ request_id: 'marker-request' });
    expect((markerRow.sent_at as Date).getTime()).toBe(later); // the sink does write what it is given
    const after = (
      await query<RowDataPacket>(db, 'SELECT * FROM new_members_sent_to_salesforce WHERE org_id = ? AND org_member_id = ?', ['UA', id])
    )[0];
    expect(after?.request_id).toBe(first.request_id);
    expect((after?.sent_at as Date).getTime()).toBe((first.sent_at as Date).getTime());
  } finally {
    await db.query('DELETE FROM new_members_sent_to_salesforce WHERE org_id = ? AND org_member_id = ?', ['UA', marker]);
  }
});
