/**
 * Schema registry access through its Confluent-compatible API (Apicurio's /apis/ccompat/v7
 * locally, any Confluent-API registry in production). Records are always decoded with the
 * WRITER schema the registry holds for the id in the message, then projected into our own
 * reader view with avsc's resolver, so old and new versions both read correctly.
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import type { Middleware } from 'mappersmith';
import { type Answer, AnswerError, type AnswerCounter, classify, describeAnswer, toAnswer } from './answers';
import { DecodeError, PipelineError } from './errors';
import { SCHEMA_ANSWERS } from './registry-answers';
import { authorizationHeader, type RegistryAuth } from './registry-auth';
import { budgetLeft, type Budget } from './retry';

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FULL' | 'FULL_TRANSITIVE' | 'NONE';

export interface Registry {
  /** Registers (idempotently) and returns the id; sets the subject's compatibility first. */
  register(subject: string, schema: avro.Schema, compatibility: Compatibility): Promise<number>;
  /** With a budget, a schema fetch the encoding needs fits inside it (or a transient error is thrown). */
  encode(id: number, value: unknown, budget?: Budget): Promise<Buffer>;
  /**
   * Writer schema from the registry → reader view. Throws DecodeError (this record is wrong) or
   * an AnswerError (slow-down, setup, unknown: scope registry). With a budget, the schema fetch fits inside it.
   */
  decode<T>(bytes: Buffer, reader: ReaderView, budget?: Budget): Promise<T>;
  ping(): Promise<boolean>;
}

export const WIRE_MAGIC = 0;

/** Our view of a topic's records, built once per writer schema (it may alias the writer's name). */
export type ReaderView = (writer: avro.Type) => avro.Type;

export function ccompatUrl(registryUrl: string): string {
  return /\/apis\/ccompat\/v\d+$/.test(registryUrl) ? registryUrl : `${registryUrl.replace(/\/+$/, '')}/apis/ccompat/v7`;
}

export interface RegistryConfig {
  url: string;
  auth?: RegistryAuth | undefined;
  /** Metrics hook: the answer-table row of each schema fetch. */
  onAnswer?: AnswerCounter;
}

/** Deadline of one schema fetch when no budget is given (at start, in tools). */
const FETCH_TIMEOUT_MS = 10_000;

/** `work`, or a transient error once `budget` runs out (the work goes on; a later call may reuse it). */
function inBudget<T>(work: Promise<T>, budget: Budget | undefined, what: string): Promise<T> {
  const left = budgetLeft(budget);
  if (!Number.isFinite(left)) return work;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PipelineError('REGISTRY_BUDGET', `${what}: no answer from the registry within the chunk's budget`, { transient: true })),
      Math.max(0, left),
    );
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** A refused credential: never a reason to dead-letter a record (the record is fine). */
export const REGISTRY_AUTH = 'REGISTRY_AUTH';

export function createRegistry(config: string | RegistryConfig): Registry {
  const { url: registryUrl, auth, onAnswer } = typeof config === 'string' ? { url: config, auth: undefined, onAnswer: undefined } : config;
  const base = ccompatUrl(registryUrl);
  const authorization = authorizationHeader(auth);
  // The library's own requests (encode fetches the schema of an id) carry the same header.
  const withAuth: Middleware = () => ({
    prepareRequest: (next) => next().then((req) => (authorization ? req.enhance({ headers: { authorization } }) : req)),
  });
  const client = new SchemaRegistry({ host: base, retry: { retries: 2, maxRetryTimeInSecs: 1 }, middlewares: [withAuth] });
  const writers = new Map<number, Promise<avro.Type>>();
  // Per view, per writer id: a resolver is built once, whatever number of views share this client.
  const views = new WeakMap<ReaderView, Map<number, { reader: avro.Type; resolver: avro.Type }>>();

  /**
   * The writer schema of an id, fetched once. Our own request (not the library's), its answer
   * read through the registry's answer table (registry-answers.ts): an unknown id is the
   * record's fault (dead letter), a registry away or busy is a slow-down, a refused credential
   * or a wrong URL our setup — never a dead letter; a schema avsc cannot parse is the record's
   * (retrying would pause the partition forever).
   */
  function writerSchema(id: number): Promise<avro.Type> {
    let pending = writers.get(id);
    if (!pending) {
      pending = fetchAnswer(`/schemas/ids/${id}`).then((answer) => {
        const row = classify(SCHEMA_ANSWERS, answer);
        onAnswer?.(row);
        if (row.verdict === 'member')
          throw new DecodeError('UNKNOWN_SCHEMA_ID', `schema id ${id} is unknown to the registry (${describeAnswer(answer)})`);
        if (row.verdict !== 'ok') {
          const hint = row.id === 'registry.refused' ? `: ${credentialHint()}` : '';
          throw new AnswerError(
            row,
            `registry ${base} GET /schemas/ids/${id} answered ${describeAnswer(answer)} (${row.id}: ${row.verdict})${hint}`,
            { scope: 'registry' },
          );
        }
        const found = answer.json as { schema: string; schemaType?: string };
        if (found.schemaType && found.schemaType !== 'AVRO') throw new DecodeError('NOT_AVRO', `schema id ${id} is ${found.schemaType}, not Avro`);
        try {
          return avro.Type.forSchema(JSON.parse(found.schema) as avro.Schema, { wrapUnions: false });
        } catch (err) {
          throw new DecodeError('UNREADABLE_WRITER_SCHEMA', `schema id ${id} cannot be parsed as Avro: ${(err as Error).message}`, err);
        }
      });
      writers.set(id, pending);
      // Forget failures, so a transient one is retried next time.
      pending.catch(() => writers.delete(id));
    }
    return pending;
  }

  /** One GET as an Answer (status 0 when there was none). */
  async function fetchAnswer(path: string): Promise<Answer> {
    const headers = authorization ? { authorization } : undefined;
    try {
      const res = await fetch(`${base}${path}`, { method: 'GET', headers, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      const text = await res.text();
      return toAnswer({ status: res.status, headers: { 'content-type': res.headers.get('content-type') ?? '' }, body: text }, []);
    } catch {
      return toAnswer({ status: 0 }, []);
    }
  }

  const credentialHint = (): string =>
    auth
      ? `the ${auth.kind === 'basic' ? 'REGISTRY_USERNAME/REGISTRY_PASSWORD' : 'REGISTRY_TOKEN'} credential was rejected`
      : 'it requires credentials (set REGISTRY_USERNAME/REGISTRY_PASSWORD or REGISTRY_TOKEN)';

  async function call(path: string, init: RequestInit): Promise<unknown> {
    const headers = { ...(init.headers as Record<string, string> | undefined), ...(authorization ? { authorization } : {}) };
    const res = await fetch(`${base}${path}`, { ...init, headers, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.status === 401 || res.status === 403) {
      // Transient for the stage loop (pause and retry, never dead-letter); fatal at start (consumer-process).
      throw new PipelineError(REGISTRY_AUTH, `registry ${base} refused ${init.method ?? 'GET'} ${path} with ${res.status}: ${credentialHint()}`, {
        transient: true,
      });
    }
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

    encode: (id, value, budget) => inBudget(client.encode(id, value), budget, `encoding with schema id ${id}`),

    async decode<T>(bytes: Buffer, view: ReaderView, budget?: Budget): Promise<T> {
      if (bytes.length < 5) throw new DecodeError('NOT_AVRO', `value of ${bytes.length} bytes is too short for the Confluent wire format`);
      if (bytes[0] !== WIRE_MAGIC) throw new DecodeError('BAD_MAGIC_BYTE', `magic byte ${bytes[0]} (expected 0): not Confluent-framed Avro`);
      const id = bytes.readInt32BE(1);
      const writer = await inBudget(writerSchema(id), budget, `schema id ${id}`);
      let byId = views.get(view);
      if (!byId) views.set(view, (byId = new Map()));
      let resolved: { reader: avro.Type; resolver: avro.Type };
      try {
        const cached = byId.get(id);
        if (cached) resolved = cached;
        else {
          const reader = view(writer);
          resolved = { reader, resolver: reader.createResolver(writer) as unknown as avro.Type };
          byId.set(id, resolved);
        }
      } catch (err) {
        throw new DecodeError(
          'SCHEMA_INCOMPATIBLE',
          `schema id ${id} (${writer.name ?? 'unnamed'}) cannot be read by our view: ${(err as Error).message}`,
          err,
        );
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
