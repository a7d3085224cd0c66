import { randomUUID } from 'node:crypto';
import { STATUS_WINDOW_MS, type SfmcStandinState } from './state';
import { ERR, isRecord, type Rejection, validateBatchShape, validateDefinitionKey, validateRecipient } from './validation';

/**
 * The SFMC answers themselves, as plain functions of (state, request data) → reply, so the
 * HTTP layer in server.ts only routes, authenticates and injects faults.
 */

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export const DOCUMENTATION_URL = 'https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/error-handling.html';

export function genericError(status: number, errorcode: number, message: string): Reply {
  return { status, body: { message, errorcode, documentation: DOCUMENTATION_URL } };
}

function rejected(state: SfmcStandinState, status: number, rejection: Rejection): Reply {
  state.countRejection(rejection.errorcode);
  return genericError(status, rejection.errorcode, rejection.message);
}

/** POST /v2/token — client credentials only, like SFMC's server-to-server packages. */
export function handleToken(state: SfmcStandinState, body: unknown, publicBaseUrl: string): Reply {
  state.stats.tokenRequests++;
  if (!isRecord(body) || body['grant_type'] !== 'client_credentials') {
    return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Use grant_type client_credentials.' } };
  }
  if (!state.checkCredentials(body['client_id'], body['client_secret'])) {
    return {
      status: 401,
      body: { error: 'invalid_client', error_description: 'Client authentication failed. Make sure that the client ID and client secret are valid.' },
    };
  }
  // account_id (the business unit's MID) is optional; SFMC wants an integer (a numeric string passes).
  const rawAccount = body['account_id'];
  const accountId = typeof rawAccount === 'string' && /^\d+$/.test(rawAccount) ? Number(rawAccount) : rawAccount;
  if (accountId !== undefined && (typeof accountId !== 'number' || !Number.isSafeInteger(accountId) || accountId <= 0)) {
    return { status: 400, body: { error: 'invalid_request', error_description: 'account_id must be the MID of a business unit (an integer).' } };
  }
  const { token, expiresInS } = state.issueToken(accountId);
  const scope = typeof body['scope'] === 'string' ? body['scope'] : 'email_read email_send data_extensions_read';
  return {
    status: 200,
    body: {
      access_token: token,
      token_type: 'Bearer',
      expires_in: expiresInS,
      scope,
      // The shape real SFMC answers with today: scheme and trailing slash included.
      rest_instance_url: `${publicBaseUrl}/`,
      soap_instance_url: `${publicBaseUrl}/soap/`,
    },
  };
}

/** Batch: POST /messaging/v1/email/messages/. Whole-request problems → 400; per-item → 202 + 109001. */
export function handleBatchSend(state: SfmcStandinState, body: unknown, accountId?: number): Reply {
  if (!isRecord(body)) return rejected(state, 400, { errorcode: ERR.NO_SUBSCRIBERS, message: 'Request body must be a JSON object' });
  const whole = validateBatchShape(body) ?? validateDefinitionKey(body['definitionKey'], state.definitionKeys);
  if (whole) return rejected(state, 400, whole);
  const definitionKey = body['definitionKey'] as string;
  const shared = isRecord(body['attributes']) ? body['attributes'] : {};
  const requestId = randomUUID();
  const recipients = body['recipients'] as unknown[];
  const responses: Record<string, unknown>[] = [];
  let failed = 0;
  for (const given of recipients) {
    // SFMC generates a messageKey for a batch recipient that has none, and answers with it.
    const raw =
      isRecord(given) && (given['messageKey'] === undefined || given['messageKey'] === null) ? { ...given, messageKey: randomUUID() } : given;
    const verdict = validateRecipient(raw);
    let rejection: Rejection | undefined;
    if (!verdict.ok) rejection = verdict.rejection;
    else if (state.sentRecently(verdict.recipient.messageKey)) {
      rejection = { errorcode: ERR.DUPLICATE_MESSAGE_KEY, message: 'MCMS_UTM_Validation_DuplicateMessageKey' };
    }
    const messageKey = verdict.ok ? verdict.recipient.messageKey : verdict.messageKey;
    if (rejection) {
      failed++;
      state.countRejection(rejection.errorcode);
      responses.push({ messageKey, errorcode: rejection.errorcode, message: rejection.message });
    } else if (verdict.ok) {
      const { recipient } = verdict;
      state.accept({
        ...recipient,
        attributes: { ...shared, ...recipient.attributes },
        definitionKey,
        receivedAt: new Date(state.now()).toISOString(),
        requestId,
        ...(accountId !== undefined ? { accountId } : {}),
      });
      responses.push({ messageKey });
    }
  }
  state.commit();
  // Even when every recipient failed SFMC answers 202 + 109001: the request itself was fine.
  const summary =
    failed > 0
      ? { errorcode: ERR.PARTIAL_FAILURE, message: `MCMS_UTM_ResponsesHasErrors: ${failed} subscribers failed to queue out of ${recipients.length}` }
      : { errorcode: ERR.OK };
  return { status: 202, body: { requestId, ...summary, responses } };
}

/**
 * Single: POST /messaging/v1/email/messages/{messageKey}. sfmc.md leaves open whether a
 * duplicate or a bad definitionKey comes back as 400 or as 202-with-codes; the stand-in uses
 * 400 for those two (and other whole-request faults) and 202 + 109001 for recipient-field
 * problems, so a client is exercised on both forms.
 */
export function handleSingleSend(state: SfmcStandinState, rawKey: string, body: unknown, accountId?: number): Reply {
  let messageKey: string;
  try {
    messageKey = decodeURIComponent(rawKey);
  } catch {
    return rejected(state, 400, { errorcode: ERR.INVALID_MESSAGE_KEY, message: 'MCMS_UTM_Validation_InvalidMessageKey' });
  }
  if (!isRecord(body)) return rejected(state, 400, { errorcode: ERR.NO_SUBSCRIBERS, message: 'Request body must be a JSON object' });
  const extra = Object.keys(body).filter((k) => k !== 'definitionKey' && k !== 'recipient');
  if (extra.length > 0) return rejected(state, 400, { errorcode: ERR.UNKNOWN_FIELD_NAME, message: `UnknownFieldName: ${extra.join(', ')}` });
  const whole = validateDefinitionKey(body['definitionKey'], state.definitionKeys);
  if (whole) return rejected(state, 400, whole);
  if (!isRecord(body['recipient'])) return rejected(state, 400, { errorcode: ERR.NO_SUBSCRIBERS, message: 'MCMS_UTM_Validation_NoSubscribers' });
  const verdict = validateRecipient(body['recipient'], messageKey);
  const requestId = randomUUID();
  if (!verdict.ok) {
    state.countRejection(verdict.rejection.errorcode);
    return {
      status: 202,
      body: {
        requestId,
        errorcode: ERR.PARTIAL_FAILURE,
        message: 'MCMS_UTM_ResponsesHasErrors: 1 subscribers failed to queue out of 1',
        responses: [{ messageKey, ...verdict.rejection }],
      },
    };
  }
  if (state.sentRecently(messageKey)) {
    return rejected(state, 400, {
      errorcode: ERR.DUPLICATE_MESSAGE_KEY,
      message: 'MCMS_UTM_Validation_DuplicateMessageKey: messageKey reused within the past 2 days',
    });
  }
  state.accept({
    ...verdict.recipient,
    definitionKey: body['definitionKey'] as string,
    receivedAt: new Date(state.now()).toISOString(),
    requestId,
    ...(accountId !== undefined ? { accountId } : {}),
  });
  state.commit();
  return { status: 202, body: { requestId, errorcode: ERR.OK, responses: [{ messageKey }] } };
}

/** SFMC reports in US Central time without DST (UTC-6), with no zone designator. */
function toSfmcTimestamp(iso: string): string {
  return new Date(Date.parse(iso) - 6 * 3600_000).toISOString().replace('Z', '');
}

/**
 * GET /messaging/v1/email/messages/{messageKey}: EmailQueued for `queuedMs` after it was
 * accepted, then EmailSent — or EmailNotSent for an address on the configured lists
 * (unsubscribed, held...). Like SFMC, a status is only kept for 3 days: older → 404.
 */
export function handleStatus(state: SfmcStandinState, rawKey: string, accountId?: number): Reply {
  state.stats.statusRequests++;
  let messageKey: string;
  try {
    messageKey = decodeURIComponent(rawKey);
  } catch {
    return genericError(400, ERR.INVALID_MESSAGE_KEY, 'MCMS_UTM_Validation_InvalidMessageKey');
  }
  const send = state.find(messageKey);
  const age = send ? state.now() - Date.parse(send.receivedAt) : Infinity;
  // Messages belong to a business unit: a token of another BU does not see them.
  const otherUnit = send?.accountId !== undefined && accountId !== undefined && send.accountId !== accountId;
  if (!send || otherUnit || age >= STATUS_WINDOW_MS) return genericError(404, 0, 'No message found for this messageKey');
  const queued = age < (state.options.queuedMs ?? 0);
  const notSent = queued ? undefined : state.notSentReason(send.to);
  const info: Record<string, unknown> = { messageKey: send.messageKey, contactKey: send.contactKey, to: send.to, definitionKey: send.definitionKey };
  if (notSent) Object.assign(info, notSent);
  const event = queued ? 'EmailQueued' : notSent ? 'EmailNotSent' : 'EmailSent';
  return {
    status: 200,
    body: {
      requestId: randomUUID(),
      eventCategoryType: `TransactionalSendEvents.${event}`,
      timestamp: toSfmcTimestamp(queued ? send.receivedAt : new Date(Date.parse(send.receivedAt) + (state.options.queuedMs ?? 0)).toISOString()),
      compositeId: `${send.requestId}.${send.messageKey}`,
      info,
    },
  };
}
