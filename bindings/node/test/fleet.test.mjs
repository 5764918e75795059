// The fleet store from Node (DESIGN.md §10): `new Store(url)` hands a postgresql:// URL to the
// core; a smoke run against the server scripts/pg-cluster starts (OAUTH_LOCK_TEST_PG_URL).
// A missing server fails the test; it never skips.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Store, isOAuthLockError } from 'oauth-lock';
import { startMock, loginAndSave } from './support.mjs';

const mock = await startMock(['--lifetime', '1h']);
after(() => mock.close());

function pgUrl() {
  const url = process.env.OAUTH_LOCK_TEST_PG_URL ?? '';
  assert.ok(url, 'OAUTH_LOCK_TEST_PG_URL is unset: scripts/test-node starts a server (scripts/pg-cluster)');
  return `${url}&schema=node_${process.pid}`;
}

test('stores on one database refresh once for many callers', async (t) => {
  const url = pgUrl();
  const store = new Store(url);
  await loginAndSave(store, mock, 'node:fleet', 0);
  const before = (await mock.stats()).refreshes;
  const tokens = await Promise.all(
    Array.from({ length: 8 }, () => new Store(url).source('node:fleet').accessToken()),
  );
  assert.equal(new Set(tokens.map((x) => x.value)).size, 1);
  const stats = await mock.stats();
  assert.equal(stats.refreshes, before + 1);
  assert.equal(stats.replays, 0);
  const status = await store.status('node:fleet');
  assert.equal(status.generation, 2);
  assert.equal(await store.clear('node:fleet'), true);
});

test('a bad URL is InvalidArgument and never shows the password', () => {
  assert.throws(
    () => new Store('postgresql://u:hunter2@127.0.0.1/d?sslmode=sometimes'),
    (e) => isOAuthLockError(e) && e.code === 'ERR_OAUTH_LOCK_INVALID_ARGUMENT'
      && e.message.includes('sslmode') && !e.message.includes('hunter2'),
  );
});
