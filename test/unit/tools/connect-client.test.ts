import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConnectAuthError, connectAuthorization, connectUrls, createConnectClient } from '../../../tools/connect-client';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const noFile = (p: string): string => {
  throw new Error(`no file ${p}`);
};

describe('Connect client settings', () => {
  test('CONNECT_URL: a default, trailing slashes dropped, a list read, anything but http(s) refused by name', () => {
    expect(connectUrls({})).toEqual(['http://127.0.0.1:8083']);
    expect(connectUrls({ CONNECT_URL: 'https://connect-0:8083/, https://connect-1:8083' })).toEqual([
      'https://connect-0:8083',
      'https://connect-1:8083',
    ]);
    expect(() => connectUrls({ CONNECT_URL: 'connect:8083' })).toThrow(/CONNECT_URL/);
    expect(() => connectUrls({ CONNECT_URL: 'ftp://connect' })).toThrow(/CONNECT_URL/);
    // one worker until failover between several exists
    expect(() => createConnectClient({ CONNECT_URL: 'http://a:1,http://b:2' }, noFile)).toThrow(/CONNECT_URL: one worker URL/);
  });

  test('credentials: none without a password; user "operator" by default; the password from a file; a ":" in the user refused', () => {
    expect(connectAuthorization({}, noFile)).toBeUndefined();
    expect(connectAuthorization({ CONNECT_REST_PASSWORD: `p:w'"\\$` }, noFile)).toBe(basic('operator', `p:w'"\\$`));
    expect(
      connectAuthorization({ CONNECT_REST_USER: 'ops', CONNECT_REST_PASSWORD_FILE: '/run/s/pw' }, (p) => (p === '/run/s/pw' ? 'from-file\n' : '')),
    ).toBe(basic('ops', 'from-file'));
    expect(() => connectAuthorization({ CONNECT_REST_USER: 'a:b', CONNECT_REST_PASSWORD: 'x' }, noFile)).toThrow(/CONNECT_REST_USER/);
  });
});

describe('Connect client requests', () => {
  let server: Server;
  let base: string;
  const seen: { path: string | undefined; headers: IncomingHttpHeaders }[] = [];
  beforeAll(
    () =>
      new Promise<void>((resolve) => {
        server = createServer((req, res) => {
          seen.push({ path: req.url, headers: req.headers });
          const ok = req.headers.authorization === basic('operator', 'right');
          res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? '{"ok":true}' : '{"error_code":401}');
        });
        server.listen(0, '127.0.0.1', () => {
          base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
          resolve();
        });
      }),
  );
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('sends the credentials on every request, to the path under CONNECT_URL', async () => {
    const client = createConnectClient({ CONNECT_URL: `${base}/`, CONNECT_REST_PASSWORD: 'right' }, noFile);
    const res = await client.fetch('/connectors?expand=status', { method: 'GET' });
    expect(await res.json()).toEqual({ ok: true });
    expect(seen.at(-1)).toMatchObject({
      path: '/connectors?expand=status',
      headers: { authorization: basic('operator', 'right'), accept: 'application/json' },
    });
    expect(client.url).toBe(base);
  });

  test('a 401 is an error that says which setting to fix, with or without a password sent', async () => {
    const wrong = createConnectClient({ CONNECT_URL: base, CONNECT_REST_PASSWORD: 'wrong' }, noFile);
    await expect(wrong.fetch('/connectors')).rejects.toThrow(new ConnectAuthError(401, base, true));
    await expect(wrong.fetch('/connectors')).rejects.toThrow(/refused CONNECT_REST_USER\/CONNECT_REST_PASSWORD/);
    const none = createConnectClient({ CONNECT_URL: base }, noFile);
    await expect(none.fetch('/connectors')).rejects.toThrow(/CONNECT_REST_PASSWORD \(or _FILE\) is not set/);
    expect(seen.at(-1)?.headers.authorization).toBeUndefined();
  });
});
