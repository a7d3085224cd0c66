import { stackEnv } from './env';

export interface AcceptedSend {
  messageKey: string;
  contactKey: string;
  to: string;
  definitionKey: string;
  attributes: Record<string, string | number | boolean | null>;
  receivedAt: string;
  requestId: string;
}

/** Sends the SFMC stand-in accepted for members whose org_member_id starts with `prefix`. */
export async function acceptedSends(prefix: string): Promise<AcceptedSend[]> {
  const res = await fetch(`${stackEnv.sfmcUrl}/__standin/sends`);
  const all = (await res.json()) as AcceptedSend[];
  return all.filter((s) => String(s.attributes.MemberId ?? '').startsWith(prefix));
}

export async function sfmcFaults(faults: Record<string, unknown> | null): Promise<void> {
  const res = await fetch(`${stackEnv.sfmcUrl}/__standin/faults`, {
    method: faults ? 'POST' : 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: faults ? JSON.stringify(faults) : undefined,
  });
  if (!res.ok) throw new Error(`SFMC stand-in faults answered ${res.status}: ${await res.text()}`);
}

export async function sfmcStats(): Promise<{ rejectedByCode: Record<string, number>; accepted: number; tokenRequests: number }> {
  return (await (await fetch(`${stackEnv.sfmcUrl}/__standin/stats`)).json()) as never;
}

export async function dwFaults(faults: Record<string, unknown> | null): Promise<void> {
  const res = await fetch(`${stackEnv.dwUrl}/__standin/faults`, {
    method: faults ? 'POST' : 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: faults ? JSON.stringify(faults) : undefined,
  });
  if (!res.ok) throw new Error(`warehouse stand-in faults answered ${res.status}: ${await res.text()}`);
}

/** The key the warehouse assigned (created on first lookup; stable afterwards). */
export async function subscriberKey(orgId: string, memberId: string): Promise<string> {
  const res = await fetch(`${stackEnv.dwUrl}/v1/subscriber-keys/${encodeURIComponent(orgId)}/${encodeURIComponent(memberId)}`, {
    headers: { authorization: `Bearer ${stackEnv.dwToken}` },
  });
  if (res.status !== 200) throw new Error(`key lookup answered ${res.status}`);
  return ((await res.json()) as { subscriberKey: string }).subscriberKey;
}
