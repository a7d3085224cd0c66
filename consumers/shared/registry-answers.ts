/**
 * The schema registry's answers (Confluent API; Apicurio's ccompat locally) to the one call
 * the stages make while they run: a writer schema by id (GET /schemas/ids/{id}), for a record
 * whose id is not cached yet. Each with its verdict (answers.ts).
 */
import { type AnswerRow, asNumber, asRecord, asString, htmlBody, isUnavailable, jsonBody, NO_ANSWER, noAnswer } from './answers';

const CONFLUENT = 'Confluent Schema Registry API (GET /schemas/ids/{id}); Apicurio ccompat answers the same';

export const SCHEMA_ANSWERS: readonly AnswerRow[] = [
  {
    id: 'registry.no-answer',
    call: 'registry-schema',
    answer: 'no answer: timeout, connection refused or reset',
    verdict: 'slow-down',
    then: 'the partition pauses (backoff up to 10 s) and the record is decoded again; cached schemas keep working',
    source: CONFLUENT,
    matches: noAnswer,
    example: () => NO_ANSWER,
  },
  {
    id: 'registry.busy',
    call: 'registry-schema',
    answer: '408, 429, 5xx (JSON, HTML or empty)',
    verdict: 'slow-down',
    then: 'the partition pauses and retries; never a dead letter (an uncached schema during a registry restart is not the record’s fault)',
    source: CONFLUENT,
    matches: (a) => a.status === 429 || isUnavailable(a),
    example: () => jsonBody(503, { error_code: 50301, message: 'Service unavailable' }),
  },
  {
    id: 'registry.refused',
    call: 'registry-schema',
    answer: '401 or 403: our credential is refused (or required)',
    verdict: 'setup',
    then: 'hold the stage (scope registry), alert, dead-letter nothing; at start it stops the process with one line',
    source: CONFLUENT,
    matches: (a) => a.status === 401 || a.status === 403,
    example: () => jsonBody(401, { error_code: 401, message: 'Unauthorized' }),
  },
  {
    id: 'registry.unknown-id',
    call: 'registry-schema',
    answer: '404 (or 422) with error_code 40403: the registry has no schema with the id this record names',
    verdict: 'member',
    then: 'that record dead-lettered as UNKNOWN_SCHEMA_ID',
    source: CONFLUENT,
    matches: (a) => (a.status === 404 || a.status === 422) && asNumber(asRecord(a.json)?.['error_code']) === 40403,
    example: () => jsonBody(404, { message: 'Schema 999999 not found.', error_code: 40403 }),
  },
  {
    id: 'registry.path',
    call: 'registry-schema',
    answer: '404 without error_code 40403, or 405: the registry URL (ccompat path) is wrong',
    verdict: 'setup',
    then: 'hold the stage (scope registry), alert, dead-letter nothing',
    source: CONFLUENT,
    matches: (a) => a.status === 404 || a.status === 405,
    example: () => htmlBody(404, 'Not Found'),
  },
  {
    id: 'registry.schema',
    call: 'registry-schema',
    answer: '200 with a schema string',
    verdict: 'ok',
    then: 'cached for the process; the record is decoded with it (not Avro, unparseable: that record dead-lettered)',
    source: CONFLUENT,
    matches: (a) => a.status === 200 && !!asString(asRecord(a.json)?.['schema']),
    example: () => jsonBody(200, { schema: '{"type":"record","name":"Example","fields":[]}' }),
  },
  {
    id: 'registry.other',
    call: 'registry-schema',
    answer: 'anything else (a 200 without a schema, not JSON, another 4xx)',
    verdict: 'unknown',
    then: 'retried; bisected after 3 tries; held if it persists',
    source: 'ours',
    matches: () => true,
    example: () => jsonBody(200, { id: 1 }),
  },
];
