import { PipelineError } from '../../../consumers/shared/errors';
import { refusalMessage } from '../../../consumers/shared/process';

// Shaped like kafkajs's errors (named by class; its retrier wraps the cause in a
// KafkaJSNonRetriableError), as seen from the real processes against the SASL_SSL listener.
const named = (name: string, message: string): Error => Object.assign(new Error(message), { name });
const wrapped = (cause: Error): Error => Object.assign(named('KafkaJSNonRetriableError', cause.message), { cause });

test('each start-time refusal becomes one line that names the settings to check', () => {
  expect(
    refusalMessage(
      wrapped(
        named(
          'KafkaJSSASLAuthenticationError',
          'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
        ),
      ),
    ),
  ).toMatch(/^Kafka refused the SASL login \(KAFKA_SASL_USERNAME \/ KAFKA_SASL_PASSWORD.*invalid credentials/);
  expect(refusalMessage(wrapped(named('KafkaJSConnectionError', 'Connection error: unable to verify the first certificate')))).toMatch(
    /^Kafka TLS connection failed \(KAFKA_SECURITY_PROTOCOL, KAFKA_SSL_CA_FILE.*unable to verify the first certificate/,
  );
  expect(refusalMessage(wrapped(named('KafkaJSConnectionClosedError', 'Closed connection')))).toMatch(
    /a TLS listener reached in plaintext \(set KAFKA_SECURITY_PROTOCOL=SASL_SSL or SSL\)/,
  );
  expect(refusalMessage(new PipelineError('REGISTRY_AUTH', 'registry x refused GET /subjects with 401: ...', { transient: true }))).toBe(
    'registry x refused GET /subjects with 401: ...',
  );
});

test('anything else is not a refusal (the caller prints it whole)', () => {
  expect(refusalMessage(wrapped(named('KafkaJSConnectionError', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092')))).toBeUndefined();
  expect(refusalMessage(new Error('boom'))).toBeUndefined();
  expect(refusalMessage('text')).toBeUndefined();
});
