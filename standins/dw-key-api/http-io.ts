import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Small node:http helpers for the stand-in (no framework: it must stay a throwaway). */

/** 500 members are ~50 KB; anything far beyond is not a lookup. */
export const MAX_BODY_BYTES = 1024 * 1024;

export class BodyError extends Error {}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyError(`body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new BodyError('body is not valid JSON');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Compares digests so neither the token's content nor its length leaks through timing. */
export function hasBearerToken(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer (.+)$/i.exec(header);
  if (!match?.[1]) return false;
  const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(match[1]), digest(token));
}

/**
 * Waits `ms` unless the client goes away first (it timed out or was aborted); resolves to
 * false then, so the handler stops. Pending waits are cancelled when the stand-in closes.
 */
export function delay(ms: number, res: ServerResponse, pending: Set<() => void>): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      pending.delete(cancel);
      res.off('close', onClose);
      resolve(ok);
    };
    const cancel = (): void => finish(false);
    const onClose = (): void => finish(false);
    const timer = setTimeout(() => finish(!res.destroyed), ms);
    pending.add(cancel);
    res.on('close', onClose);
  });
}
