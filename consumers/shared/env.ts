import { ConfigError } from './errors';

/**
 * Typed readers over an environment map. Only entry points call these (with process.env);
 * everything deeper receives a typed config object. Each error names the variable.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export function str(env: Env, name: string, fallback?: string): string {
  const value = env[name]?.trim();
  if (value) return value;
  if (fallback !== undefined) return fallback;
  throw new ConfigError(`${name} is required but not set`);
}

export function optionalStr(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

export function int(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

export function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/** An http(s) URL. Plain http only where the URL says so explicitly (local stand-ins). */
export function url(env: Env, name: string, fallback?: string): string {
  const value = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${value}"`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError(`${name} must be an http(s) URL, got "${value}"`);
  }
  return value.replace(/\/+$/, '');
}

/**
 * A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets).
 * The value itself never appears in an error message.
 */
export function secret(env: Env, name: string, readFile: (path: string) => string): string {
  const direct = env[name];
  if (direct) return direct;
  const file = env[`${name}_FILE`]?.trim();
  if (file) {
    let content: string;
    try {
      content = readFile(file);
    } catch (err) {
      throw new ConfigError(`${name}_FILE points to "${file}", which cannot be read`, err);
    }
    const value = content.trim();
    if (!value) throw new ConfigError(`${name}_FILE points to "${file}", which is empty`);
    return value;
  }
  throw new ConfigError(`${name} (or ${name}_FILE) is required but not set`);
}

/** A topic retention in ms: -1 (keep forever) or at least an hour, so a typo cannot make a DLQ drop its records. */
export function retentionMs(env: Env, name: string, fallback: number): number {
  const value = int(env, name, fallback, -1);
  if (value !== -1 && value < 3_600_000) throw new ConfigError(`${name} must be -1 (keep until replayed) or at least 3600000 (1 h), got "${value}"`);
  return value;
}
