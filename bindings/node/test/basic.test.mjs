// The basic flows against the mock provider: login, token, refresh, reject, status, list,
// clear, verify, events, and what an AccessToken shows (never the token).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { readFileSync } from 'node:fs';
import * as native from '../index.js';
import { Store, AccessToken, codes, isOAuthLockError, OAuthLockError } from 'oauth-lock';
import { startMock, tempDir, loginAndSave, record, packageDir } from './support.mjs';

const mock = await startMock(['--lifetime', '1h']);
after(() => mock.close());

test('login, token, status, list, verify and clear', async () => {
  const store = new Store(tempDir());
  const login = await mock.login();
  const status = await store.saveTokenResponse('basic', login, mock.refresh);
  assert.equal(status.exists, true);
  assert.equal(status.generation, 1);
  assert.equal(status.hasRefreshToken, true);
  assert.equal(status.hasRefreshConfig, true);
  assert.equal(status.updatedBy.lang, 'node');
  assert.equal(status.path, store.pathOf('basic'));

  const source = store.source('basic');
  const token = await source.accessToken();
  assert.ok(token instanceof AccessToken);
  assert.equal(token.value, login.access_token);
  assert.equal(String(token), login.access_token);
  assert.equal(token.tokenType, 'Bearer');
  assert.equal(token.generation, 1);
  assert.ok(token.expiresAt instanceof Date);
  assert.ok(token.expiresAt.getTime() > Date.now() + 3_000_000);
  assert.equal(await mock.resourceStatus(token.value), 200);
  assert.equal((await mock.stats()).refreshes, 0, 'a fresh token needs no refresh');

  const verified = await store.verify('basic');
  assert.notEqual(verified.value, token.value);
  assert.equal(verified.generation, 2);
  assert.equal(record(store, 'basic').generation, 2);
  assert.equal((await source.accessToken()).value, verified.value, 'the source sees the rotation');

  const listed = await store.list();
  assert.deepEqual(listed.map((s) => s.key), ['basic']);
  assert.equal(await store.clear('basic'), true);
  assert.equal(await store.clear('basic'), false);
  assert.equal((await store.status('basic')).exists, false);
});

test('an expired token is refreshed once and the rotation committed', async () => {
  const store = new Store(tempDir());
  const before = (await mock.stats()).refreshes;
  const login = await loginAndSave(store, mock, 'expired', 0);
  const token = await store.source('expired').accessToken();
  assert.notEqual(token.value, login.access_token);
  assert.equal(token.generation, 2);
  assert.equal((await mock.stats()).refreshes, before + 1);
  assert.equal(await mock.resourceStatus(token.value), 200);
});

test('save takes camelCase credentials and an OAuth2 config', async () => {
  const store = new Store(tempDir());
  const login = await mock.login();
  await store.save('camel', {
    accessToken: login.access_token,
    refreshToken: login.refresh_token,
    expiresIn: 0,
    account: { id: 7 },
    refresh: mock.refresh,
  });
  const rec = record(store, 'camel');
  assert.equal(rec.refresh.token_url, mock.tokenUrl);
  assert.equal(rec.refresh.body, 'json');
  assert.deepEqual(rec.extra.account, { id: 7 });
  // An explicit OAuth2 config object for the source, in camelCase.
  const token = await store
    .source('camel', { tokenUrl: mock.tokenUrl, clientId: 'oauth-lock-demo', body: 'form' })
    .accessToken();
  assert.equal(await mock.resourceStatus(token.value), 200);
});

test('inspect, JSON and events never show a token', async () => {
  const events = [];
  const store = new Store(tempDir(), { onEvent: (e) => events.push(e) });
  const onEvents = [];
  const listener = (e) => onEvents.push(e);
  store.on('event', listener);
  const otherEvents = [];
  const other = new Store(tempDir(), { onEvent: (e) => otherEvents.push(e) });
  const login = await loginAndSave(store, mock, 'secret', 0);
  const token = await store.source('secret').accessToken();
  await new Promise((r) => setTimeout(r, 50)); // events arrive through the event loop
  const shown = [inspect(token), JSON.stringify(token), inspect(store.source('secret')), JSON.stringify(events)];
  for (const text of shown) {
    for (const secret of [token.value, login.access_token, login.refresh_token]) {
      assert.ok(!text.includes(secret), `${text} shows a token`);
    }
  }
  assert.match(inspect(token), new RegExp(token.fingerprint));
  assert.deepEqual(JSON.parse(JSON.stringify(token)).fingerprint, token.fingerprint);
  const refreshed = events.find((e) => e.event === 'refreshed');
  assert.ok(refreshed, `a refreshed event: ${JSON.stringify(events)}`);
  assert.equal(refreshed.key, 'secret');
  assert.equal(refreshed.path, store.pathOf('secret'));
  assert.deepEqual(otherEvents, [], "another store's listener hears none of this store's events");
  other.removeAllListeners('event');
  assert.equal(refreshed.level, 'info');
  assert.equal(refreshed.fields.generation, 2);
  assert.ok(events.some((e) => e.event === 'refreshed'), 'onEvent got it');
  assert.ok(onEvents.some((e) => e.event === 'refreshed'), "store.on('event') got it");
  store.off('event', listener);
});

test('codes: one per core code, as ERR_OAUTH_LOCK_<CODE>, and in the typings', () => {
  const names = native.errorCodes();
  assert.equal(names.length, 11);
  assert.deepEqual(Object.keys(codes), names);
  assert.equal(codes.NeedsLogin, 'ERR_OAUTH_LOCK_NEEDS_LOGIN');
  assert.equal(codes.UnsupportedFormat, 'ERR_OAUTH_LOCK_UNSUPPORTED_FORMAT');
  assert.equal(codes.InvalidArgument, 'ERR_OAUTH_LOCK_INVALID_ARGUMENT');
  const dts = readFileSync(`${packageDir}/lib/index.d.ts`, 'utf8');
  for (const [name, code] of Object.entries(codes)) {
    assert.ok(dts.includes(`readonly ${name}: '${code}';`), `lib/index.d.ts lists ${name}`);
  }
  assert.equal(isOAuthLockError(new Error('x')), false);
  const e = Object.assign(new Error('x'), { code: codes.Busy });
  assert.equal(isOAuthLockError(e), true);
  assert.equal(isOAuthLockError(e, codes.Busy), true);
  assert.equal(isOAuthLockError(e, codes.Io), false);
  assert.ok(e instanceof OAuthLockError);
});

test('the addon loads in worker_threads', async () => {
  const { Worker } = await import('node:worker_threads');
  const store = new Store(tempDir());
  await loginAndSave(store, mock, 'w');
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Store } = require(${JSON.stringify(packageDir)});
    new Store(workerData).source('w').accessToken().then((t) => parentPort.postMessage(t.value));`;
  const values = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise((ok, fail) => {
          const w = new Worker(code, { eval: true, workerData: store.path });
          w.once('message', ok);
          w.once('error', fail);
        }),
    ),
  );
  const mine = (await store.source('w').accessToken()).value;
  assert.deepEqual(values, [mine, mine, mine]);
});

test('the hot path hands out a new login even at the same generation', async () => {
  const store = new Store(tempDir());
  await store.save('relogin', { access_token: 'first', refresh_token: 'r1', expires_in: 3600 });
  const source = store.source('relogin', undefined, { revalidateMs: 0 });
  const a = await source.accessToken();
  assert.equal(await source.accessToken(), a, 'the same object while the token is unchanged');
  await store.clear('relogin');
  await store.save('relogin', { access_token: 'second', refresh_token: 'r2', expires_in: 3600 });
  const b = await source.accessToken();
  assert.equal(b.generation, a.generation, 'a new record starts at the same generation');
  assert.equal(b.value, 'second');
});
