// A TypeScript consumer of the installed package, type-checked with `tsc --noEmit --strict`
// against the shipped types (lib/index.d.ts), then compiled and run against the mock provider
// by scripts/test-package-node.
import { Store, TokenSource, AccessToken, version, withOAuthLock, codes, isOAuthLockError } from 'oauth-lock';
import type { OAuth2Config, Status, TokenFields } from 'oauth-lock';

const provider: string = process.env.PROVIDER_URL ?? 'http://127.0.0.1:8765';
const packageVersion: string = version;

const store: Store = new Store(process.env.OAUTH_LOCK_DIR ?? null);
const refresh: OAuth2Config = { tokenUrl: `${provider}/oauth/token`, clientId: 'oauth-lock-demo', body: 'form' };
const login = (await (await fetch(`${provider}/login`, { method: 'POST' })).json()) as TokenFields;
const status: Status = await store.saveTokenResponse('typed', login, refresh);

const source: TokenSource = store.source('typed');
const token: AccessToken = await source.accessToken();
const expires: Date | null = token.expiresAt;
const api = withOAuthLock(source);
const res: Response = await api(`${provider}/resource`);

// The types refuse what the package refuses (never called: tsc checks it).
function refused(): void {
  // @ts-expect-error a key is a string
  store.source(42);
  // @ts-expect-error reject takes the AccessToken or its value
  void source.reject(7);
  // @ts-expect-error version is a string
  const notANumber: number = version;
  void notANumber;
}
void refused;

try {
  await store.source('nobody').accessToken();
} catch (err) {
  if (!isOAuthLockError(err, codes.NeedsLogin)) throw err;
  const code: string = err.code;
  console.log(`typed: ${code} for ${err.key}`);
}
console.log(
  `typed: oauth-lock ${packageVersion}, generation ${status.generation}, token ${token.fingerprint}` +
    ` expires ${expires === null ? 'never' : 'later'}, /resource ${res.status}`,
);
