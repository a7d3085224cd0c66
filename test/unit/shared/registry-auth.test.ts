import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRegistry } from '../../../consumers/shared/registry';
import { authorizationHeader, loadRegistryAuth } from '../../../consumers/shared/registry-auth';

const files: Record<string, string> = { '/pw': 'pw-from-file\n', '/tok': 'tok-from-file' };
const readFile = (p: string): string => {
  const f = files[p];
  if (f === undefined) throw new Error(`ENOENT ${p}`);
  return f;
};

describe('loadRegistryAuth', () => {
  test('none, basic, bearer', () => {
    expect(loadRegistryAuth({}, readFile)).toBeUndefined();
    expect(loadRegistryAuth({ REGISTRY_USERNAME: 'key', REGISTRY_PASSWORD_FILE: '/pw' }, readFile)).toEqual({
      kind: 'basic',
      username: 'key',
      password: 'pw-from-file',
    });
    expect(loadRegistryAuth({ REGISTRY_TOKEN_FILE: '/tok' }, readFile)).toEqual({ kind: 'bearer', token: 'tok-from-file' });
  });

  test.each([
    [{ REGISTRY_USERNAME: 'key' }, /REGISTRY_PASSWORD \(or REGISTRY_PASSWORD_FILE\) is required/],
    [{ REGISTRY_PASSWORD: 'x' }, /REGISTRY_PASSWORD is set but REGISTRY_USERNAME is not/],
    [
      { REGISTRY_TOKEN: 't', REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'p' },
      /REGISTRY_TOKEN and REGISTRY_USERNAME\/REGISTRY_PASSWORD are exclusive/,
    ],
    [{ REGISTRY_USERNAME: 'a:b', REGISTRY_PASSWORD: 'p' }, /REGISTRY_USERNAME must not contain ":"/],
    [{ REGISTRY_TOKEN_FILE: '/none' }, /REGISTRY_TOKEN_FILE points to "\/none", which cannot be read/],
  ])('refuses %j', (env, message) => {
    expect(() => loadRegistryAuth(env as Record<string, string>, readFile)).toThrow(message);
  });

  test('header values', () => {
    expect(authorizationHeader({ kind: 'basic', username: 'u', password: 'p:w' })).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
    expect(authorizationHeader({ kind: 'bearer', token: 't' })).toBe('Bearer t');
  });
});

// A registry double that only answers with the right Authorization header, so the test sees
// that every request (ours and the library's encode path) carries it.
describe('createRegistry sends the credential on every request', () => {
  let server: Server;
  let base: string;
  const seen: (string | undefined)[] = [];
  const schema = { type: 'record', name: 'T', fields: [{ name: 'a', type: 'string' }] };
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      seen.push(req.headers.authorization);
      if (req.headers.authorization !== 'Bearer good') {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error_code":401,"message":"Unauthorized"}');
        return;
      }
      res.setHeader('content-type', 'application/vnd.schemaregistry.v1+json');
      if (req.url?.startsWith('/apis/ccompat/v7/schemas/ids/7')) res.end(JSON.stringify({ schema: JSON.stringify(schema) }));
      else if (req.url === '/apis/ccompat/v7/subjects') res.end('[]');
      else res.writeHead(404).end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  test('the right token: ping, encode (library) and decode (ours) work', async () => {
    const registry = createRegistry({ url: base, auth: { kind: 'bearer', token: 'good' } });
    expect(await registry.ping()).toBe(true);
    const bytes = await registry.encode(7, { a: 'x' });
    expect(bytes.readInt32BE(1)).toBe(7);
    await expect(registry.decode(bytes, (w) => w)).resolves.toEqual(expect.objectContaining({ a: 'x' }));
    expect(seen.every((h) => h === 'Bearer good')).toBe(true);
  });

  test('a wrong token: our setup (registry.refused, scope registry) naming the variable, never a dead letter', async () => {
    const registry = createRegistry({ url: base, auth: { kind: 'bearer', token: 'bad' } });
    expect(await registry.ping()).toBe(false);
    const bytes = Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.from([2, 120])]);
    await expect(registry.decode(bytes, (w) => w)).rejects.toMatchObject({
      verdict: 'setup',
      row: 'registry.refused',
      scope: 'registry',
      message: expect.stringMatching(/GET \/schemas\/ids\/7 answered HTTP 401.*: the REGISTRY_TOKEN credential was rejected/),
    });
    await expect(registry.register('s-value', schema as never, 'BACKWARD')).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
  });

  test('no credential against a registry that needs one says which variables to set', async () => {
    await expect(createRegistry(base).register('s-value', schema as never, 'BACKWARD')).rejects.toThrow(
      /requires credentials \(set REGISTRY_USERNAME\/REGISTRY_PASSWORD or REGISTRY_TOKEN\)/,
    );
  });
});
