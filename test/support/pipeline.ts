import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { committedOffsets, endOffsets } from './kafka';
import { ROOT, stackEnv } from './env';
import { waitFor } from './wait';

/** True when the group has committed every record of the topic (offset = end, i.e. last + 1). */
export async function caughtUp(groupId: string, topic: string): Promise<boolean> {
  const [done, ends] = await Promise.all([committedOffsets(groupId, topic), endOffsets(topic)]);
  return [...ends].every(([p, end]) => end === 0n || done.get(p) === end);
}

/** Both stages have committed everything written so far (no lag anywhere). */
export async function waitPipelineIdle(timeoutMs = 60_000): Promise<void> {
  await waitFor(
    'augmenter and emailer to commit every record',
    async () => (await caughtUp('welcome-augmenter', stackEnv.memberTopic)) && (await caughtUp('welcome-emailer', stackEnv.augmentedTopic)),
    timeoutMs,
    300,
  );
}

/** The stack script, for restarts and kills by recorded pid. */
export function stack(...args: string[]): string {
  return execFileSync(join(ROOT, 'stack/bin/stack'), args, { encoding: 'utf8', env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function pidOf(service: string): number {
  return Number(stack('pid', service).trim());
}
