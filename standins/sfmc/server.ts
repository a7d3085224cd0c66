import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { createLogger, type Logger } from '../../consumers/shared/logger';
import { int, optionalStr, secret, str, type Env } from '../../consumers/shared/env';
import { sleep } from '../../consumers/shared/retry';
import { DEFAULT_FAULTS, type FaultSettings, type NotSentReason, type SendAttempt, SfmcStandinState } from './state';
import { NO_EXTRA, recipientsOf, splitExtraPatch, takeAnswer, takeHold, tooMany, type ExtraFaults } from './faults';
import { writeExample } from '../answer-faults';
import type { ExampleAnswer } from '../../consumers/shared/answers';
import { genericError, handleBatchSend, handleSingleSend, handleStatus, handleToken, type Reply } from './handlers';

/**
 * Local stand-in for Salesforce Marketing Cloud (auth + Transactional Messaging API), built
 * on node:http only. It follows docs/contracts/sfmc.md so the production client runs
 * against it unchanged; extra routes under /__standin/ let tests and the benchmark inject
 * faults and inspect what was accepted.
 */

export interface SfmcStandinOptions {
  port?: number;
  host?: string;
  clientId?: string;
  clientSecret?: string;
  definitionKeys?: readonly string[];
  /** Token lifetime in seconds, reported as expires_in; fractions allowed for tests. */
  tokenTtlS?: number;
  dedupWindowMs?: number;
  /** JSON-lines file of accepted sends, reloaded on start (dedup survives a restart). */
  dataFile?: string;
  /** Base URL put into rest_instance_url; default: derived from the request's Host header. */
  publicUrl?: string;
  keepAliveTimeoutMs?: number;
  faults?: Partial<FaultSettings>;
  /** Addresses (or @domains) accepted but reported EmailNotSent by the status call. */
  notSent?: ReadonlyMap<string, NotSentReason>;
  /** How long a message reports EmailQueued before its final status (default 0). */
  queuedMs?: number;
  now?: () => number;
  logger?: Logger;
}

export interface SfmcStandin {
  server: Server;
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 (use as authBaseUrl). */
  url: string;
  port: number;
  state: SfmcStandinState;
  close(): Promise<void>;
}

export const DEFAULT_DEFINITION_KEYS = ['welcome-ua', 'welcome-aa', 'welcome-dl'];
const TWO_DAYS_MS = 2 * 24 * 3600_000;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MESSAGES_PATH = '/messaging/v1/email/messages';
/** EmailNotSent reasons the stand-in reports (SFMC's info.statusCode / statusMessage). */
export const UNSUBSCRIBED: NotSentReason = { statusCode: 1, statusMessage: 'Unsubscribed' };
export const HELD: NotSentReason = { statusCode: 2, statusMessage: 'Held' };
/** Defaults of the lists: any address of these (reserved, never routable) domains. */
export const DEFAULT_UNSUBSCRIBED = ['@unsubscribed.example'];
export const DEFAULT_HELD = ['@held.example'];

/** address-or-@domain lists → the lookup the state uses; later lists win on overlap. */
export function notSentLists(lists: readonly [readonly string[], NotSentReason][]): Map<string, NotSentReason> {
  const map = new Map<string, NotSentReason>();
  for (const [entries, reason] of lists) for (const e of entries) if (e.trim()) map.set(e.trim().toLowerCase(), reason);
  return map;
}

class BadRequest extends Error {}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BadRequest('Request body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BadRequest('Request body is not valid JSON');
  }
}

/** A messageKey from the path; a malformed one as it is (the handlers answer it 400). */
const decodedKey = (raw: string): string => {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
};

function write(res: ServerResponse, reply: Reply): void {
  const payload = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), ...reply.headers });
  res.end(payload);
}

/**
 * A JSON array of the log's lines, written as it is read: a full listing after a bench is
 * ~270,000 sends (~130 MB of JSON), which must not sit in memory at once. Waits for the
 * socket to drain between chunks.
 */
async function streamSends(res: ServerResponse, lines: Iterable<string>): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  let chunk: string[] = [];
  let first = true;
  const flush = async (): Promise<void> => {
    const text = (first ? '[' : ',') + chunk.join(',');
    first = false;
    chunk = [];
    if (res.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        res.off('drain', done).off('close', done);
        resolve();
      };
      res.on('drain', done).on('close', done);
    });
  };
  for (const line of lines) {
    chunk.push(line);
    if (chunk.length >= 2000) await flush();
    if (res.destroyed) return;
  }
  if (chunk.length > 0 || first) await flush();
  res.end(']');
}

function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

function parseFaultPatch(body: unknown): Partial<FaultSettings> & { expireTokens?: boolean } {
  if (typeof body !== 'object' || body === null) throw new BadRequest('Faults must be a JSON object');
  const patch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key === 'expireTokens') patch[key] = value === true;
    else if (key in DEFAULT_FAULTS && typeof value === 'number' && Number.isFinite(value) && value >= 0) patch[key] = value;
    else throw new BadRequest(`Unknown or invalid fault setting "${key}"`);
  }
  return patch as Partial<FaultSettings> & { expireTokens?: boolean };
}

/** Whole-request faults for send calls; the fault's name (the attempts' outcome) when the request has been dealt with. */
function injectSendFault(state: SfmcStandinState, req: IncomingMessage, res: ServerResponse): string | undefined {
  const f = state.faults;
  if (state.takeFault('dropConnections')) {
    req.socket.destroy();
    return 'dropped';
  }
  if (state.takeFault('fail429')) {
    const blocked = f.throttleCode === 50200;
    write(res, {
      status: 429,
      body: blocked
        ? { message: 'Temporarily blocked: too many concurrent requests', errorcode: 50200, documentation: '' }
        : { message: 'Too Many Requests', errorcode: 50100, documentation: '', retryAfter: f.retryAfterS },
      headers: blocked ? {} : { 'retry-after': String(f.retryAfterS) },
    });
    return '429';
  }
  if (state.takeFault('fail5xx')) {
    const status = f.fail5xxStatus;
    write(res, {
      status,
      body: { message: 'Service Unavailable', errorcode: 50300, documentation: '' },
      headers: status === 503 ? { 'retry-after': String(f.retryAfterS) } : {},
    });
    return `5xx:${status}`;
  }
  return undefined;
}

/**
 * The recipients of a send POST as attempts, waiting for their outcome: `pathKey` is the single
 * send's messageKey (from its path), undefined for a batch. A recipient without a usable
 * messageKey is recorded under "" (SFMC would answer it 109001 or make one up).
 */
function attemptsOf(state: SfmcStandinState, pathKey: string | undefined, body: unknown): (outcome: (messageKey: string) => string) => SendAttempt[] {
  const at = new Date(state.now()).toISOString();
  const b = isRecordish(body) ? body : {};
  const definitionKey = typeof b['definitionKey'] === 'string' ? b['definitionKey'] : '';
  const shared = isRecordish(b['attributes']) ? b['attributes'] : {};
  const recipients = recipientsOf(body).map((r) => {
    const attributes = {
      ...shared,
      ...(isRecordish((r as Record<string, unknown>)['attributes']) ? ((r as Record<string, unknown>)['attributes'] as Record<string, unknown>) : {}),
    };
    const memberId = attributes['MemberId'];
    return {
      at,
      messageKey: pathKey ?? (typeof r.messageKey === 'string' ? r.messageKey : ''),
      contactKey: typeof r.contactKey === 'string' ? r.contactKey : '',
      to: typeof r.to === 'string' ? r.to : '',
      definitionKey,
      ...(memberId !== undefined && memberId !== null ? { memberId: String(memberId) } : {}),
    };
  });
  return (outcome) => recipients.map((r) => ({ ...r, outcome: outcome(r.messageKey) }));
}

const isRecordish = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What the stand-in's own reply did with one messageKey: accepted, 109110, or the rejection's code. */
function outcomeOf(reply: Reply, messageKey: string): string {
  const body = (isRecordish(reply.body) ? reply.body : {}) as { errorcode?: unknown; responses?: unknown };
  if (reply.status !== 202) return body.errorcode === 109110 ? '109110' : `rejected:${String(body.errorcode ?? reply.status)}`;
  const mine = Array.isArray(body.responses) ? (body.responses as Record<string, unknown>[]).find((r) => r['messageKey'] === messageKey) : undefined;
  const code = mine?.['errorcode'];
  if (code === undefined) return 'accepted';
  return code === 109110 ? '109110' : `rejected:${String(code)}`;
}

function createHandler(state: SfmcStandinState, options: SfmcStandinOptions) {
  const extra: ExtraFaults & { inFlight: number } = { ...NO_EXTRA, answer: [], answerFor: [], inFlight: 0 };
  const publicBase = (req: IncomingMessage): string => options.publicUrl?.replace(/\/+$/, '') ?? `http://${req.headers.host ?? '127.0.0.1'}`;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // "//v2/token" would parse as a protocol-relative URL (host "v2"): collapse leading slashes first.
    const url = new URL((req.url ?? '/').replace(/^\/{2,}/, '/'), 'http://standin');
    // SFMC tolerates doubled and trailing slashes: Salesforce's own SDK joins
    // rest_instance_url (ending in "/") with paths starting with "/", giving "//v2/token".
    const path = url.pathname.replace(/\/{2,}/g, '/').replace(/(.)\/+$/, '$1');
    const method = req.method ?? 'GET';

    if (path === '/healthz') return write(res, { status: 200, body: { status: 'ok' } });
    if (path === '/__standin/faults') {
      if (method === 'POST') {
        let split: ReturnType<typeof splitExtraPatch>;
        try {
          split = splitExtraPatch(await readJson(req));
        } catch (err) {
          throw new BadRequest((err as Error).message);
        }
        const { expireTokens, ...patch } = parseFaultPatch(split.rest);
        state.setFaults(patch);
        Object.assign(extra, split.extra);
        if (expireTokens) state.expireAllTokens();
      } else if (method === 'DELETE') {
        state.resetFaults();
        Object.assign(extra, NO_EXTRA, { answer: [], answerFor: [] });
      }
      return write(res, { status: 200, body: { ...state.faults, ...extra } });
    }
    if (path === '/__standin/sends') {
      if (method === 'DELETE') state.clearSends();
      const since = url.searchParams.get('since');
      return streamSends(res, state.sendLines(since ? Date.parse(since) : undefined));
    }
    if (path === '/__standin/attempts') {
      // Every send POST per messageKey and every messageKey per address (issue 21), since `since`.
      const since = url.searchParams.get('since');
      return write(res, { status: 200, body: state.attemptsView(since ? Date.parse(since) : undefined) });
    }
    if (path === '/__standin/stats') {
      if (method === 'DELETE') state.resetStats();
      return write(res, { status: 200, body: state.stats });
    }

    // Send requests in flight: above extra.concurrentSends SFMC answers 50200 (faults.ts).
    const counted = method === 'POST' && path.startsWith(MESSAGES_PATH);
    if (counted) extra.inFlight++;
    try {
      return await answer(req, res, path, method);
    } finally {
      if (counted) extra.inFlight--;
    }
  }

  async function answer(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<void> {
    if (state.faults.latencyMs > 0) {
      state.stats.injected.latency++;
      await sleep(state.faults.latencyMs);
    }
    if (path === '/v2/token' && method === 'POST') {
      const body = await readJson(req);
      const fault = takeAnswer(extra, 'sfmc-token', [], body);
      return fault ? writeExample(req, res, fault) : write(res, handleToken(state, body, publicBase(req)));
    }

    const isSend = method === 'POST' && (path === MESSAGES_PATH || path.startsWith(`${MESSAGES_PATH}/`));
    const isStatus = method === 'GET' && path.startsWith(`${MESSAGES_PATH}/`) && path.length > MESSAGES_PATH.length + 1;
    if (!isSend && !isStatus) return write(res, genericError(404, 0, `No route for ${method} ${path}`));

    let body: unknown;
    const key = path.slice(MESSAGES_PATH.length + 1);
    let fault: ExampleAnswer | undefined;
    if (isSend) {
      state.stats.sendRequests++;
      body = await readJson(req); // read before faults so a dropped connection looks like a lost answer
      const attempt = attemptsOf(state, key === '' ? undefined : decodedKey(key), body);
      const holdMs = takeHold(extra);
      if (holdMs > 0) {
        state.stats.injected.held++; // counted, so a test can show its hold was met
        await sleep(holdMs);
      }
      const injected = injectSendFault(state, req, res);
      if (injected) return state.recordAttempts(attempt(() => injected));
      const keys = key === '' ? recipientsOf(body).map((r) => String(r.messageKey ?? '')) : [decodedKey(key)];
      fault = tooMany(extra, keys) ?? takeAnswer(extra, 'sfmc-send', keys, body);
      if (fault && !extra.answerAfterAccepting) {
        state.recordAttempts(attempt(() => `answer:${fault?.status ?? '?'}`));
        return writeExample(req, res, fault);
      }
      const token = bearerToken(req);
      if (!token || !state.isTokenValid(token)) state.recordAttempts(attempt(() => 'unauthorized'));
      else {
        const reply =
          key === '' ? handleBatchSend(state, body, state.tokenAccount(token)) : handleSingleSend(state, key, body, state.tokenAccount(token));
        state.recordAttempts(attempt((messageKey) => `${outcomeOf(reply, messageKey)}${fault ? `+answer:${fault.status}` : ''}`));
        // answerAfterAccepting: processed (its sends accepted), then the row's answer instead of SFMC's
        return fault ? writeExample(req, res, fault) : write(res, reply);
      }
    } else {
      fault = takeAnswer(extra, 'sfmc-status', [decodedKey(key)], undefined);
      if (fault) return writeExample(req, res, fault);
    }
    const token = bearerToken(req);
    if (!token || !state.isTokenValid(token)) {
      state.stats.unauthorized++;
      return write(res, genericError(401, 0, 'Not Authorized'));
    }
    return write(res, handleStatus(state, key, state.tokenAccount(token)));
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof BadRequest) return write(res, genericError(400, 10000, err.message));
      options.logger?.error({ err }, 'SFMC stand-in failed to answer');
      write(res, genericError(500, 0, 'Internal error in the SFMC stand-in'));
    });
  };
}

export async function createSfmcStandin(options: SfmcStandinOptions = {}): Promise<SfmcStandin> {
  const state = new SfmcStandinState({
    clientId: options.clientId ?? 'local-client',
    clientSecret: options.clientSecret ?? 'local-secret',
    definitionKeys: options.definitionKeys ?? DEFAULT_DEFINITION_KEYS,
    tokenTtlS: options.tokenTtlS ?? 1080,
    dedupWindowMs: options.dedupWindowMs ?? TWO_DAYS_MS,
    dataFile: options.dataFile,
    now: options.now ?? Date.now,
    notSent:
      options.notSent ??
      notSentLists([
        [DEFAULT_UNSUBSCRIBED, UNSUBSCRIBED],
        [DEFAULT_HELD, HELD],
      ]),
    queuedMs: options.queuedMs ?? 0,
  });
  if (options.faults) state.setFaults(options.faults);
  const server = createServer(createHandler(state, options));
  // SFMC drops idle keep-alive connections after 5 s; so do we, so clients meet stale sockets here first.
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    server,
    url: `http://${shownHost}:${port}`,
    port,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          state.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

/** NAME (comma-separated) or NAME_FILE (one entry per line, or comma-separated); the fallback otherwise. */
function list(env: Env, name: string, fallback: readonly string[]): string[] {
  const file = env[`${name}_FILE`];
  const text = file ? readFileSync(file, 'utf8') : (env[name] ?? fallback.join(','));
  return text
    .split(/[\s,]+/)
    .map((e) => e.trim())
    .filter((e) => e && !e.startsWith('#'));
}

/** Entry point: configuration from the environment, read once here. */
export async function main(env: Env = process.env): Promise<SfmcStandin> {
  const logger = createLogger('sfmc-standin', str(env, 'LOG_LEVEL', 'info'));
  const definitionKeys = str(env, 'SFMC_STANDIN_DEFINITION_KEYS', DEFAULT_DEFINITION_KEYS.join(','))
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  const standin = await createSfmcStandin({
    port: int(env, 'SFMC_STANDIN_PORT', 8090, 0, 65535),
    // loopback unless a container sets 0.0.0.0 (compose): it serves recipients' addresses and names (/__standin/sends)
    host: str(env, 'SFMC_STANDIN_HOST', '127.0.0.1'),
    clientId: str(env, 'SFMC_STANDIN_CLIENT_ID', 'local-client'),
    // SFMC_STANDIN_CLIENT_SECRET or SFMC_STANDIN_CLIENT_SECRET_FILE; the local default otherwise.
    clientSecret:
      env['SFMC_STANDIN_CLIENT_SECRET'] || env['SFMC_STANDIN_CLIENT_SECRET_FILE']
        ? secret(env, 'SFMC_STANDIN_CLIENT_SECRET', (p) => readFileSync(p, 'utf8'))
        : 'local-secret',
    definitionKeys,
    tokenTtlS: int(env, 'SFMC_STANDIN_TOKEN_TTL_S', 1080, 1),
    dedupWindowMs: int(env, 'SFMC_STANDIN_DEDUP_WINDOW_S', 2 * 24 * 3600, 1) * 1000,
    dataFile: optionalStr(env, 'SFMC_STANDIN_DATA_FILE'),
    publicUrl: optionalStr(env, 'SFMC_STANDIN_PUBLIC_URL'),
    faults: { retryAfterS: int(env, 'SFMC_STANDIN_RETRY_AFTER_S', 1) },
    // Addresses or @domains, comma-separated or in NAME_FILE; "" for none.
    notSent: notSentLists([
      [list(env, 'SFMC_STANDIN_UNSUBSCRIBED', DEFAULT_UNSUBSCRIBED), UNSUBSCRIBED],
      [list(env, 'SFMC_STANDIN_HELD', DEFAULT_HELD), HELD],
    ]),
    queuedMs: int(env, 'SFMC_STANDIN_QUEUED_MS', 500, 0),
    logger,
  });
  logger.info({ port: standin.port, definitionKeys, sendsLoaded: standin.state.sendCount }, 'SFMC stand-in listening');
  return standin;
}

if (require.main === module) {
  main().then(
    (standin) => {
      const stop = (): void => void standin.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err: unknown) => {
      // The logger may not exist yet (bad configuration): stderr is the only safe place.
      process.stderr.write(`sfmc-standin failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
