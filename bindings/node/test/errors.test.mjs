// Every §5 error code from its cause: the exact code, the key and path where known, and the
// record file byte-for-byte unchanged (or, for a provider's refusal of the refresh token, only
// marked needs_login as G5 requires; for a failed refresh, only the shared backoff added). JS refreshers that throw, never settle or answer garbage.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Store, codes, isOAuthLockError, OAuthLockError } from 'oauth-lock';
import { startMock, tempDir, loginAndSave, record, recordBytes, onlyBackoffAdded } from './support.mjs';

const m = await startMock(['--lifetime', '1h']);
after(() => m.close());
const seen = new Set();

/** Awaits `run()` and checks that it failed with `code`, naming `key` (and its path). */
async function fails(run, code, key, store, { path = true, file = store.pathOf(key) } = {}) {
  let err;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${code}, got success`);
  assert.ok(isOAuthLockError(err, code), `expected ${code}, got ${err?.code}: ${err?.message}`);
  assert.ok(err instanceof OAuthLockError && err instanceof Error);
  assert.equal(err.key, key);
  if (path) {
    assert.equal(err.path, file);
    assert.ok(err.message.includes(file), `the message names the path: ${err.message}`);
  }
  assert.ok(err.message.includes(JSON.stringify(key)) || err.message.includes(key), err.message);
  seen.add(code);
  return err;
}

/** A store with a logged-in, expired credential (every call needs a refresh). */
async function expired(key) {
  const store = new Store(tempDir());
  await loginAndSave(store, m, key, 0);
  return { store, before: recordBytes(store, key) };
}

test('NeedsLogin: no record, or no refresh token', async () => {
  const store = new Store(tempDir());
  await fails(() => store.source('nobody').accessToken(), codes.NeedsLogin, 'nobody', store);
  assert.equal(existsSync(store.pathOf('nobody')), false, 'nothing written');
  await store.save('norefresh', { access_token: 'a', expires_in: 0 });
  const before = recordBytes(store, 'norefresh');
  await fails(() => store.source('norefresh').accessToken(), codes.NeedsLogin, 'norefresh', store);
  assert.deepEqual(recordBytes(store, 'norefresh'), before);
});

test('refresh-token errors from a JS refresher are tried once, then NeedsLogin; client errors keep the credential', async () => {
  for (const [reason, code, oauthError] of [
    [{ code: 'invalid_grant', message: 'spent' }, codes.InvalidGrant, 'invalid_grant'],
    [{ error: 'refresh_token_reused' }, codes.Terminal, 'refresh_token_reused'],
  ]) {
    const { store, before } = await expired('dead');
    let calls = 0;
    const source = store.source('dead', async () => {
      calls += 1;
      throw reason;
    });
    const err = await fails(() => source.accessToken(), code, 'dead', store);
    assert.equal(err.oauthError, oauthError);
    const marked = record(store, 'dead');
    const old = JSON.parse(before.toString());
    assert.equal(marked.state, 'needs_login', 'G5: recorded dead for every process');
    assert.equal(marked.last_error.code, oauthError);
    assert.equal(marked.refresh_token, old.refresh_token, 'tokens kept');
    const afterMark = recordBytes(store, 'dead');
    await fails(() => source.accessToken(), codes.NeedsLogin, 'dead', store);
    assert.deepEqual(recordBytes(store, 'dead'), afterMark, 'unchanged by the second call');
    assert.equal(calls, 1, 'the dead refresh token was tried once');
  }
  // A refusal of the client, not of the refresh token: recorded, but the credential stays ok.
  for (const [reason, oauthError] of [
    [{ code: 'access_denied' }, 'access_denied'],
    [{ error: 'invalid_client', error_description: 'who?' }, 'invalid_client'],
  ]) {
    const { store, before } = await expired('client');
    let calls = 0;
    const source = store.source('client', async () => {
      calls += 1;
      throw reason;
    });
    const err = await fails(() => source.accessToken(), codes.Terminal, 'client', store);
    assert.equal(err.oauthError, oauthError);
    const rec = record(store, 'client');
    const old = JSON.parse(before.toString());
    assert.equal(rec.state, 'ok', 'a client error does not kill the credential');
    assert.equal(rec.last_error.code, oauthError);
    assert.equal(rec.refresh_token, old.refresh_token, 'tokens kept');
    assert.equal(rec.backoff.failures, 1);
    const again = await fails(() => source.accessToken(), codes.Terminal, 'client', store);
    assert.equal(again.oauthError, oauthError, 'repeated from the record during the backoff');
    assert.equal(calls, 1, 'no second request during the backoff');
  }
});

test('InvalidGrant from the provider through the built-in refresher', async () => {
  const store = new Store(tempDir());
  const login = await m.login();
  await store.saveTokenResponse('bad', { ...login, refresh_token: 'never-issued', expires_in: 0 }, m.refresh);
  const err = await fails(() => store.source('bad').accessToken(), codes.InvalidGrant, 'bad', store);
  assert.equal(err.oauthError, 'invalid_grant');
  assert.equal(record(store, 'bad').state, 'needs_login');
});

test('Transient: a JS refresher that throws, never settles, or answers garbage', async () => {
  const circular = {};
  circular.self = circular;
  const cases = [
    ['throws', async () => { throw new TypeError('fetch failed'); }, /TypeError: fetch failed/],
    ['throws a system error', async () => { throw Object.assign(new Error('reset'), { code: 'ECONNRESET' }); }, /reset/],
    ['never settles', () => new Promise(() => {}), /time|timed out|30|0\.3|300/i],
    ['answers a number', async () => 42, /not token fields/],
    ['answers nothing', async () => undefined, /access_token|not token fields/],
    ['answers a bad access_token', async () => ({ access_token: 5 }), /access_token/],
    ['answers a circular object', async () => circular, /JSON/],
    ['rejects with transient', async () => { throw { code: 'transient', message: 'busy' }; }, /busy/],
    ['rejects with a string', async () => { throw 'nope'; }, /nope/],
  ];
  for (const [what, refresher, why] of cases) {
    const { store, before } = await expired('t');
    const source = store.source('t', refresher, { refreshTimeoutMs: 300 });
    const err = await fails(() => source.accessToken(), codes.Transient, 't', store);
    assert.match(err.message, why, `${what}: ${err.message}`);
    assert.ok(onlyBackoffAdded(before, recordBytes(store, 't')), `${what}: only a backoff added`);
  }
});

test('a JS refresher answering token fields commits them', async () => {
  const { store } = await expired('cb');
  let got;
  const source = store.source('cb', async (credential) => {
    got = credential;
    return { accessToken: 'from-js', expiresIn: 3600, refreshToken: 'rt-js', account: 'a1' };
  });
  const token = await source.accessToken();
  assert.equal(token.value, 'from-js');
  assert.equal(got.key, 'cb');
  assert.equal(typeof got.refreshToken, 'string');
  assert.equal(got.generation, 1);
  const rec = record(store, 'cb');
  assert.equal(rec.refresh_token, 'rt-js');
  assert.equal(rec.extra.account, 'a1');
});

test('Busy: the lock held by another process', async () => {
  const { store, before } = await expired('busy');
  const lockFile = store.pathOf('busy').replace(/\.json$/, '.lock');
  const holder = spawn('flock', [lockFile, '-c', 'echo locked; sleep 5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((ok) => createInterface({ input: holder.stdout }).once('line', ok));
  try {
    const source = store.source('busy', undefined, { lockTimeoutMs: 200 });
    await fails(() => source.accessToken(), codes.Busy, 'busy', store, { file: lockFile });
    await fails(
      () => store.save('busy', { access_token: 'x', refresh_token: 'y' }, { writeLockTimeoutMs: 200 }),
      codes.Busy,
      'busy',
      store,
      { file: lockFile },
    );
    assert.deepEqual(recordBytes(store, 'busy'), before);
  } finally {
    holder.kill();
  }
});

test('Downgrade: a login without a refresh token over one with it', async () => {
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'down');
  const before = recordBytes(store, 'down');
  await fails(() => store.save('down', { access_token: 'only' }), codes.Downgrade, 'down', store);
  assert.deepEqual(recordBytes(store, 'down'), before);
  await store.save('down', { access_token: 'only' }, { allowDowngrade: true });
  assert.equal(record(store, 'down').access_token, 'only');
});

test('Corrupt and UnsupportedFormat: never rewritten', async () => {
  for (const [key, bytes, code] of [
    ['corrupt', '{"format": 1, "key": "corrupt", "gener', codes.Corrupt],
    ['newer', '{"format": 2, "key": "newer", "generation": 4, "access_token": "x"}', codes.UnsupportedFormat],
  ]) {
    const store = new Store(tempDir());
    writeFileSync(store.pathOf(key), bytes, { mode: 0o600 });
    await fails(() => store.source(key, m.refresh).accessToken(), code, key, store);
    await fails(() => store.verify(key), code, key, store);
    await fails(() => store.save(key, { access_token: 'a' }), code, key, store);
    assert.equal((await store.status(key)).problem.code, Object.keys(codes).find((k) => codes[k] === code));
    assert.equal(recordBytes(store, key).toString(), bytes);
  }
});

test('Io: the record path is a directory', async () => {
  const store = new Store(tempDir());
  mkdirSync(store.pathOf('io'));
  await fails(() => store.source('io').accessToken(), codes.Io, 'io', store);
});

test('InvalidArgument: a bad key, config, option or credential', async () => {
  const store = new Store(tempDir());
  assert.throws(() => store.source('.hidden'), (e) => isOAuthLockError(e, codes.InvalidArgument));
  seen.add(codes.InvalidArgument);
  assert.throws(
    () => store.source('k', { tokenUrl: m.tokenUrl, clientId: 'c', bogus: 1 }),
    (e) => isOAuthLockError(e, codes.InvalidArgument) && e.key === 'k' && /bogus/.test(e.message),
  );
  assert.throws(
    () => store.source('k', undefined, { refreshTimeoutMs: -1 }),
    (e) => isOAuthLockError(e, codes.InvalidArgument) && e.key === 'k' && /refreshTimeoutMs/.test(e.message),
  );
  await fails(() => store.save('k', {}), codes.InvalidArgument, 'k', store);
  await fails(() => store.source('k').reject(42), codes.InvalidArgument, 'k', store, { path: false });
  assert.equal(existsSync(store.pathOf('k')), false);
});

test('Insecure: plain http to a host that is not loopback', async () => {
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'ins');
  const before = recordBytes(store, 'ins');
  const insecure = { tokenUrl: 'http://auth.example.com/token', clientId: 'c' };
  assert.throws(
    () => store.source('ins', insecure),
    (e) => isOAuthLockError(e, codes.Insecure) && e.key === 'ins' && e.path === store.pathOf('ins'),
  );
  seen.add(codes.Insecure);
  const login = await m.login();
  await fails(() => store.saveTokenResponse('ins', login, insecure), codes.Insecure, 'ins', store);
  assert.deepEqual(recordBytes(store, 'ins'), before);
});

test('every code was produced from its cause', () => {
  assert.deepEqual([...seen].sort(), Object.values(codes).sort());
});

test('Transient carries retryAfterMs while every process backs off', async () => {
  const { store } = await expired('later');
  let calls = 0;
  const source = store.source('later', async () => {
    calls += 1;
    throw { code: 'temporarily_unavailable', retry_after: 60 };
  });
  const first = await fails(() => source.accessToken(), codes.Transient, 'later', store);
  assert.equal(first.retryAfterMs, 60_000);
  const second = await fails(() => source.accessToken(), codes.Transient, 'later', store);
  assert.ok(second.retryAfterMs > 55_000 && second.retryAfterMs <= 60_000, `${second.retryAfterMs}`);
  assert.equal(calls, 1, 'no request until the provider said');
  assert.ok(record(store, 'later').backoff.until_ms > Date.now() + 55_000);
});
