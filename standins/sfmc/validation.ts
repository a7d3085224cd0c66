/**
 * Request validation of the SFMC Transactional Messaging API, as the stand-in applies it.
 * Pure functions: the server decides what to do with the verdicts.
 */

export const ERR = {
  OK: 0,
  PARTIAL_FAILURE: 109001,
  TOO_MANY_RECIPIENTS: 109101,
  NO_SUBSCRIBERS: 109102,
  MISSING_MESSAGE_KEY: 109104,
  MISSING_CONTACT_KEY: 109105,
  MISSING_TO: 109106,
  MISSING_DEFINITION_KEY: 109107,
  INVALID_MESSAGE_KEY: 109108,
  INVALID_CONTACT_KEY: 109109,
  DUPLICATE_MESSAGE_KEY: 109110,
  INVALID_DEFINITION_KEY: 109111,
  INVALID_TO: 109121,
  UNKNOWN_FIELD_NAME: 109122,
} as const;

export const MAX_BATCH_RECIPIENTS = 2000;
export const MAX_MESSAGE_KEY_LENGTH = 100;
const MAX_CONTACT_KEY_LENGTH = 254;
const MAX_EMAIL_LENGTH = 254;

export interface Rejection {
  errorcode: number;
  message: string;
}

export interface Recipient {
  messageKey: string;
  contactKey: string;
  to: string;
  attributes: Record<string, unknown>;
}

export type RecipientVerdict = { ok: true; recipient: Recipient } | { ok: false; messageKey: unknown; rejection: Rejection };

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * RFC-ish, deliberately simple: one @, non-empty local part and domain, a dot in the domain
 * with no empty labels, no whitespace or control characters, ≤ 254 chars. Unicode local parts
 * and domains (SMTPUTF8 / IDN) pass, as SFMC accepts them.
 */
export function isPlausibleEmail(value: string): boolean {
  if (value.length > MAX_EMAIL_LENGTH || /[\s\p{Cc}]/u.test(value)) return false;
  const parts = value.split('@');
  if (parts.length !== 2) return false;
  const [local = '', domain = ''] = parts;
  if (!local || local.length > 64 || !domain.includes('.')) return false;
  return domain.split('.').every((label) => label.length > 0 && !label.startsWith('-') && !label.endsWith('-'));
}

export function isValidMessageKey(value: string): boolean {
  return value.length > 0 && value.length <= MAX_MESSAGE_KEY_LENGTH && !/[\p{Cc}]/u.test(value);
}

/** Fields a request may carry; anything else is SFMC's UnknownFieldName. */
export function unknownFields(body: Record<string, unknown>, allowed: readonly string[]): string[] {
  return Object.keys(body).filter((k) => !allowed.includes(k));
}

/** Per-recipient checks, in the order SFMC reports them (first failure wins). */
export function validateRecipient(raw: unknown, messageKeyFromPath?: string): RecipientVerdict {
  const r = isRecord(raw) ? raw : {};
  const messageKey = messageKeyFromPath ?? r['messageKey'];
  const fail = (errorcode: number, message: string): RecipientVerdict => ({ ok: false, messageKey, rejection: { errorcode, message } });
  if (!isRecord(raw)) return fail(ERR.NO_SUBSCRIBERS, 'Recipient must be an object');
  if (messageKey === undefined || messageKey === null || messageKey === '')
    return fail(ERR.MISSING_MESSAGE_KEY, 'MCMS_UTM_Validation_MissingRequiredField_messageKey');
  if (typeof messageKey !== 'string' || !isValidMessageKey(messageKey)) return fail(ERR.INVALID_MESSAGE_KEY, 'MCMS_UTM_Validation_InvalidMessageKey');
  const contactKey = r['contactKey'];
  if (contactKey === undefined || contactKey === null || contactKey === '')
    return fail(ERR.MISSING_CONTACT_KEY, 'MCMS_UTM_Validation_MissingRequiredField_contactKey');
  if (typeof contactKey !== 'string' || contactKey.length > MAX_CONTACT_KEY_LENGTH)
    return fail(ERR.INVALID_CONTACT_KEY, 'MCMS_UTM_Validation_InvalidContactKey');
  const to = r['to'];
  if (to === undefined || to === null || to === '') return fail(ERR.MISSING_TO, 'MCMS_UTM_Validation_MissingRequiredField_to');
  if (typeof to !== 'string' || !isPlausibleEmail(to)) return fail(ERR.INVALID_TO, 'MCMS_UTM_Validation_InvalidEmailAddress');
  const attributes = r['attributes'] ?? {};
  if (!isRecord(attributes)) return fail(ERR.UNKNOWN_FIELD_NAME, 'MCMS_UTM_Validation_InvalidAttributes');
  const extra = unknownFields(r, ['messageKey', 'contactKey', 'to', 'attributes']);
  if (extra.length > 0) return fail(ERR.UNKNOWN_FIELD_NAME, `UnknownFieldName: ${extra.join(', ')}`);
  return { ok: true, recipient: { messageKey, contactKey, to, attributes } };
}

/** Whole-request checks shared by both send URLs; undefined when the request may proceed. */
export function validateDefinitionKey(definitionKey: unknown, known: ReadonlySet<string>): Rejection | undefined {
  if (definitionKey === undefined || definitionKey === null || definitionKey === '') {
    return { errorcode: ERR.MISSING_DEFINITION_KEY, message: 'MCMS_UTM_Validation_MissingRequiredField_definitionKey' };
  }
  if (typeof definitionKey !== 'string' || !known.has(definitionKey)) {
    return { errorcode: ERR.INVALID_DEFINITION_KEY, message: 'MCMS_UTM_Validation_InvalidDefinitionKey' };
  }
  return undefined;
}

/** Batch-only rules: recipients present, within the limit, with distinct messageKeys. */
export function validateBatchShape(body: Record<string, unknown>): Rejection | undefined {
  const extra = unknownFields(body, ['definitionKey', 'attributes', 'recipients']);
  if (extra.length > 0) return { errorcode: ERR.UNKNOWN_FIELD_NAME, message: `UnknownFieldName: ${extra.join(', ')}` };
  const recipients = body['recipients'];
  if (!Array.isArray(recipients) || recipients.length === 0) {
    return { errorcode: ERR.NO_SUBSCRIBERS, message: 'MCMS_UTM_Validation_NoSubscribers' };
  }
  if (recipients.length > MAX_BATCH_RECIPIENTS) {
    return { errorcode: ERR.TOO_MANY_RECIPIENTS, message: `MCMS_UTM_Validation_TooManyRecipients: max ${MAX_BATCH_RECIPIENTS}` };
  }
  const seen = new Set<unknown>();
  for (const r of recipients) {
    const key = isRecord(r) ? r['messageKey'] : undefined;
    if (key === undefined || key === '') continue;
    // SFMC requires distinct keys per request; the stand-in refuses the whole request.
    if (seen.has(key)) return { errorcode: ERR.INVALID_MESSAGE_KEY, message: 'MCMS_UTM_Validation_MessageKeyNotUniqueInRequest' };
    seen.add(key);
  }
  return undefined;
}
