// Runs the independent `sfmc-sdk` npm client (ESM, axios) against the local SFMC stand-in and
// prints one JSON object with what it saw. Used by test/unit/contract/sfmc-sdk.test.ts.
// The SDK insists on real https://<tenant>.{auth,rest}.marketingcloudapis.com URLs; the only
// thing changed here is the host: a request interceptor on the SDK's own axios instance
// sends https://<tenant>.*.marketingcloudapis.com/... to SDK_STANDIN_URL (paths, bodies,
// headers and the SDK's URL joining untouched).
import SDK from 'sfmc-sdk';
import { axiosInstance } from 'sfmc-sdk/util';

const { SDK_AUTH_URL, SDK_CLIENT_ID, SDK_CLIENT_SECRET, SDK_ACCOUNT_ID, SDK_STANDIN_URL } = process.env;
const TENANT_HOST = /^https:\/\/[\da-z-]+\.(auth|rest)\.marketingcloudapis\.com/;
axiosInstance.interceptors.request.use((config) => {
  if (config.baseURL) config.baseURL = config.baseURL.replace(TENANT_HOST, SDK_STANDIN_URL);
  if (config.url) config.url = config.url.replace(TENANT_HOST, SDK_STANDIN_URL);
  return config;
});
const sdk = new SDK(
  { client_id: SDK_CLIENT_ID, client_secret: SDK_CLIENT_SECRET, auth_url: SDK_AUTH_URL, account_id: SDK_ACCOUNT_ID },
  { requestAttempts: 1, retryOnConnectionError: false },
);
const answer = async (fn) => {
  try {
    return { ok: true, data: await fn() };
  } catch (err) {
    return { ok: false, status: err.response?.status ?? null, data: err.response?.data ?? null, message: String(err.message ?? err) };
  }
};
const MESSAGES = '/messaging/v1/email/messages/';
const recipient = (n, extra = {}) => ({ contactKey: `SDK-${n}`, to: `sdk${n}@example.com`, messageKey: `sdk-contract-${n}`, attributes: { FirstName: `S${n}` }, ...extra });
const out = {};
out.token = await answer(async () => {
  const auth = await sdk.auth.getAccessToken();
  return { hasToken: typeof auth.access_token === 'string', rest_instance_url: auth.rest_instance_url };
});
out.batch = await answer(() => sdk.rest.post(MESSAGES, { definitionKey: 'welcome-ua', recipients: [recipient(1), recipient(2, { to: 'not-an-address' }), recipient(3, { messageKey: undefined }), recipient(4, { to: 'sdk4@unsubscribed.example' })] }));
out.duplicateBatch = await answer(() => sdk.rest.post(MESSAGES, { definitionKey: 'welcome-ua', recipients: [recipient(1)] }));
out.duplicateSingle = await answer(() => sdk.rest.post(`${MESSAGES}${recipient(1).messageKey}`, { definitionKey: 'welcome-ua', recipient: { contactKey: 'SDK-1', to: 'sdk1@example.com' } }));
out.unknownDefinition = await answer(() => sdk.rest.post(MESSAGES, { definitionKey: 'no-such-definition', recipients: [recipient(5)] }));
out.statusSent = await answer(() => sdk.rest.get(`${MESSAGES}${recipient(1).messageKey}`));
out.statusNotSent = await answer(() => sdk.rest.get(`${MESSAGES}${recipient(4).messageKey}`));
out.statusUnknown = await answer(() => sdk.rest.get(`${MESSAGES}never-sent`));
process.stdout.write(`${JSON.stringify(out)}\n`);
