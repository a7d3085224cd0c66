/**
 * Few error classes, each with a stable string `code` for logs, metrics and DLQ headers.
 * `transient` decides the policy: transient → retry / pause, never dead-letter;
 * permanent → dead-letter this record and move on.
 */
export class PipelineError extends Error {
  readonly code: string;
  readonly transient: boolean;

  constructor(code: string, message: string, options: { transient?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.transient = options.transient ?? false;
  }
}

/** A process refuses to start: names the bad variable or file. */
export class ConfigError extends PipelineError {
  constructor(message: string, cause?: unknown) {
    super('CONFIG', message, { transient: false, cause });
  }
}

/** Bytes that cannot become a record we understand: permanent for that record. */
export class DecodeError extends PipelineError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { transient: false, cause });
  }
}

/** A record that decodes but breaks a business rule (unknown org, invalid email...). */
export class RecordError extends PipelineError {
  constructor(code: string, message: string) {
    super(code, message, { transient: false });
  }
}

/** HTTP statuses worth retrying: the request may succeed later unchanged. */
export const RETRIABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

export class HttpError extends PipelineError {
  readonly status: number | undefined;
  /** Milliseconds the server asked us to wait (Retry-After), if it said. */
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: { status?: number; retryAfterMs?: number; transient?: boolean; cause?: unknown } = {}) {
    const transient = options.transient ?? (options.status === undefined || RETRIABLE_STATUSES.has(options.status));
    super(code, message, { transient, cause: options.cause });
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isTransient(err: unknown): boolean {
  return err instanceof PipelineError ? err.transient : true;
}

export function errorCode(err: unknown): string {
  return err instanceof PipelineError ? err.code : 'UNEXPECTED';
}
