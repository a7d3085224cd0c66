/**
 * config/kafka-access.json read into names, grants and the topics the admin creates, for one
 * environment. Pure: tools/kafka-acls.ts applies the result to a broker, tools/k8s renders it
 * as KafkaUser and KafkaTopic resources; both read this, so they cannot drift apart.
 */
import table from '../config/kafka-access.json';
import { retentionMs } from '../consumers/shared/env';
import { dlqTopicConfigs } from '../consumers/shared/kafka';
import { HELD_TOPIC_CONFIGS, SKIPPED_TOPIC_CONFIGS } from '../consumers/emailer/guards';

type Env = Readonly<Record<string, string | undefined>>;
export type UserKey = keyof typeof table.users;
export type TopicKey = keyof typeof table.topics;
export type GroupKey = keyof typeof table.groups;
export type AclOp = 'READ' | 'WRITE' | 'DESCRIBE' | 'DESCRIBE_CONFIGS' | 'CREATE' | 'ALTER_CONFIGS';

export interface Grant {
  user: string;
  resource: 'topic' | 'group' | 'cluster';
  name: string;
  prefixed?: boolean;
  ops: AclOp[];
}

interface Named {
  env?: string;
  /** May name another variable: ${SOURCE_TOPIC_PREFIX:-cdc}.transaction. */
  default: string;
}
interface TopicRow extends Named {
  partitions?: number | string;
  configs?: string | Record<string, string>;
}
interface GrantRow {
  user: string;
  topic?: string;
  group?: string;
  cluster?: boolean;
  prefixed?: boolean;
  ops: string[];
}

const OPS: readonly AclOp[] = ['READ', 'WRITE', 'DESCRIBE', 'DESCRIBE_CONFIGS', 'CREATE', 'ALTER_CONFIGS'];

const expand = (env: Env, text: string): string =>
  text.replace(/\$\{(\w+):-([^}]*)\}/g, (_m, name: string, fallback: string) => env[name]?.trim() || fallback);
const nameOf = (env: Env, row: Named): string => (row.env && env[row.env]?.trim()) || expand(env, row.default);
const namesOf = <K extends string>(env: Env, rows: Record<K, Named>): Record<K, string> =>
  Object.fromEntries(Object.entries<Named>(rows).map(([key, row]) => [key, nameOf(env, row)])) as Record<K, string>;

export function pipelineNames(env: Env): { users: Record<UserKey, string>; topics: Record<TopicKey, string>; groups: Record<GroupKey, string> } {
  return { users: namesOf(env, table.users), topics: namesOf(env, table.topics), groups: namesOf(env, table.groups) };
}

/** Who may do what, named for this environment. Anything not granted is denied. */
export function pipelineGrants(env: Env): Grant[] {
  const names = pipelineNames(env);
  const lookup = (kind: string, map: Record<string, string>, key: string): string => {
    const name = map[key];
    if (name === undefined) throw new Error(`config/kafka-access.json: grant names an unknown ${kind} "${key}"`);
    return name;
  };
  return (table.grants as GrantRow[]).map((row): Grant => {
    const bad = row.ops.filter((op) => !OPS.includes(op as AclOp));
    if (bad.length > 0) throw new Error(`config/kafka-access.json: unknown operation(s) ${bad.join(', ')}`);
    const user = lookup('user', names.users, row.user);
    const ops = row.ops as AclOp[];
    const prefixed = row.prefixed ? { prefixed: true } : {};
    if (row.topic !== undefined) return { user, resource: 'topic', name: lookup('topic', names.topics, row.topic), ops, ...prefixed };
    if (row.group !== undefined) return { user, resource: 'group', name: lookup('group', names.groups, row.group), ops, ...prefixed };
    if (row.cluster) return { user, resource: 'cluster', name: 'kafka-cluster', ops };
    throw new Error(`config/kafka-access.json: a grant of ${row.user} names no topic, group or cluster`);
  });
}

export interface TopicToCreate {
  /** The table's key (stable across renames by environment). */
  key: TopicKey;
  topic: string;
  numPartitions: number;
  configEntries?: { name: string; value: string }[];
}

/** Named settings sets: what each stage checks on its topic at start. */
function configSet(env: Env, configs: TopicRow['configs']): Record<string, string> | undefined {
  if (configs === undefined) return undefined;
  if (typeof configs !== 'string') return configs;
  const sets: Record<string, () => Record<string, string>> = {
    dlq: () => dlqTopicConfigs(retentionMs(env, 'DLQ_RETENTION_MS', -1)),
    held: () => HELD_TOPIC_CONFIGS,
    skipped: () => SKIPPED_TOPIC_CONFIGS,
  };
  const set = sets[configs];
  if (!set) throw new Error(`config/kafka-access.json: unknown topic settings "${configs}" (one of ${Object.keys(sets).join(', ')})`);
  return set();
}

/** Topics the admin creates (those with partitions in the table), with the settings the stages expect. */
export function pipelineTopics(env: Env): TopicToCreate[] {
  return (Object.entries(table.topics) as [TopicKey, TopicRow][])
    .filter(([, row]) => row.partitions !== undefined)
    .map(([key, row]) => {
      const partitions = typeof row.partitions === 'number' ? row.partitions : Number(env[row.partitions as string] ?? 6);
      if (!Number.isInteger(partitions) || partitions < 1) throw new Error(`${String(row.partitions)} must be a positive integer (topic ${key})`);
      const configs = configSet(env, row.configs);
      return {
        key,
        topic: nameOf(env, row),
        numPartitions: partitions,
        ...(configs ? { configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) } : {}),
      };
    });
}
