/** The emailer's reader view of NewMemberAugmented: the current schema file, resolving older writers. */
import avro from 'avsc';
import { loadSchema } from '../shared/schemas';

export interface AugmentedMember {
  member_id: number;
  org_id: string;
  org_member_id: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
  locale: string | null;
  subscriber_key: string;
  member_created_at: number | null;
  source_committed_at: number;
  augmented_at: number;
  marketing_opt_in: boolean | null;
  /** The INSERT's transaction and the row's place in it (from 1): the import guard's input. */
  source_transaction_id?: string | null;
  source_transaction_order?: number | null;
}

export function augmentedMemberReader(): avro.Type {
  return avro.Type.forSchema(loadSchema('new-member-augmented.avsc'), { wrapUnions: false });
}
