/**
 * Plain-object stand-ins for the emailer handler's dependencies, shared by its unit tests:
 * a member, its input record, a "registry" that passes JSON through, an empty audit table.
 */
import type { AugmentedMember } from '../../../consumers/emailer/augmented-member';
import { createBreaker } from '../../../consumers/emailer/breaker';
import type { SentRecord } from '../../../consumers/emailer/sent-record';
import type { Registry } from '../../../consumers/shared/registry';
import type { InputRecord } from '../../../consumers/shared/stage';

export const member = (org: string, id: string, over: Partial<AugmentedMember> = {}): AugmentedMember => ({
  member_id: 1,
  org_id: org,
  org_member_id: id,
  email: `${id}@example.com`,
  first_name: 'A',
  last_name: 'B',
  locale: 'en-US',
  subscriber_key: `${org}-${id}`,
  // a signup of a second ago: older members are first asked about at SFMC (send-outcomes.ts)
  member_created_at: Date.now() - 2_000,
  source_committed_at: Date.now() - 1_000,
  augmented_at: Date.now() - 500,
  marketing_opt_in: null,
  ...over,
});

export const input = (m: AugmentedMember, offset: number, headers: InputRecord['headers'] = {}): InputRecord => ({
  topic: 'welcome.members.augmented',
  partition: 0,
  offset: String(offset),
  key: null,
  value: Buffer.from(JSON.stringify(m)),
  headers,
  timestamp: '0',
});

export const jsonRegistry: Registry = {
  register: async () => 1,
  encode: async (_id, value) => Buffer.from(JSON.stringify(value)),
  decode: async <T>(bytes: Buffer) => JSON.parse(bytes.toString()) as T,
  ping: async () => true,
};

export const nothingSent: SentRecord = {
  lookup: async () => ({ sent: new Set(), preExisting: new Set(), forgotten: new Map() }),
  ping: async () => true,
  close: async () => undefined,
};

/** Guards with a fresh breaker (no organization has a ceiling unless its config sets one). */
export const openGuards = (): { breaker: ReturnType<typeof createBreaker>; skippedTopic: string; heldTopic: string; onHeld: () => void } => ({
  breaker: createBreaker(),
  skippedTopic: 'welcome.skipped',
  heldTopic: 'welcome.held',
  onHeld: () => undefined,
});
