/**
 * `make bench-standin`: the SFMC stand-in alone under the bench's load, so its own cost can be
 * measured before and after a change without the stack: it starts the stand-in as a child
 * process (its data file in a temp dir), sends BENCH_STANDIN_SENDS Welcomes in batches of
 * BENCH_STANDIN_BATCH from BENCH_STANDIN_CLIENTS concurrent clients (the emailer's shape:
 * per-recipient attributes like the emailer's), follows GET /__standin/sends?since= every
 * 500 ms as the bench does, then prints the child's RSS and CPU seconds from /proc.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './lib/stats';

const env = process.env;
const total = Number(env.BENCH_STANDIN_SENDS ?? 200_000);
const batch = Number(env.BENCH_STANDIN_BATCH ?? 200);
const clients = Number(env.BENCH_STANDIN_CLIENTS ?? 3);
const port = Number(env.BENCH_STANDIN_PORT ?? 9479);
const base = `http://127.0.0.1:${port}`;

function procOf(pid: number): { rssMiB: number; cpuS: number } {
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMiB: Math.round(Number(rss) / 1024), cpuS: (Number(f[11]) + Number(f[12])) / 100 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'standin-load-'));
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', env.BENCH_STANDIN_SERVER ?? join(__dirname, '..', 'standins', 'sfmc', 'server.ts')],
    {
      env: {
        ...env,
        SFMC_STANDIN_PORT: String(port),
        SFMC_STANDIN_HOST: '127.0.0.1',
        SFMC_STANDIN_DATA_FILE: join(dir, 'sends.jsonl'),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  try {
    for (let i = 0; ; i++) {
      if ((await fetch(`${base}/healthz`).catch(() => undefined))?.ok) break;
      if (i > 100) throw new Error('stand-in did not start');
      await sleep(100);
    }
    const pid = child.pid as number;
    const idle = procOf(pid);
    const tok = (await (
      await fetch(`${base}/v2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'local-client', client_secret: 'local-secret' }),
      })
    ).json()) as { access_token: string };
    const t0 = Date.now();
    let since = t0 - 1000;
    let seen = 0;
    let done = false;
    const follower = (async () => {
      while (!done) {
        const sends = (await (await fetch(`${base}/__standin/sends?since=${new Date(since).toISOString()}`)).json()) as { receivedAt: string }[];
        for (const s of sends) since = Math.max(since, Date.parse(s.receivedAt));
        seen += sends.length;
        await sleep(500);
      }
    })();
    let next = 0;
    const run = `${Date.now().toString(36)}`;
    const worker = async (): Promise<void> => {
      while (next < total) {
        const from = next;
        next += batch;
        const recipients = Array.from({ length: Math.min(batch, total - from) }, (_, k) => {
          const n = from + k;
          return {
            contactKey: `UA-${run}${n}`,
            to: `member-${run}-${n}@example.com`,
            messageKey: `welcome-${run}-${n}-abcdefghijklmnopqrstuvwxyz0123`,
            attributes: {
              FirstName: 'Bench',
              MemberId: `bench-${run}-${n}`,
              Org: 'UA',
              SubscriberKey: `UA-${run}${n}`,
              JoinedAt: new Date().toISOString(),
            },
          };
        });
        const res = await fetch(`${base}/messaging/v1/email/messages/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tok.access_token}` },
          body: JSON.stringify({ definitionKey: 'welcome-ua', recipients }),
        });
        if (res.status !== 202) throw new Error(`send answered ${res.status}`);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: clients }, () => worker()));
    const sentMs = Date.now() - t0;
    await sleep(1_000);
    done = true;
    await follower;
    const end = procOf(pid);
    const all = await fetch(`${base}/__standin/sends`);
    const allCount = ((await all.json()) as unknown[]).length;
    const afterList = procOf(pid);
    process.stdout.write(
      `${JSON.stringify({
        sends: total,
        batch,
        clients,
        sendsPerS: Math.round((total / sentMs) * 1000),
        followedBySince: seen,
        listedAll: allCount,
        idleRssMiB: idle.rssMiB,
        rssMiBAfterSends: end.rssMiB,
        rssMiBAfterFullList: afterList.rssMiB,
        cpuSDuringSends: +(end.cpuS - idle.cpuS).toFixed(2),
        cpuMsPer1000Sends: Math.round(((end.cpuS - idle.cpuS) / total) * 1e6),
      })}\n`,
    );
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`standin load failed: ${String(err)}\n`);
  process.exit(1);
});
