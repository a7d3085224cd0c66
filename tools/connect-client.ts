/**
 * The one way our TypeScript talks to Kafka Connect's REST API (tools, watchdog, demo, bench,
 * tests): the worker's URL and an operator's credentials from the environment, and a `fetch`
 * that sends them. Connect's REST API admits only its operators (basic auth, Kafka's
 * BasicAuthSecurityRestExtension; stack/conf/worker.properties, docs/deploying.md):
 *   CONNECT_URL                               the worker (default http://127.0.0.1:8083)
 *   CONNECT_REST_USER                         default "operator"
 *   CONNECT_REST_PASSWORD or _PASSWORD_FILE   unset: no Authorization header (a worker whose REST
 *                                             API the network alone guards, e.g. Strimzi's)
 * Callers pass paths, never URLs, so that CONNECT_URL can later become a list of workers tried
 * in turn without touching them (connectUrls already reads the list; fetch uses its only entry).
 *
 *   node dist/tools/connect-client.js METHOD PATH [JSON-BODY]   (make connect-api REQ='GET /connectors')
 */
import { readFileSync } from 'node:fs';
import { optionalStr, secret, str, type Env } from '../consumers/shared/env';
import { ConfigError } from '../consumers/shared/errors';

export interface ConnectClient {
  /** Where it talks to, for messages; never holds the credentials. */
  readonly url: string;
  /** `fetch` of `path` on the worker, with the credentials; a default 30-s deadline unless init.signal is given. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** Connect answered 401/403: the credentials are missing or wrong (never a reason to retry). */
export class ConnectAuthError extends Error {
  constructor(
    readonly status: number,
    url: string,
    sent: boolean,
  ) {
    super(
      `Kafka Connect at ${url} answered ${status}: ${sent ? 'it refused CONNECT_REST_USER/CONNECT_REST_PASSWORD' : 'it wants credentials and CONNECT_REST_PASSWORD (or _FILE) is not set'}`,
    );
    this.name = 'ConnectAuthError';
  }
}

/** CONNECT_URL as a list (comma-separated), each an http(s) URL without a trailing slash. */
export function connectUrls(env: Env): string[] {
  const urls = str(env, 'CONNECT_URL', 'http://127.0.0.1:8083')
    .split(',')
    .map((u) => u.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  for (const u of urls) {
    let protocol: string;
    try {
      protocol = new URL(u).protocol;
    } catch {
      throw new ConfigError(`CONNECT_URL must hold http(s) URLs, got "${u}"`);
    }
    if (protocol !== 'http:' && protocol !== 'https:') throw new ConfigError(`CONNECT_URL must hold http(s) URLs, got "${u}"`);
  }
  if (urls.length === 0) throw new ConfigError('CONNECT_URL is empty');
  return urls;
}

/** The Authorization header value, or undefined when no password is configured. */
export function connectAuthorization(env: Env, readFile: (p: string) => string): string | undefined {
  if (!env.CONNECT_REST_PASSWORD && !env.CONNECT_REST_PASSWORD_FILE?.trim()) return undefined;
  const user = optionalStr(env, 'CONNECT_REST_USER') ?? 'operator';
  if (user.includes(':')) throw new ConfigError('CONNECT_REST_USER must not contain ":" (HTTP basic auth separates user and password with it)');
  const password = secret(env, 'CONNECT_REST_PASSWORD', readFile);
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export function createConnectClient(env: Env = process.env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): ConnectClient {
  const urls = connectUrls(env);
  // one worker for now: a list needs failover (which worker to ask next, and when), not built yet
  if (urls.length > 1) throw new ConfigError(`CONNECT_URL: one worker URL for now, got ${urls.length}`);
  const base = urls[0] as string;
  const authorization = connectAuthorization(env, readFile);
  return {
    url: base,
    async fetch(path, init = {}) {
      const headers = new Headers(init.headers);
      if (authorization && !headers.has('authorization')) headers.set('authorization', authorization);
      if (!headers.has('accept')) headers.set('accept', 'application/json');
      const res = await fetch(`${base}${path}`, { ...init, headers, signal: init.signal ?? AbortSignal.timeout(30_000) });
      if (res.status === 401 || res.status === 403) throw new ConnectAuthError(res.status, base, authorization !== undefined);
      return res;
    },
  };
}

/** A JSON body for PUT/POST: content-type and the serialised value. */
export const jsonBody = (body: unknown): RequestInit => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function main(): Promise<void> {
  const [method, path, body] = process.argv.slice(2);
  if (!method || !path?.startsWith('/')) {
    process.stderr.write('usage: connect-client METHOD /PATH [JSON-BODY]   e.g. GET /connectors?expand=status\n');
    process.exit(2);
  }
  const res = await createConnectClient().fetch(path, { method: method.toUpperCase(), ...(body ? jsonBody(JSON.parse(body)) : {}) });
  const text = await res.text();
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // not JSON: shown as it came
  }
  process.stdout.write(`${shown}${shown.endsWith('\n') ? '' : '\n'}`);
  if (!res.ok) {
    process.stderr.write(`connect-client: ${method.toUpperCase()} ${path} answered ${res.status}\n`);
    process.exit(1);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`connect-client: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
