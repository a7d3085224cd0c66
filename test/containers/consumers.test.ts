/**
 * Issue 23: the consumer image, built here (make test-containers: test/containers/images.sh),
 * runs each consumer stage in place of its native process: stop the native one (they share the
 * consumer group), run the container with the environment the Kubernetes manifest gives that
 * stage (tools/k8s/consumers.ts stageEnv: SASL_SSL as the stage's own principal, secrets as files
 * at the manifest's paths), non-root and read-only as the manifest runs it; it must become
 * ready, do its part of welcoming members, and on `podman stop -t <the manifest's grace>` exit 0
 * having committed what it finished. The native process is started again afterwards, and every
 * member of the test is then welcomed exactly once.
 */
import { chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { CONSUMER_POD, STAGES, stageEnv, type StageName } from '../../tools/k8s/consumers';
import { loadK8sSettings } from '../../tools/k8s/settings';
import { insertMembers, query, rootDb } from '../support/db';
import { runId, STATE_DIR } from '../support/env';
import { committedOffsets, endOffsets } from '../support/kafka';
import { stack } from '../support/pipeline';
import { acceptedSends, sfmcStats } from '../support/standins';
import { waitFor } from '../support/wait';
import { APP_IMAGE, LOCKDOWN_FLAGS, podman, podmanStatus, state } from './podman';

jest.setTimeout(600_000);
const env = process.env;
const log = (line: string): void => void process.stdout.write(`[containers] ${line}\n`);

/** The manifest's settings, pointed at this stack: its SASL_SSL listener, registry, database, stand-ins. */
const local = loadK8sSettings({
  K8S_KAFKA_BOOTSTRAP: env.KAFKA_SASL_BOOTSTRAP_SERVERS,
  K8S_REGISTRY_URL: env.REGISTRY_URL,
  K8S_DB_HOST: env.DB_HOST,
  K8S_DB_PORT: env.DB_PORT,
  K8S_SFMC_AUTH_URL: env.SFMC_AUTH_URL,
  K8S_SFMC_CLIENT_ID: env.SFMC_CLIENT_ID,
  K8S_DW_API_URL: env.DW_API_URL,
  TOPIC_PARTITIONS: env.TOPIC_PARTITIONS,
});

/** Host files for the manifest's secret paths: the stage's Kafka password, the CA, its own secrets. */
const SECRET_VALUES: Record<string, () => string> = {
  'kafka-ca/ca.crt': () => readFileSync(join(STATE_DIR, 'tls', 'ca.crt'), 'utf8'),
  'db-ca/ca.crt': () => readFileSync(join(STATE_DIR, 'tls', 'ca.crt'), 'utf8'),
  'dw-api-token/token': () => env.DW_API_TOKEN ?? '',
  'sfmc-client-secret/client-secret': () => env.SFMC_CLIENT_SECRET ?? '',
  'emailer-db-password/emailer-password': () => env.EMAILER_DB_PASSWORD ?? '',
  'welcome-forget-key/forget-key': () => env.WELCOME_FORGET_KEY ?? '',
  'delivery-db-password/delivery-password': () => env.DELIVERY_DB_PASSWORD ?? '',
};
const KAFKA_PASSWORD: Record<StageName, string | undefined> = {
  augmenter: env.KAFKA_AUGMENTER_PASSWORD,
  emailer: env.KAFKA_EMAILER_PASSWORD,
  'delivery-status': env.KAFKA_DELIVERY_PASSWORD,
};
const NATIVE_PORT: Record<StageName, string | undefined> = {
  augmenter: env.AUGMENTER_HTTP_PORT,
  emailer: env.EMAILER_HTTP_PORT,
  'delivery-status': env.DELIVERY_STATUS_HTTP_PORT,
};
const SECRETS_DIR = '/var/run/secrets/welcome';

/** podman run arguments: the manifest's env, user, read-only root and mounts; host network, so HTTP_PORT is the stage's own port here. */
function runArgs(stageName: StageName, name: string): string[] {
  const stage = STAGES.find((s) => s.name === stageName);
  if (!stage) throw new Error(stageName);
  const vars = {
    ...stageEnv(stage, local),
    HTTP_PORT: String(NATIVE_PORT[stageName]),
    LOG_LEVEL: 'info',
    // the organizations file the native stages run with (make test-containers: the unguarded one, as
    // the other suites: 40 signups in one transaction would be held by the import guard), from the image's config/
    ...(env.WELCOME_ORGS_FILE ? { WELCOME_ORGS_FILE: `/app/config/${basename(env.WELCOME_ORGS_FILE)}` } : {}),
  };
  const dir = join(STATE_DIR, 'containers', 'secrets', name);
  rmSync(dir, { recursive: true, force: true });
  const mounts: string[] = [];
  for (const [variable, path] of Object.entries(vars)) {
    if (!path.startsWith(`${SECRETS_DIR}/`)) continue;
    const rel = path.slice(SECRETS_DIR.length + 1);
    const value = rel === 'kafka-user/password' ? KAFKA_PASSWORD[stageName] : SECRET_VALUES[rel]?.();
    if (!value) throw new Error(`${variable}: no local value for ${rel}`);
    const file = join(dir, rel);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, value, { mode: 0o400 });
    // owned by the container's user, as a Secret volume with fsGroup makes it
    chownSync(file, CONSUMER_POD.uid, CONSUMER_POD.gid);
    mounts.push('-v', `${file}:${path}:ro`);
  }
  return [
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '--user',
    `${CONSUMER_POD.uid}:${CONSUMER_POD.gid}`,
    ...LOCKDOWN_FLAGS,
    '--ulimit',
    'nofile=20000:20000',
    '--ulimit',
    'nproc=4096:4096',
    ...mounts,
    ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    APP_IMAGE,
    stage.script,
  ];
}

async function httpOk(url: string): Promise<boolean> {
  return (await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok === true;
}

let db: Connection;
beforeAll(async () => {
  db = await rootDb();
});
afterAll(async () => {
  await db.end();
});

/** What "welcomed" means for a stage: a send the stand-in accepted, or (delivery-status) a final delivery status. */
async function welcomed(stage: StageName, prefix: string): Promise<number> {
  if (stage !== 'delivery-status') return new Set((await acceptedSends(prefix)).map((s) => s.messageKey)).size;
  const rows = await query<RowDataPacket>(
    db,
    "SELECT COUNT(*) AS n FROM welcome_audit WHERE org_member_id LIKE ? AND delivery_status IN ('EmailSent', 'EmailNotSent')",
    [`${prefix}%`],
  );
  return Number(rows[0]?.n ?? 0);
}

const members = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ org_id: 'UA', org_member_id: `${prefix}${i}`, email: `${prefix}${i}@example.com` }));

describe.each(STAGES.map((s) => [s.name, s] as const))('%s from the image', (stageName, stage) => {
  test('replaces the native process: ready, welcomes members, stops on SIGTERM with its offsets committed', async () => {
    const name = `welcome-${stageName}-${runId}`;
    const group = local.groups[stage.group];
    const input = local.topics[stage.input];
    const port = NATIVE_PORT[stageName];
    stack('down', stageName);
    try {
      const t0 = Date.now();
      podman(...runArgs(stageName, name));
      await waitFor(
        `${name} ready`,
        async () => {
          if (!state(name).Running) throw new Error(`${name} exited: ${podmanStatus('logs', '--tail', '30', name).out}`);
          return httpOk(`http://127.0.0.1:${port}${CONSUMER_POD.probes.readiness.path}`);
        },
        180_000,
        500,
      );
      expect(await httpOk(`http://127.0.0.1:${port}${CONSUMER_POD.probes.liveness.path}`)).toBe(true);
      log(`${stageName}: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

      // non-root, and nothing in the image is writable
      expect(podman('exec', name, 'id', '-u')).toBe(String(CONSUMER_POD.uid));
      expect(podmanStatus('exec', name, 'sh', '-c', 'touch /app/written || touch /tmp/written').status).not.toBe(0);
      expect(podman('inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', name)).toBe('true');

      const prefix = `ctr-${stageName}-${runId}-`;
      await insertMembers(db, members(prefix, 5));
      await waitFor(`${stageName} (container) welcomes 5 members`, async () => (await welcomed(stageName, prefix)) === 5, 120_000, 500);
      log(`${stageName}: welcomed 5 members through the container`);

      // a burst in flight at SIGTERM: what it finished must be committed, the rest re-read by the native process
      const burst = `${prefix}burst-`;
      await insertMembers(db, members(burst, 40));
      await waitFor(`${stageName} (container) has started on the burst`, async () => (await welcomed(stageName, burst)) > 0, 60_000, 100);
      const resendsBefore = (await sfmcStats()).rejectedByCode['109110'] ?? 0;
      const peakRssKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${state(name).Pid}/status`, 'utf8'))?.[1] ?? 0);
      const stopped = Date.now();
      podman('stop', '-t', String(CONSUMER_POD.terminationGraceSeconds), name);
      const { ExitCode } = state(name);
      const logs = podmanStatus('logs', name).out;
      const [committed, ends] = await Promise.all([committedOffsets(group, input), endOffsets(input)]);
      const committedTotal = [...committed.values()].reduce((a, b) => a + b, 0n);
      log(
        `${stageName}: podman stop -t ${CONSUMER_POD.terminationGraceSeconds} → exit ${ExitCode} in ${((Date.now() - stopped) / 1000).toFixed(1)} s; ` +
          `group ${group} committed ${committedTotal} of ${[...ends.values()].reduce((a, b) => a + b, 0n)} on ${input}; peak RSS ${Math.round(peakRssKiB / 1024)} MiB`,
      );
      expect(ExitCode).toBe(0);
      expect(logs).toContain('consumer stopped and offsets committed');
      expect(logs).not.toMatch(/shutdown deadline passed/);
      for (const [p, end] of ends) expect((committed.get(p) ?? 0n) <= end).toBe(true);

      stack('up', stageName);
      // the native process takes the group over: every member welcomed, and exactly once
      await waitFor(`all 40 of the burst welcomed after the handover`, async () => (await welcomed(stageName, burst)) === 40, 180_000, 500);
      if (stageName !== 'delivery-status') expect((await acceptedSends(burst)).length).toBe(40);
      // what the container sent before it stopped was committed: the native emailer re-sent none of it (SFMC's 109110)
      if (stageName === 'emailer') expect((await sfmcStats()).rejectedByCode['109110'] ?? 0).toBe(resendsBefore);
      await waitFor(
        `${group} caught up on ${input}`,
        async () => {
          const [c, e] = await Promise.all([committedOffsets(group, input), endOffsets(input)]);
          return [...e].every(([p, end]) => end === 0n || c.get(p) === end);
        },
        120_000,
        500,
      );
    } finally {
      podmanStatus('rm', '-f', name);
      rmSync(join(STATE_DIR, 'containers', 'secrets', name), { recursive: true, force: true });
      stack('up', stageName);
    }
  });
});
