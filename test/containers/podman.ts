/**
 * podman as it runs here (no Docker engine, no systemd session): the image store of
 * test/containers/images.sh under $STATE_DIR/containers, vfs, runc (crun refuses the hybrid
 * cgroups), cgroupfs, ulimits within the machine's hard limits.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { STATE_DIR } from '../support/env';

const CTR = join(STATE_DIR, 'containers');
const GLOBAL = [
  '--root',
  join(CTR, 'storage'),
  '--runroot',
  join(CTR, 'runroot'),
  '--storage-driver',
  'vfs',
  '--runtime',
  'runc',
  '--cgroup-manager',
  'cgroupfs',
];
export const APP_IMAGE = 'localhost/welcome-consumers:dev';
/** As the manifests run a consumer: no writable root (no tmpfs either), no capability, no privilege gain. */
export const LOCKDOWN_FLAGS = ['--read-only', '--read-only-tmpfs=false', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges'] as const;

export function podman(...args: string[]): string {
  return execFileSync('podman', [...GLOBAL, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }).trim();
}

/** podman that may fail: exit status and output, for checks that expect a refusal. */
export function podmanStatus(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('podman', [...GLOBAL, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

export interface ContainerState {
  Running: boolean;
  ExitCode: number;
  Pid: number;
}
export const state = (name: string): ContainerState => JSON.parse(podman('inspect', '--format', '{{json .State}}', name)) as ContainerState;
