// A JS refresher for a provider the built-in OAuth2 refresher cannot talk to, events, and
// the typed error guard: `tsc --noEmit` checks this file against lib/index.d.ts.
import { Store, codes, isOAuthLockError, type RefresherCredential, type TokenFields } from 'oauth-lock';

const store = new Store(process.env.OAUTH_LOCK_DIR, {
  onEvent: (e) => console.error(`[oauth-lock] ${e.event} ${e.key}: ${e.message}`),
});

async function refresh(credential: RefresherCredential): Promise<TokenFields> {
  const res = await fetch('https://auth.example.com/v2/renew', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: credential.refreshToken }),
  });
  const body = (await res.json()) as { error?: string; token?: string; ttl?: number; next?: string };
  // A classified failure: the core records a dead refresh token once for every process.
  if (body.error === 'expired') throw { code: 'invalid_grant', message: 'the session expired' };
  if (!res.ok || !body.token) throw new Error(`HTTP ${res.status}`); // Transient: retried later
  return { accessToken: body.token, expiresIn: body.ttl, refreshToken: body.next };
}

const source = store.source('example:custom', refresh, { refreshTimeoutMs: 10_000 });
try {
  const token = await source.accessToken();
  const expires: Date | null = token.expiresAt;
  console.log(token.fingerprint, expires?.toISOString(), token.generation);
} catch (err) {
  if (isOAuthLockError(err) && err.code === codes.NeedsLogin) console.log('log in first');
  else if (isOAuthLockError(err)) console.log(err.codeName, err.key, err.path, err.oauthError);
  else throw err;
}
