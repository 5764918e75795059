// Single flight in one process and across processes: counts asserted at the provider.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Store } from 'oauth-lock';
import { startMock, tempDir, loginAndSave, record, runNode, runCli, here } from './support.mjs';

const racer = join(here, 'fixtures', 'racer.mjs');
const mocks = [];
after(() => mocks.forEach((m) => m.close()));
async function mock(args) {
  const m = await startMock(args);
  mocks.push(m);
  return m;
}

test('200 concurrent accessToken() calls at expiry cause exactly one refresh', async () => {
  const m = await mock(['--lifetime', '1h', '--latency', '50ms']);
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'burst', 0);
  const source = store.source('burst');
  const tokens = await Promise.all(Array.from({ length: 200 }, () => source.accessToken()));
  assert.equal(new Set(tokens.map((t) => t.value)).size, 1, 'everyone got the one new token');
  const stats = await m.stats();
  assert.equal(stats.refreshes, 1);
  assert.equal(stats.replays, 0);
  assert.equal(record(store, 'burst').generation, 2);
  assert.equal(await m.resourceStatus(tokens[0].value), 200);
});

test('reject after a 401 refreshes once across Node processes', async () => {
  const m = await mock(['--lifetime', '1h', '--latency', '50ms']);
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'r');
  const first = (await store.source('r').accessToken()).value;
  await m.revokeAccess();
  assert.equal(await m.resourceStatus(first), 401, 'the token still looks fresh but is refused');
  const runs = await Promise.all(
    Array.from({ length: 6 }, () => runNode(join(here, 'fixtures', 'reject.mjs'), [store.path, 'r', first])),
  );
  const values = new Set();
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    JSON.parse(r.stdout).forEach((v) => values.add(v));
  }
  assert.equal(values.size, 1, 'every process got the same new token');
  const second = [...values][0];
  assert.notEqual(second, first);
  assert.equal(await m.resourceStatus(second), 200);
  let stats = await m.stats();
  assert.equal(stats.refreshes, 1);
  assert.equal(stats.replays, 0);
  // A late rejecter of the old token gets the new one with no further refresh.
  assert.equal((await store.source('r').reject(first)).value, second);
  stats = await m.stats();
  assert.equal(stats.refreshes, 1);
});

test('a JS refresher under contention: 4 processes × 3 threads, one refresh per rotation', async () => {
  const m = await mock(['--lifetime', '1s']);
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'js');
  const gen0 = record(store, 'js').generation;
  const runs = await Promise.all(
    Array.from({ length: 4 }, () =>
      runNode(racer, [store.path, 'js', `${m.url}/resource`, '4000', '2', 'js', m.tokenUrl]),
    ),
  );
  let calls = 0;
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.errors, {}, r.stderr);
    assert.equal(out.unauthorized, 0);
    calls += out.calls;
  }
  const stats = await m.stats();
  const rotations = record(store, 'js').generation - gen0;
  assert.equal(stats.replays, 0);
  assert.equal(stats.revoked_families, 0);
  assert.equal(stats.refreshes, rotations, 'one refresh per committed rotation');
  assert.ok(rotations >= 4, `tokens rotated (${rotations})`);
  assert.ok(calls > 100, `calls made (${calls})`);
});

test('a Node process and a CLI process share one store', async () => {
  const m = await mock(['--lifetime', '1h', '--latency', '30ms']);
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'mixed', 0);
  const source = store.source('mixed');
  const [nodeTokens, ...cliRuns] = await Promise.all([
    Promise.all(Array.from({ length: 20 }, () => source.accessToken())),
    ...Array.from({ length: 4 }, () => runCli(store.path, ['token', 'mixed'])),
  ]);
  const values = new Set(nodeTokens.map((t) => t.value));
  for (const r of cliRuns) {
    assert.equal(r.code, 0, r.stderr);
    values.add(r.stdout.trim());
  }
  assert.equal(values.size, 1, 'Node and the CLI got the one refreshed token');
  let stats = await m.stats();
  assert.equal(stats.refreshes, 1);
  assert.equal(stats.replays, 0);
  // The CLI rotates; Node adopts the CLI's rotation instead of refreshing.
  const v = await runCli(store.path, ['verify', 'mixed']);
  assert.equal(v.code, 0, v.stderr);
  const rec = record(store, 'mixed');
  assert.equal(rec.updated_by.lang, 'rust');
  const adopted = await store.source('mixed').reject([...values][0]);
  assert.equal(adopted.generation, rec.generation);
  stats = await m.stats();
  assert.equal(stats.refreshes, 2, 'the CLI verify; Node refreshed nothing more');
  assert.equal(stats.replays, 0);
});

test("another process's login and logout reach a long-lived process", async () => {
  // accessToken() asks the core's cache first, then makes its call: the change seen by the
  // first must not be answered with the old token by the second.
  const store = new Store(tempDir());
  await store.save('k', { access_token: 'at-1', refresh_token: 'rt-1', expires_in: 3600 });
  const source = store.source('k');
  assert.equal((await source.accessToken()).value, 'at-1');
  const login = join(here, 'fixtures', 'login.mjs');
  let run = await runNode(login, [store.path, 'k', 'save', 'at-2']);
  assert.equal(run.code, 0, run.stderr);
  await new Promise((ok) => setTimeout(ok, 1300)); // past the default revalidate (1 s)
  assert.equal((await source.accessToken()).value, 'at-2');
  run = await runNode(login, [store.path, 'k', 'clear']);
  assert.equal(run.code, 0, run.stderr);
  await new Promise((ok) => setTimeout(ok, 1300));
  await assert.rejects(source.accessToken(), (e) => e.codeName === 'NeedsLogin');
});
