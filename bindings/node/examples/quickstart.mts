import { Store, withOAuthLock, isOAuthLockError, codes } from 'oauth-lock';

// The strict mock provider of the CLI section: `oauth-lock mock-server --port 8765 &`
const provider = process.env.PROVIDER_URL ?? 'http://127.0.0.1:8765';
const store = new Store(); // $OAUTH_LOCK_DIR, else ~/.local/state/oauth-lock

// A login: the provider's token response, plus how to refresh it (kept in the record, so
// any process in any language can refresh it knowing only the key).
const login = await (await fetch(`${provider}/login`, { method: 'POST' })).json();
await store.saveTokenResponse('demo', login, {
  tokenUrl: `${provider}/oauth/token`,
  clientId: 'oauth-lock-demo',
});

// Any process, any worker thread: a valid token, refreshed at most once per expiry.
const source = store.source('demo');
const token = await source.accessToken();
console.log(token); // AccessToken { tokenType: 'Bearer', fingerprint: '…', … }: never the token

// fetch with the bearer set; on a 401 it calls reject (one refresh across all processes)
// and retries once.
const api = withOAuthLock(source);
const res = await api(`${provider}/resource`);
console.log('resource:', res.status);

try {
  await store.source('nobody').accessToken();
} catch (err) {
  if (!isOAuthLockError(err, codes.NeedsLogin)) throw err;
  console.log(`${err.code}: log in first (${err.path})`);
}
