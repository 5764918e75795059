'use strict';
// The public API of the npm package `oauth-lock`: a thin layer over the napi addon
// (../index.js, generated) that rethrows core errors as OAuthLockError, routes events to an
// EventEmitter, wraps JS refreshers and adds the fetch helper. No OAuth or file logic here.

const { EventEmitter } = require('node:events');
const { inspect } = require('node:util');
const { dirname, join } = require('node:path');
const { existsSync, readFileSync } = require('node:fs');
const pkg = require('../package.json');

// Loading the addon. napi-rs's generated loader (../index.js) takes a local build
// (`oauth-lock.<platform>.node` beside it, as scripts/build-node makes) or else the platform
// package `oauth-lock-<platform>` that the published package names in its
// optionalDependencies. Its own failure says only "Cannot find native binding", and it checks
// the platform package's version only when NAPI_RS_ENFORCE_VERSION_CHECK is set; so this
// refuses a platform package of another version before anything is loaded, and turns a
// failure into an error that names the platform and what to do.

const REPOSITORY = 'https://github.com/oauth-lock/oauth-lock';
const BINARY = pkg.napi?.binaryName ?? 'oauth-lock';

/** Whether this Linux runs on musl (as napi's loader decides it). */
function isMusl() {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    return !process.report?.getReport()?.header?.glibcVersionRuntime;
  }
}

/** napi-rs's name of this platform: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, … */
function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const libc = isMusl() ? 'musl' : 'gnu';
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  if (platform === 'android' && arch === 'arm') return 'android-arm-eabi';
  return `${platform}-${arch}`;
}

/** An error thrown while loading, with a `code` and the underlying failure as `cause`. */
function loadError(code, message, cause) {
  const err = new Error(message);
  err.code = code;
  if (cause !== undefined) err.cause = cause;
  return err;
}

/** The platform package's package.json path, or null when it is not installed. */
function platformPackageJson(name) {
  try {
    return require.resolve(`${name}/package.json`);
  } catch {
    return null;
  }
}

const fromSource =
  `build the addon from source (needs Rust): in a checkout of ${REPOSITORY}, run ` +
  '`scripts/build-node`, then install that directory (`npm install <checkout>/bindings/node`) ' +
  'or point NAPI_RS_NATIVE_LIBRARY_PATH at the .node file it built';

function loadNative() {
  const platform = platformName();
  const wanted = `${pkg.name}-${platform}`;
  const localBuild = existsSync(join(__dirname, '..', `${BINARY}.${platform}.node`));
  const override = Boolean(process.env.NAPI_RS_NATIVE_LIBRARY_PATH);
  const manifestPath = localBuild || override ? null : platformPackageJson(wanted);
  if (manifestPath !== null) {
    const found = JSON.parse(readFileSync(manifestPath, 'utf8')).version;
    if (found !== pkg.version) {
      throw loadError(
        'ERR_OAUTH_LOCK_NATIVE_VERSION_MISMATCH',
        `oauth-lock ${pkg.version} cannot use ${wanted} ${found} (${dirname(manifestPath)}): ` +
          `the native addon must be of the same version as the package. Install the matching ` +
          `one: \`npm install ${wanted}@${pkg.version}\` (or reinstall oauth-lock, which pins it).`,
      );
    }
  }
  let binding;
  try {
    binding = require('../index.js');
  } catch (err) {
    if (!/^(Cannot find|Failed to load) native binding/.test(err?.message)) throw err;
    const published = Object.keys(pkg.optionalDependencies ?? {})
      .filter((name) => name.startsWith(`${pkg.name}-`))
      .map((name) => name.slice(pkg.name.length + 1));
    let message;
    if (manifestPath !== null) {
      let reason = err.message;
      try {
        require(wanted);
      } catch (e) {
        reason = e.message;
      }
      message =
        `oauth-lock: the native addon for this platform (${platform}) in ${wanted} ` +
        `(${dirname(manifestPath)}) failed to load: ${reason}. Reinstall ${wanted}@${pkg.version}, or ${fromSource}.`;
    } else if (published.includes(platform)) {
      message =
        `oauth-lock: the native addon for this platform (${platform}) is missing: the package ` +
        `${wanted} is not installed (npm installs it with oauth-lock as an optional dependency, ` +
        `unless optional dependencies are omitted: --omit=optional, --no-optional). Install it: ` +
        `\`npm install ${wanted}@${pkg.version}\`, or ${fromSource}.`;
    } else {
      message =
        `oauth-lock: no native addon for this platform (${platform}): there is no package ` +
        `${wanted} (prebuilt packages: ${published.length ? published.join(', ') : 'none'}). ` +
        `Install ${wanted}@${pkg.version} if you have one, or ${fromSource}.`;
    }
    throw loadError('ERR_OAUTH_LOCK_NO_NATIVE_BINDING', message, err);
  }
  const core = binding.coreVersion();
  if (core !== pkg.version) {
    throw loadError(
      'ERR_OAUTH_LOCK_NATIVE_VERSION_MISMATCH',
      `oauth-lock ${pkg.version} loaded a native addon of version ${core}` +
        `${localBuild ? ` (${join(dirname(__dirname), `${BINARY}.${platform}.node`)})` : ''}: ` +
        `the addon must be of the same version as the package. Rebuild it (scripts/build-node) ` +
        `or install ${wanted}@${pkg.version}.`,
    );
  }
  return binding;
}

const native = loadNative();

/** The package's version, which is the core's (the addon's) and the workspace's. */
const version = pkg.version;

// The napi errors that carry a core error start with this, followed by its JSON.
const MARKER = 'oauth-lock-error:';

/** `NeedsLogin` → `ERR_OAUTH_LOCK_NEEDS_LOGIN`. */
function errorCode(name) {
  return 'ERR_OAUTH_LOCK_' + name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Every §5 code by name, from the core's own list: `codes.NeedsLogin === 'ERR_OAUTH_LOCK_NEEDS_LOGIN'`. */
const codes = Object.freeze(
  Object.fromEntries(native.errorCodes().map((name) => [name, errorCode(name)])),
);
const CODE_VALUES = new Set(Object.values(codes));

/** Whether `err` is an oauth-lock error (of `code`, when given). Works across realms. */
function isOAuthLockError(err, code) {
  return (
    err instanceof Error &&
    typeof err.code === 'string' &&
    CODE_VALUES.has(err.code) &&
    (code === undefined || err.code === code)
  );
}

/** An oauth-lock failure: `code` is `ERR_OAUTH_LOCK_<CODE>`; `key` and `path` where known. */
class OAuthLockError extends Error {
  constructor(info) {
    super(info.message);
    this.name = 'OAuthLockError';
    this.code = errorCode(info.code);
    this.codeName = info.code;
    this.codeNumber = info.code_number;
    this.key = info.key ?? null;
    this.path = info.path ?? null;
    this.oauthError = info.oauth_error ?? null;
    this.retryAfterMs = info.retry_after_ms ?? null;
  }

  static [Symbol.hasInstance](value) {
    return isOAuthLockError(value);
  }
}

/** A native error as the caller should see it. */
function translate(err) {
  if (err instanceof Error && typeof err.message === 'string' && err.message.startsWith(MARKER)) {
    return new OAuthLockError(JSON.parse(err.message.slice(MARKER.length)));
  }
  return err;
}

function invalidArgument(key, reason) {
  return new OAuthLockError({
    code: 'InvalidArgument',
    code_number: native.errorCodes().indexOf('InvalidArgument') + 1,
    message: `${key === null ? '' : `key ${JSON.stringify(key)}: `}invalid argument: ${reason}`,
    key,
  });
}

function sync(f) {
  try {
    return f();
  } catch (err) {
    throw translate(err);
  }
}

async function settle(promise) {
  try {
    return await promise;
  } catch (err) {
    throw translate(err);
  }
}

// The native AccessToken gets a Date, and inspect/JSON forms that show only a fingerprint.
const AccessToken = native.AccessToken;
Object.defineProperty(AccessToken.prototype, 'expiresAt', {
  get() {
    const ms = this.expiresAtMs;
    return ms === null ? null : new Date(ms);
  },
});
Object.defineProperty(AccessToken.prototype, 'toJSON', {
  value: function toJSON() {
    return {
      tokenType: this.tokenType,
      fingerprint: this.fingerprint,
      expiresAt: this.expiresAt,
      generation: this.generation,
    };
  },
});
Object.defineProperty(AccessToken.prototype, inspect.custom, {
  value: function (depth, options, inspectFn = inspect) {
    return `AccessToken ${inspectFn(this.toJSON(), options)}`;
  },
});

/** A failure thrown by a user's refresher, as the core reads a refresher's answer. */
function refresherFailure(err) {
  if (err !== null && typeof err === 'object') {
    // A provider's error body (`{error, error_description}`) or an object naming one.
    if (typeof err.error === 'string') {
      return {
        error: err.error,
        error_description: err.error_description ?? err.errorDescription ?? err.message ?? null,
        retry_after: err.retry_after ?? err.retryAfter ?? null,
      };
    }
    // `{code: 'invalid_grant'}`: lowercase OAuth-style codes classify; Node's system codes
    // (ECONNRESET, ERR_...) are uppercase and fall through to transient.
    if (typeof err.code === 'string' && /^[a-z][a-z0-9_]*$/.test(err.code)) {
      return {
        error: err.code,
        error_description: err.description ?? err.message ?? null,
        retry_after: err.retry_after ?? err.retryAfter ?? null,
      };
    }
  }
  const name = err instanceof Error ? `${err.name}: ${err.message}` : inspect(err, { depth: 1 });
  return { error: 'transient', error_description: `the JS refresher threw ${name}` };
}

/** The user's refresher as the addon calls it: never rejects, answers with a JSON string. */
function wrapRefresher(refresher) {
  return async function callRefresher(credential) {
    let answer;
    try {
      answer = await refresher(credential);
    } catch (err) {
      answer = refresherFailure(err);
    }
    try {
      return JSON.stringify(answer) ?? 'null';
    } catch (err) {
      return JSON.stringify({
        error: 'transient',
        error_description: `the JS refresher's answer is not JSON-serialisable: ${err.message}`,
      });
    }
  };
}

/** A credential's valid access tokens; `accessToken()` is free while the token is fresh. */
class TokenSource {
  #native;
  // The AccessToken that the native cached() last returned: handed back while it is still
  // the process's fresh token (see NativeTokenSource.cachedState).
  #last = null;

  constructor(nativeSource) {
    this.#native = nativeSource;
  }

  get key() {
    return this.#native.key;
  }

  get path() {
    return this.#native.path;
  }

  async accessToken() {
    switch (this.#native.cachedState()) {
      case 1:
        return this.#last;
      case 2: {
        const cached = this.#native.cached();
        this.#last = cached;
        if (cached !== null) return cached;
      }
    }
    return settle(this.#native.accessToken());
  }

  async reject(token) {
    const value = token instanceof AccessToken ? token.value : token;
    if (typeof value !== 'string') {
      throw invalidArgument(this.key, '`reject` takes the AccessToken or its value');
    }
    return settle(this.#native.reject(value));
  }

  async accessTokenValidFor(ms) {
    return settle(this.#native.accessTokenValidFor(ms));
  }

  async verify() {
    return settle(this.#native.verify());
  }

  [inspect.custom]() {
    return `TokenSource { key: ${JSON.stringify(this.key)} }`;
  }
}

/** A directory of credentials shared by every process that opens it. Emits `'event'` for its credentials. */
class Store extends EventEmitter {
  #native;
  #listenerId = null;

  constructor(path, options = {}) {
    super();
    if (path !== undefined && path !== null && typeof path !== 'string') {
      throw invalidArgument(null, 'the store path must be a string');
    }
    this.#native = sync(() => new native.NativeStore(path ?? null));
    // One native listener while anyone listens for 'event'; none otherwise.
    this.on('newListener', (name) => {
      if (name === 'event' && this.#listenerId === null) {
        // The core's listeners hear every store of the process; this store's are in its dir.
        const dir = this.path;
        this.#listenerId = native.addEventListener((event) => {
          if (dirname(event.path) === dir) this.emit('event', event);
        });
      }
    });
    this.on('removeListener', (name) => {
      if (name === 'event' && this.listenerCount('event') === 0 && this.#listenerId !== null) {
        native.removeEventListener(this.#listenerId);
        this.#listenerId = null;
      }
    });
    if (typeof options.onEvent === 'function') this.on('event', options.onEvent);
  }

  get path() {
    return this.#native.dir;
  }

  pathOf(key) {
    return sync(() => this.#native.pathOf(key));
  }

  source(key, refresher, options) {
    return sync(() =>
      typeof refresher === 'function'
        ? new TokenSource(this.#native.sourceWithCallback(key, wrapRefresher(refresher), options))
        : new TokenSource(this.#native.source(key, refresher ?? null, options)),
    );
  }

  async save(key, credential, options) {
    return settle(this.#native.save(key, credential, options));
  }

  async saveTokenResponse(key, response, refresh, options) {
    const credential = refresh === undefined || refresh === null ? response : { ...response, refresh };
    return settle(this.#native.save(key, credential, options));
  }

  async clear(key) {
    return settle(this.#native.clear(key));
  }

  async status(key) {
    return settle(this.#native.status(key));
  }

  async list() {
    return settle(this.#native.list());
  }

  async verify(key) {
    return settle(this.#native.verify(key));
  }

  async importLogin(program, options = {}) {
    const { key = null, file = null, tokenUrl = null } = options ?? {};
    return settle(this.#native.importLogin(program, key, file, tokenUrl));
  }
}

function isOneShotBody(body) {
  return (
    body !== null &&
    typeof body === 'object' &&
    (typeof body.getReader === 'function' ||
      typeof body.pipe === 'function' ||
      typeof body[Symbol.asyncIterator] === 'function')
  );
}

function withBearer(input, init, token) {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set('authorization', `Bearer ${token.value}`);
  return { ...init, headers };
}

/**
 * A fetch that sends `source`'s bearer token and, on a 401, calls `reject` and retries once.
 * A streamed body (a ReadableStream, Node stream or async iterable in `init.body`) is sent
 * once: on a 401 the token is still rejected, and the 401 response is returned. A `Request`
 * with a body is cloned up front so its retry can resend it.
 */
function withOAuthLock(source, fetchImpl = globalThis.fetch) {
  if (typeof fetchImpl !== 'function') {
    throw invalidArgument(source?.key ?? null, 'withOAuthLock needs a fetch function');
  }
  return async function fetchWithOAuthLock(input, init = {}) {
    const spare =
      input instanceof Request && input.body !== null && init.body === undefined ? input.clone() : input;
    const token = await source.accessToken();
    const response = await fetchImpl(input, withBearer(input, init, token));
    if (response.status !== 401) return response;
    const fresh = await source.reject(token);
    if (isOneShotBody(init.body)) return response;
    await response.body?.cancel().catch(() => {});
    return fetchImpl(spare, withBearer(spare, init, fresh));
  };
}

module.exports = {
  Store,
  TokenSource,
  AccessToken,
  OAuthLockError,
  isOAuthLockError,
  codes,
  withOAuthLock,
  version,
};
