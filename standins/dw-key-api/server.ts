import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { int, optionalStr, str } from '../../consumers/shared/env';
import { createLogger, type Logger } from '../../consumers/shared/logger';
import { mergeFaults, NO_FAULTS, takeAnswer, takeFailure, takeMalformed, type Faults } from './faults';
import { writeExample } from '../answer-faults';
import { BodyError, delay, hasBearerToken, readJsonBody, sendJson, sendText } from './http-io';
import { KeyStore } from './key-store';
import { lookupKeys, memberIdProblem, parseLookupBody } from './lookup';

/**
 * Local stand-in for the warehouse Subscriber Key API (contract: docs/contracts/dw-key-api.md).
 * API routes: POST /v1/subscriber-keys:lookup, GET /v1/subscriber-keys/{orgId}/{memberId}, GET /healthz.
 * Control routes (no token, never faulted): GET|POST|DELETE /__standin/faults, GET|DELETE /__standin/stats.
 */
export interface DwKeyApiStandinOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  token: string;
  /** Append-only JSON-lines key store; without it keys live in memory only. */
  dataFile?: string;
  orgs?: readonly string[];
  logger?: Logger;
  /** For failShare; tests may pass a scripted one. */
  random?: () => number;
}

export interface DwKeyApiStats {
  lookups: number;
  membersLooked: number;
  keysCreated: number;
  keysStored: number;
  byStatus: Record<string, number>;
}

export interface DwKeyApiStandin {
  server: Server;
  url: string;
  port: number;
  faults(): Faults;
  setFaults(update: Partial<Faults>): Faults;
  resetFaults(): void;
  stats(): DwKeyApiStats;
  close(): Promise<void>;
}

export const DEFAULT_ORGS = ['UA', 'AA', 'DL'];

/** The members of a lookup body as member refs (for the answer fault); none when the body is not one. */
function lookupRefs(body: unknown): string[] {
  const members = parseLookupBody(body);
  return Array.isArray(members) ? members.map((m) => `${m.orgId}\u0000${m.memberId}`) : [];
}
function singleRef(rest: string): string[] {
  const [org = '', member = ''] = rest.split('/');
  try {
    return [`${decodeURIComponent(org)}\u0000${decodeURIComponent(member)}`];
  } catch {
    return [];
  }
}

const LOOKUP_PATH = '/v1/subscriber-keys:lookup';
const KEY_PREFIX = '/v1/subscriber-keys/';

export async function createDwKeyApiStandin(options: DwKeyApiStandinOptions): Promise<DwKeyApiStandin> {
  const store = KeyStore.open(options.dataFile);
  const orgs = new Set(options.orgs ?? DEFAULT_ORGS);
  const random = options.random ?? Math.random;
  const log = options.logger;
  let faults: Faults = { ...NO_FAULTS };
  const pendingDelays = new Set<() => void>();
  const counters = { lookups: 0, membersLooked: 0, keysCreated: 0, byStatus: {} as Record<string, number> };

  const stats = (): DwKeyApiStats => ({ ...counters, byStatus: { ...counters.byStatus }, keysStored: store.size });

  async function handleApi(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/healthz') {
      if (req.method !== 'GET') return sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', message: 'use GET' });
      return faults.down ? sendJson(res, 503, { status: 'down' }) : sendJson(res, 200, { status: 'ok', keys: store.size });
    }
    const isLookup = path === LOOKUP_PATH;
    if (!isLookup && !path.startsWith(KEY_PREFIX)) return sendJson(res, 404, { error: 'NOT_FOUND', message: `no route ${path}` });

    if (faults.latencyMs > 0 && !(await delay(faults.latencyMs, res, pendingDelays))) return;
    // A row of the answer tables, on demand (faults.ts): before everything else the stand-in would answer.
    const body = isLookup && req.method === 'POST' ? await readJsonBody(req) : undefined;
    const refs = isLookup ? lookupRefs(body) : singleRef(path.slice(KEY_PREFIX.length));
    const served = takeAnswer(faults, isLookup ? 'dw-lookup' : 'dw-key', refs);
    if (served) return writeExample(req, res, served);
    const failure = takeFailure(faults, random);
    if (failure?.status === 429) {
      return sendJson(res, 429, { error: 'RATE_LIMITED', message: 'slow down' }, { 'retry-after': String(failure.retryAfterS) });
    }
    if (failure) return sendJson(res, 503, { error: 'UNAVAILABLE', message: `injected (${failure.reason})` });
    if (!hasBearerToken(req, options.token)) {
      return sendJson(res, 401, { error: 'UNAUTHORIZED', message: 'missing or wrong bearer token' }, { 'www-authenticate': 'Bearer' });
    }
    counters.lookups += 1;
    return isLookup ? handleLookup(req, res, body) : handleSingle(req, res, path.slice(KEY_PREFIX.length));
  }

  async function handleLookup(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', message: 'use POST' });
    const members = parseLookupBody(body);
    if (!Array.isArray(members)) return sendJson(res, 400, members);
    const { response, created } = lookupKeys(members, orgs, store);
    counters.membersLooked += response.keys.length + response.errors.length;
    counters.keysCreated += created;
    // The keys exist (and are persisted) even when we then answer garbage: like a real proxy mangling a reply.
    if (
      takeMalformed(
        faults,
        members.map((m) => m.memberId),
      )
    )
      return sendText(res, 200, '{"keys": [ <html>502 Bad Gateway', 'application/json');
    return sendJson(res, 200, response);
  }

  function handleSingle(req: IncomingMessage, res: ServerResponse, rest: string): void {
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', message: 'use GET' });
    const parts = rest.split('/');
    if (parts.length !== 2) return sendJson(res, 404, { error: 'NOT_FOUND', message: 'use /v1/subscriber-keys/{orgId}/{memberId}' });
    let orgId: string;
    let memberId: string;
    try {
      orgId = decodeURIComponent(parts[0] ?? '');
      memberId = decodeURIComponent(parts[1] ?? '');
    } catch {
      return sendJson(res, 400, { error: 'MALFORMED_PATH', message: 'path segments are not valid percent-encoding' });
    }
    if (!orgs.has(orgId)) return sendJson(res, 404, { code: 'UNKNOWN_ORG', message: `organization "${orgId}" is not known` });
    const problem = memberIdProblem(memberId);
    if (problem) return sendJson(res, 400, { error: 'INVALID_MEMBER_ID', message: problem });
    const { keys, created } = store.getOrCreate([{ orgId, memberId }]);
    counters.membersLooked += 1;
    counters.keysCreated += created;
    // A lookup of one member is a lookup too: malformedJson / malformedFor garble it like a batch one.
    if (takeMalformed(faults, [memberId])) return sendText(res, 200, '{"orgId": <html>502 Bad Gateway', 'application/json');
    return sendJson(res, 200, { orgId, memberId, subscriberKey: keys[0] });
  }

  function handleControl(req: IncomingMessage, res: ServerResponse, path: string, body: unknown): void {
    if (path === '/__standin/faults') {
      if (req.method === 'DELETE') faults = { ...NO_FAULTS };
      else if (req.method === 'POST') {
        const next = mergeFaults(faults, body);
        if (typeof next === 'string') return sendJson(res, 400, { error: 'BAD_FAULTS', message: next });
        faults = next;
        log?.info({ faults }, 'faults set');
      } else if (req.method !== 'GET') return sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', message: 'GET, POST or DELETE' });
      return sendJson(res, 200, faults);
    }
    if (path === '/__standin/stats') {
      if (req.method === 'DELETE') Object.assign(counters, { lookups: 0, membersLooked: 0, keysCreated: 0, byStatus: {} });
      else if (req.method !== 'GET') return sendJson(res, 405, { error: 'METHOD_NOT_ALLOWED', message: 'GET or DELETE' });
      return sendJson(res, 200, stats());
    }
    return sendJson(res, 404, { error: 'NOT_FOUND', message: `no route ${path}` });
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://standin').pathname;
    const control = path.startsWith('/__standin/');
    if (!control) {
      res.once('finish', () => {
        const status = String(res.statusCode);
        counters.byStatus[status] = (counters.byStatus[status] ?? 0) + 1;
      });
    }
    const work = control
      ? (req.method === 'POST' ? readJsonBody(req) : Promise.resolve(undefined)).then((body) => handleControl(req, res, path, body))
      : handleApi(req, res, path);
    work.catch((err: unknown) => {
      if (err instanceof BodyError) return sendJson(res, 400, { error: 'MALFORMED_BODY', message: err.message });
      log?.error({ err, path }, 'stand-in request failed');
      return sendJson(res, 500, { error: 'INTERNAL', message: 'stand-in failure' });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    server,
    url,
    port,
    faults: () => ({ ...faults }),
    setFaults(update) {
      const next = mergeFaults(faults, update);
      if (typeof next === 'string') throw new Error(next);
      faults = next;
      return { ...faults };
    },
    resetFaults: () => {
      faults = { ...NO_FAULTS };
    },
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const cancel of [...pendingDelays]) cancel();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // keep-alive clients would otherwise hold close() open
      }),
  };
}

/** Entry point: configuration from the environment, read here and nowhere else. */
async function main(): Promise<void> {
  const env = process.env;
  const logger = createLogger('dw-key-api-standin', str(env, 'LOG_LEVEL', 'info'));
  const orgs = str(env, 'DW_STANDIN_ORGS', DEFAULT_ORGS.join(','))
    .split(',')
    .map((org) => org.trim())
    .filter(Boolean);
  const standin = await createDwKeyApiStandin({
    port: int(env, 'DW_STANDIN_PORT', 8091, 0, 65_535),
    // loopback unless a container sets 0.0.0.0 (compose)
    host: str(env, 'DW_STANDIN_HOST', '127.0.0.1'),
    token: str(env, 'DW_STANDIN_TOKEN', 'local-dw-token'),
    dataFile: optionalStr(env, 'DW_STANDIN_DATA_FILE'),
    orgs,
    logger,
  });
  logger.info(
    { url: standin.url, orgs, keys: standin.stats().keysStored, dataFile: env.DW_STANDIN_DATA_FILE ?? null },
    'dw key api stand-in listening',
  );
  const stop = (signal: string): void => {
    logger.info({ signal }, 'stopping');
    standin.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`dw key api stand-in failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
