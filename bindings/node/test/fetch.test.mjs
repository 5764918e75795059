// withOAuthLock end to end: the bearer is set, a 401 rejects the token and retries once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Store, withOAuthLock } from 'oauth-lock';
import { startMock, tempDir, loginAndSave } from './support.mjs';

const m = await startMock(['--lifetime', '1h']);
after(() => m.close());

test('sets the bearer; on 401 rejects and retries once with the new token', async () => {
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'f');
  const source = store.source('f');
  const api = withOAuthLock(source);
  const before = await m.stats();
  let res = await api(`${m.url}/resource`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await m.revokeAccess();
  res = await api(`${m.url}/resource`, { headers: { 'x-extra': '1' } });
  assert.equal(res.status, 200, 'the retry with the refreshed token succeeded');
  await res.arrayBuffer();
  const after1 = await m.stats();
  assert.equal(after1.refreshes - before.refreshes, 1);
  assert.equal(after1.resource_unauthorized - before.resource_unauthorized, 1);
  assert.equal(after1.resource_ok - before.resource_ok, 2);
  assert.equal(after1.replays, 0);
});

test('headers, Request objects and one-shot bodies', async () => {
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'g');
  const source = store.source('g');
  const seen = [];
  // A fake fetch that answers 401 to the first token it sees and 200 after.
  const first = (await source.accessToken()).value;
  const fake = async (input, init) => {
    const auth = new Headers(init.headers).get('authorization');
    const body = input instanceof Request ? await input.text() : init.body === undefined ? null : init.body;
    seen.push({ auth, accept: new Headers(init.headers).get('accept'), body });
    return new Response(null, { status: auth === `Bearer ${first}` ? 401 : 200 });
  };
  const api = withOAuthLock(source, fake);
  const res = await api(new Request(`${m.url}/x`, { method: 'POST', body: 'payload', headers: { accept: 'a/b' } }));
  assert.equal(res.status, 200);
  assert.equal(seen.length, 2);
  assert.equal(seen[0].auth, `Bearer ${first}`);
  assert.notEqual(seen[1].auth, seen[0].auth);
  assert.deepEqual(seen.map((s) => [s.accept, s.body]), [['a/b', 'payload'], ['a/b', 'payload']], 'the Request body is resent');

  // A streamed body cannot be resent: one call, the token is still rejected, the 401 returned.
  seen.length = 0;
  const stale = (await source.accessToken()).value;
  const fake2 = async (input, init) => {
    seen.push(new Headers(init.headers).get('authorization'));
    return new Response(null, { status: seen.length === 1 ? 401 : 200 });
  };
  const res2 = await withOAuthLock(source, fake2)(`${m.url}/x`, {
    method: 'POST',
    body: Readable.toWeb(Readable.from(['a', 'b'])),
    duplex: 'half',
  });
  assert.equal(res2.status, 401);
  assert.equal(seen.length, 1);
  assert.notEqual((await source.accessToken()).value, stale, 'the next call has a fresh token');
});
