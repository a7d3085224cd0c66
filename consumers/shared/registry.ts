/**
 * Schema registry access through its Confluent-compatible API (Apicurio's /apis/ccompat/v7
 * locally, any Confluent-API registry in production). Records are always decoded with the
 * WRITER schema the registry holds for the id in the message, then projected into our own
 * reader view with avsc's resolver, so old and new versions both read correctly.
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { DecodeError, PipelineError } from './errors';

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FULL' | 'FULL_TRANSITIVE' | 'NONE';

export interface Registry {
  /** Registers (idempotently) and returns the id; sets the subject's compatibility first. */
  register(subject: string, schema: avro.Schema, compatibility: Compatibility): Promise<number>;
  encode(id: number, value: unknown): Promise<Buffer>;
  /** Writer schema from the registry → reader view. Throws DecodeError (permanent) or a transient PipelineError. */
  decode<T>(bytes: Buffer, reader: ReaderView): Promise<T>;
  ping(): Promise<boolean>;
}

export const WIRE_MAGIC = 0;

/** Our view of a topic's records, built once per writer schema (it may alias the writer's name). */
export type ReaderView = (writer: avro.Type) => avro.Type;

export function ccompatUrl(registryUrl: string): string {
  return /\/apis\/ccompat\/v\d+$/.test(registryUrl) ? registryUrl : `${registryUrl.replace(/\/+$/, '')}/apis/ccompat/v7`;
}

function statusOf(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : undefined;
}

export function createRegistry(registryUrl: string): Registry {
  const base = ccompatUrl(registryUrl);
  const client = new SchemaRegistry({ host: base, retry: { retries: 2, maxRetryTimeInSecs: 1 } });
  const views = new Map<string, { reader: avro.Type; resolver: avro.Type }>();

  async function call(path: string, init: RequestInit): Promise<unknown> {
    const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (!res.ok) {
      throw new PipelineError('REGISTRY_HTTP', `registry ${init.method ?? 'GET'} ${path} answered ${res.status}: ${text.slice(0, 300)}`, {
        transient: res.status >= 500,
      });
    }
    return text ? JSON.parse(text) : undefined;
  }

  return {
    async register(subject, schema, compatibility) {
      const headers = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
      await call(`/config/${encodeURIComponent(subject)}`, { method: 'PUT', headers, body: JSON.stringify({ compatibility }) });
      const { id } = (await call(`/subjects/${encodeURIComponent(subject)}/versions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ schema: JSON.stringify(schema) }),
      })) as { id: number };
      return id;
    },

    encode: (id, value) => client.encode(id, value),

    async decode<T>(bytes: Buffer, view: ReaderView): Promise<T> {
      if (bytes.length < 5) throw new DecodeError('NOT_AVRO', `value of ${bytes.length} bytes is too short for the Confluent wire format`);
      if (bytes[0] !== WIRE_MAGIC) throw new DecodeError('BAD_MAGIC_BYTE', `magic byte ${bytes[0]} (expected 0): not Confluent-framed Avro`);
      const id = bytes.readInt32BE(1);
      let writer: avro.Type;
      try {
        writer = (await client.getSchema(id)) as unknown as avro.Type;
      } catch (err) {
        const status = statusOf(err);
        if (status === 404 || status === 422) throw new DecodeError('UNKNOWN_SCHEMA_ID', `schema id ${id} is unknown to the registry`, err);
        throw new PipelineError('REGISTRY_UNAVAILABLE', `registry unreachable while resolving schema id ${id}`, { transient: true, cause: err });
      }
      let resolved: { reader: avro.Type; resolver: avro.Type };
      try {
        const cached = views.get(`${id}`);
        if (cached) resolved = cached;
        else {
          const reader = view(writer);
          resolved = { reader, resolver: reader.createResolver(writer) as unknown as avro.Type };
          views.set(`${id}`, resolved);
        }
      } catch (err) {
        throw new DecodeError('SCHEMA_INCOMPATIBLE', `schema id ${id} (${writer.name ?? 'unnamed'}) cannot be read by our view: ${(err as Error).message}`, err);
      }
      try {
        return resolved.reader.fromBuffer(bytes.subarray(5), resolved.resolver as never) as T;
      } catch (err) {
        throw new DecodeError('AVRO_DECODE', `cannot decode a record of schema id ${id}: ${(err as Error).message}`, err);
      }
    },

    async ping() {
      try {
        await call('/subjects', { method: 'GET' });
        return true;
      } catch {
        return false;
      }
    },
  };
}

export { SchemaType };
