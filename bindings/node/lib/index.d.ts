// Types of the npm package `oauth-lock` (hand-written for lib/index.js; the addon's own
// generated types are ../index.d.ts).
import { EventEmitter } from 'node:events';

/**
 * The package's version, e.g. `'0.1.0'`: the same as the native addon's (the core's) and the
 * workspace's, one version for every artifact.
 *
 * Loading the package fails (at `import`/`require`) with an `Error` whose `code` is
 * `ERR_OAUTH_LOCK_NO_NATIVE_BINDING` when this platform's addon is missing (the message names
 * the platform, e.g. `linux-x64-gnu`, and the package `oauth-lock-<platform>` to install), or
 * `ERR_OAUTH_LOCK_NATIVE_VERSION_MISMATCH` when the installed addon is of another version.
 */
export declare const version: string;

/** Every §5 error code by name; an error's `code` is one of these values. */
export declare const codes: {
  readonly NeedsLogin: 'ERR_OAUTH_LOCK_NEEDS_LOGIN';
  readonly InvalidGrant: 'ERR_OAUTH_LOCK_INVALID_GRANT';
  readonly Terminal: 'ERR_OAUTH_LOCK_TERMINAL';
  readonly Transient: 'ERR_OAUTH_LOCK_TRANSIENT';
  readonly Busy: 'ERR_OAUTH_LOCK_BUSY';
  readonly Downgrade: 'ERR_OAUTH_LOCK_DOWNGRADE';
  readonly Corrupt: 'ERR_OAUTH_LOCK_CORRUPT';
  readonly UnsupportedFormat: 'ERR_OAUTH_LOCK_UNSUPPORTED_FORMAT';
  readonly Io: 'ERR_OAUTH_LOCK_IO';
  readonly InvalidArgument: 'ERR_OAUTH_LOCK_INVALID_ARGUMENT';
  readonly Insecure: 'ERR_OAUTH_LOCK_INSECURE';
};
export type ErrorCodeName = keyof typeof codes;
export type ErrorCode = (typeof codes)[ErrorCodeName];

/** An oauth-lock failure. Messages name the key and the path, never a token. */
export declare class OAuthLockError extends Error {
  readonly name: 'OAuthLockError';
  /** `ERR_OAUTH_LOCK_<CODE>`, e.g. `ERR_OAUTH_LOCK_NEEDS_LOGIN`. */
  readonly code: ErrorCode;
  /** The code's name in every language, e.g. `NeedsLogin`. */
  readonly codeName: ErrorCodeName;
  /** The code's stable number (1..=11, DESIGN.md §5 order; the CLI exits with 10 + it). */
  readonly codeNumber: number;
  readonly key: string | null;
  readonly path: string | null;
  /** The provider's OAuth `error` for `InvalidGrant` and `Terminal`. */
  readonly oauthError: string | null;
  /** For `Transient`: milliseconds until any process refreshes again (the shared backoff, or
   * the provider's `Retry-After`), when known. */
  readonly retryAfterMs: number | null;
}

/** Whether `err` is an oauth-lock error, optionally of one `code`. */
export declare function isOAuthLockError(err: unknown, code?: ErrorCode): err is OAuthLockError;

/** An access token. Only `value` and `toString()` show the token; inspect and JSON show its fingerprint. */
export declare class AccessToken {
  private constructor();
  /** The token itself, for an `Authorization` header. */
  readonly value: string;
  readonly tokenType: string;
  /** When it expires; `null` when the provider gave no expiry. */
  readonly expiresAt: Date | null;
  readonly expiresAtMs: number | null;
  /** The record's generation it came from (rises by one on every write). */
  readonly generation: number;
  /** The first 8 hex digits of the token's SHA-256: safe to log. */
  readonly fingerprint: string;
  /** `"<tokenType> <value>"`. */
  authorization(): string;
  /** The token itself. */
  toString(): string;
  toJSON(): { tokenType: string; fingerprint: string; expiresAt: Date | null; generation: number };
}

/** The built-in OAuth2 refresher's config (the record's `refresh` field, in camelCase). */
export interface OAuth2Config {
  tokenUrl: string;
  clientId: string;
  clientSecret?: string;
  /** `basic` (default when a secret is set) or `body`. */
  clientAuth?: 'basic' | 'body';
  scope?: string;
  /** `form` (RFC 6749, default) or `json` (as Anthropic expects). */
  body?: 'form' | 'json';
  extraParams?: Record<string, string>;
  headers?: Record<string, string>;
  /** Request timeout, default 30 000. */
  timeoutMs?: number;
}

/** What a JS refresher receives: the credential as read under the lock. */
export interface RefresherCredential {
  key: string;
  generation: number;
  accessToken: string | null;
  tokenType: string | null;
  expiresAtMs: number | null;
  refreshToken: string | null;
  scope: string | null;
  idToken: string | null;
  extra: Record<string, unknown>;
}

/**
 * Token fields: a token response as the provider sends it (snake_case), or the same fields
 * in camelCase. Other fields are kept in the record's `extra`.
 */
export interface TokenFields {
  access_token?: string;
  accessToken?: string;
  refresh_token?: string;
  refreshToken?: string;
  token_type?: string;
  tokenType?: string;
  /** Seconds from the request. */
  expires_in?: number;
  expiresIn?: number;
  /** Absolute expiry, Unix milliseconds. */
  expires_at_ms?: number;
  expiresAtMs?: number;
  scope?: string;
  id_token?: string;
  idToken?: string;
  [extra: string]: unknown;
}

/**
 * A refresher for a non-standard provider: gets the credential, returns new token fields.
 * To fail in a classified way, reject with `{code: 'invalid_grant'}` (or another lowercase
 * OAuth error, or `'transient'`), or with the provider's `{error, error_description}` body;
 * a transient one may add `retryAfter` (seconds, e.g. from the provider's `Retry-After`),
 * which every process then waits before refreshing again.
 * Anything else thrown, a malformed answer, or no answer within `refreshTimeoutMs` is
 * `Transient`.
 */
export type Refresher = (credential: RefresherCredential) => Promise<TokenFields> | TokenFields;

/** A mirror file kept in step (DESIGN.md §6). */
export interface MirrorConfig {
  path: string;
  shape: 'claude_code';
}

/** A login for `save`: token fields, plus how to refresh them and an optional mirror. */
export type Credential = TokenFields & { refresh?: OAuth2Config; mirror?: MirrorConfig };

export interface SourceOptions {
  /** Refresh this long before expiry (capped at half the token's lifetime). Default 300 000. */
  refreshMarginMs?: number;
  /** Longest wait for the credential's lock before `Busy`. Default 35 000. */
  lockTimeoutMs?: number;
  /** Longest a refresher may take before `Transient`. Default 30 000. */
  refreshTimeoutMs?: number;
  /** How often the hot path checks the file for another process's login or logout. Default 1 000. */
  revalidateMs?: number;
}

export interface SaveOptions {
  /** Replace a credential that has a refresh token with one that has none. */
  allowDowngrade?: boolean;
  /** Longest wait for the lock. Default 35 000. */
  writeLockTimeoutMs?: number;
}

/** What `status` and `list` report; they never lock and never refresh. */
/** `Store.importLogin`'s options. */
export interface ImportOptions {
  /** The key to store it under; the program's name (`claude-code`, `codex`) by default. */
  key?: string | null;
  /** The program's file; where the program keeps it by default (`$CLAUDE_CONFIG_DIR`, `$CODEX_HOME`, the home directory). */
  file?: string | null;
  /** Refresh at this token URL instead of the program's own (e.g. a test provider). */
  tokenUrl?: string | null;
}

export interface Status {
  key: string;
  path: string;
  exists: boolean;
  generation: number | null;
  state: 'ok' | 'needs_login' | null;
  hasAccessToken: boolean;
  hasRefreshToken: boolean;
  hasRefreshConfig: boolean;
  mirrorPath: string | null;
  mirrorShape: 'claude_code' | 'codex' | null;
  expiresAtMs: number | null;
  issuedAtMs: number | null;
  refreshTokenIssuedAtMs: number | null;
  lastError: { code: string; description: string | null; atMs: number } | null;
  /** No process refreshes before this (a failed refresh's backoff), if set. */
  backoffUntilMs: number | null;
  updatedAtMs: number | null;
  updatedBy: { pid: number; lang: string; version: string } | null;
  accessTokenFingerprint: string | null;
  refreshTokenFingerprint: string | null;
  insecurePermissions: boolean;
  networkFs: boolean;
  problem: { code: ErrorCodeName; message: string } | null;
}

/** A decision of DESIGN.md §8 (`refreshed`, `adopted`, `lock_waited`, ...); never a token. */
export interface OAuthLockEvent {
  event: string;
  level: 'info' | 'warn';
  key: string;
  /** The record file (in the store's directory). */
  path: string;
  message: string;
  fields: Record<string, unknown>;
}

/** A credential's valid access tokens. */
export declare class TokenSource {
  private constructor();
  readonly key: string;
  readonly path: string;
  /** A valid access token; resolves at once while the process holds a fresh one. */
  accessToken(): Promise<AccessToken>;
  /** After an HTTP 401 with `token`: a different valid token, one refresh across all processes. */
  reject(token: AccessToken | string): Promise<AccessToken>;
  /** A token valid for at least `ms` (refreshes sooner if needed, unless another process did). */
  accessTokenValidFor(ms: number): Promise<AccessToken>;
  /** Forces one refresh (rotates the refresh token). */
  verify(): Promise<AccessToken>;
}

export interface StoreOptions {
  /** Called with every oauth-lock event of this store's credentials in this process (same as `store.on('event', fn)`). */
  onEvent?: (event: OAuthLockEvent) => void;
}

/** A directory of credentials shared by every process (and language) that opens it. */
export declare class Store extends EventEmitter {
  /**
   * `path` is a store location, handed to the core as it is: a directory, or a
   * `postgresql://user@host/db` URL for machines that share a credential (DESIGN.md §10; the
   * password from the URL or `$PGPASSWORD`, never shown). Default: `$OAUTH_LOCK_STORE`, else
   * `$OAUTH_LOCK_DIR`, else the platform state dir (`~/.local/state/oauth-lock`).
   */
  constructor(path?: string | null, options?: StoreOptions);
  readonly path: string;
  /** The record file of `key`. */
  pathOf(key: string): string;
  /** Refreshed by the record's own `refresh` config, an OAuth2 config, or a JS refresher. */
  source(key: string, refresher?: OAuth2Config | Refresher | null, options?: SourceOptions): TokenSource;
  /** A login. Refuses (`Downgrade`) to drop a refresh token unless `allowDowngrade`. */
  save(key: string, credential: Credential, options?: SaveOptions): Promise<Status>;
  /** A login from a provider's token response, with how to refresh it. */
  saveTokenResponse(
    key: string,
    response: TokenFields,
    refresh?: OAuth2Config | null,
    options?: SaveOptions,
  ): Promise<Status>;
  /** A logout; `false` when there was no record. */
  clear(key: string): Promise<boolean>;
  status(key: string): Promise<Status>;
  list(): Promise<Status[]>;
  /** Forces one refresh with the record's `refresh` config. */
  verify(key: string): Promise<AccessToken>;
  /**
   * Makes (or updates) a record from Claude Code's or Codex's own credentials file, as
   * `oauth-lock import` does: its tokens, the program's refresh config, and the file as the
   * record's mirror (kept in step on every refresh). A missing, logged-out, API-key-only or
   * malformed file rejects with `InvalidArgument` naming it, and nothing is written.
   */
  importLogin(program: 'claude-code' | 'codex', options?: ImportOptions): Promise<Status>;

  on(event: 'event', listener: (event: OAuthLockEvent) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'event', listener: (event: OAuthLockEvent) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  off(event: 'event', listener: (event: OAuthLockEvent) => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** The `fetch` signature `withOAuthLock` wraps and returns. */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A `fetch` that sends `source`'s bearer token and, on HTTP 401, calls `reject` and retries
 * once. A streamed `init.body` is sent once (on a 401 the token is still rejected and the 401
 * returned); a `Request` with a body is cloned so its retry can resend it.
 */
export declare function withOAuthLock(source: TokenSource, fetchImpl?: Fetch): Fetch;
