import { Agent, type Dispatcher, request } from 'undici';
import { HttpError } from './errors';

/**
 * Tiny shared HTTP layer over undici: a keep-alive agent whose idle timeout stays below the
 * servers' (so we do not reuse sockets the server is about to drop), and `requestJson` with
 * one deadline for the whole exchange. It never throws on an HTTP status — callers decide
 * what a status means — only on transport failure, as a transient HttpError.
 */

export interface HttpAgentOptions {
  /** Idle keep-alive sockets are closed after this; keep it below the server's own timeout. */
  keepAliveTimeoutMs?: number;
  /** Sockets per origin. */
  connections?: number;
  connectTimeoutMs?: number;
}

export function createHttpAgent(options: HttpAgentOptions = {}): Agent {
  const keepAlive = options.keepAliveTimeoutMs ?? 4_000;
  return new Agent({
    keepAliveTimeout: keepAlive,
    // Caps a server's "Keep-Alive: timeout=N" hint too, so it cannot raise our idle time.
    keepAliveMaxTimeout: keepAlive,
    connections: options.connections ?? 16,
    connect: { timeout: options.connectTimeoutMs ?? 5_000 },
  });
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface JsonRequest {
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  /** Serialised as JSON when defined. */
  body?: unknown;
  /** Deadline for connect + send + full response body. */
  timeoutMs: number;
  dispatcher?: Dispatcher;
  /** Short name of the remote system for error messages and metrics ("sfmc-token"). */
  target: string;
}

export interface JsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed body, or undefined when empty or not JSON (see `isJson`). */
  json: unknown;
  isJson: boolean;
  /** Raw body text, for error messages (truncate before logging). */
  text: string;
}

/** Origin + path only: query strings may carry secrets and never go into messages. */
function describe(method: string, url: string): string {
  try {
    const u = new URL(url);
    return `${method} ${u.origin}${u.pathname}`;
  } catch {
    return `${method} <invalid url>`;
  }
}

export async function requestJson(req: JsonRequest): Promise<JsonResponse> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, req.timeoutMs);
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  let payload: string | undefined;
  if (req.body !== undefined) {
    payload = JSON.stringify(req.body);
    headers['content-type'] = 'application/json';
  }
  try {
    const res = await request(req.url, {
      method: req.method,
      headers,
      body: payload,
      signal: controller.signal,
      ...(req.dispatcher ? { dispatcher: req.dispatcher } : {}),
    });
    const text = await res.body.text();
    let json: unknown;
    let isJson = false;
    if (text.trim()) {
      try {
        json = JSON.parse(text) as unknown;
        isJson = true;
      } catch {
        json = undefined;
      }
    }
    return { status: res.statusCode, headers: res.headers, json, isJson, text };
  } catch (err) {
    const what = `${req.target}: ${describe(req.method, req.url)}`;
    if (timedOut) throw new HttpError('HTTP_TIMEOUT', `${what} got no complete answer within ${req.timeoutMs} ms`, { transient: true, cause: err });
    const code = (err as { code?: unknown }).code;
    throw new HttpError('HTTP_NETWORK', `${what} failed: ${typeof code === 'string' ? code : (err as Error).message}`, {
      transient: true,
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** First value of a header as a string. */
export function headerValue(headers: JsonResponse['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
