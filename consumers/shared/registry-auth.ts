/**
 * Credentials for the schema registry's HTTP API, from the environment:
 *   REGISTRY_USERNAME + REGISTRY_PASSWORD   HTTP basic (Confluent Cloud API key/secret, Aiven, Karapace, Apicurio with basic auth)
 *   REGISTRY_TOKEN                          a bearer token (a gateway or Apicurio behind an OIDC proxy)
 * Secrets may come from NAME_FILE. Neither set: no Authorization header (the local stack).
 */
import { optionalStr, secret, type Env } from './env';
import { ConfigError } from './errors';

export type RegistryAuth = { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

const given = (env: Env, name: string): boolean => Boolean(env[name] || env[`${name}_FILE`]?.trim());

export function loadRegistryAuth(env: Env, readFile: (p: string) => string): RegistryAuth | undefined {
  const username = optionalStr(env, 'REGISTRY_USERNAME');
  const hasPassword = given(env, 'REGISTRY_PASSWORD');
  const hasToken = given(env, 'REGISTRY_TOKEN');
  if (hasToken && (username || hasPassword))
    throw new ConfigError('REGISTRY_TOKEN and REGISTRY_USERNAME/REGISTRY_PASSWORD are exclusive: set one kind of registry credential');
  if (hasToken) return { kind: 'bearer', token: secret(env, 'REGISTRY_TOKEN', readFile) };
  if (hasPassword && !username) throw new ConfigError('REGISTRY_PASSWORD is set but REGISTRY_USERNAME is not');
  if (username) {
    if (username.includes(':')) throw new ConfigError('REGISTRY_USERNAME must not contain ":" (HTTP basic auth separates user and password with it)');
    return { kind: 'basic', username, password: secret(env, 'REGISTRY_PASSWORD', readFile) };
  }
  return undefined;
}

/** The Authorization header value, or undefined for an open registry. */
export function authorizationHeader(auth: RegistryAuth | undefined): string | undefined {
  if (!auth) return undefined;
  return auth.kind === 'bearer' ? `Bearer ${auth.token}` : `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

export function describeRegistryAuth(auth: RegistryAuth | undefined): string {
  return !auth ? 'none' : auth.kind === 'bearer' ? 'bearer token' : `basic (user ${auth.username})`;
}
