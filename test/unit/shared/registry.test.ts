/**
 * The decode paths the real registry cannot be made to produce (an unparsable writer schema,
 * a 503) use a throwaway server speaking the Confluent API; the real registry is exercised
 * by the stack tests.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import avro from 'avsc';
import { DecodeError, PipelineError } from '../../../consumers/shared/errors';
import { createRegistry, type ReaderView } from '../../../consumers/shared/registry';

const writerSchema = { type: 'record', name: 'Value', namespace: 'cdc.x', fields: [{ name: 'a', type: 'string' }] };
const answers: Record<string, [number, unknown]> = {
  '/apis/ccompat/v7/schemas/ids/1': [404, { error_code: 40403, message: 'Schema not found' }],
  '/apis/ccompat/v7/schemas/ids/2': [200, { schema: JSON.stringify(writerSchema) }],
  '/apis/ccompat/v7/schemas/ids/3': [200, { schema: '{"type":"record","name":"bad-name","fields":[]}' }],
  '/apis/ccompat/v7/schemas/ids/4': [503, { message: 'unavailable' }],
};
let server: Server;
let url: string;
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    const [status, body] = answers[req.url ?? ''] ?? [404, {}];
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

const framed = (id: number, payload: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head.writeInt32BE(id, 1);
  return Buffer.concat([head, payload]);
};
const view: ReaderView = (w) =>
  avro.Type.forSchema({ type: 'record', name: 'R', aliases: [w.name ?? ''], fields: [{ name: 'a', type: 'string' }] } as avro.Schema);

test('decodes with the writer schema and fetches it once', async () => {
  const registry = createRegistry(url);
  const bytes = framed(2, avro.Type.forSchema(writerSchema as avro.Schema).toBuffer({ a: 'hello' }));
  const before = requests;
  expect(await registry.decode(bytes, view)).toEqual({ a: 'hello' });
  expect(await registry.decode(bytes, view)).toEqual({ a: 'hello' });
  expect(requests - before).toBe(1);
});

test.each([
  ['an unknown schema id', 'UNKNOWN_SCHEMA_ID', framed(1, Buffer.from('x'))],
  ['a writer schema avsc cannot parse', 'UNREADABLE_WRITER_SCHEMA', framed(3, Buffer.from('x'))],
  ['a wrong magic byte', 'BAD_MAGIC_BYTE', Buffer.from([9, 0, 0, 0, 2, 1])],
  ['too few bytes', 'NOT_AVRO', Buffer.from([0, 0])],
  ['a payload the writer schema cannot read', 'AVRO_DECODE', framed(2, Buffer.from([0x80]))],
])('%s is a permanent DecodeError (%s)', async (_name, code, bytes) => {
  const err = await createRegistry(url)
    .decode(bytes, view)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DecodeError);
  expect(err).toMatchObject({ code, transient: false });
});

test('a registry that answers 503 is transient (pause), and is asked again next time', async () => {
  const registry = createRegistry(url);
  const bytes = framed(4, Buffer.from('x'));
  const first = await registry.decode(bytes, view).catch((e: unknown) => e);
  expect(first).toBeInstanceOf(PipelineError);
  expect(first).toMatchObject({ row: 'registry.busy', verdict: 'slow-down', transient: true });
  const before = requests;
  await registry.decode(bytes, view).catch(() => undefined);
  expect(requests - before).toBe(1);
});

test('an unreachable registry is transient', async () => {
  const err = await createRegistry('http://127.0.0.1:1')
    .decode(framed(2, Buffer.from('x')), view)
    .catch((e: unknown) => e);
  expect(err).toMatchObject({ row: 'registry.no-answer', verdict: 'slow-down', transient: true });
});
