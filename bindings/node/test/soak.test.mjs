// The soak: 8 Node processes, each with worker_threads, on one credential for 20 s with
// 1 s tokens — 0 replays, 0 errors, and one refresh per committed rotation.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Store } from 'oauth-lock';
import { startMock, tempDir, loginAndSave, record, runNode, here } from './support.mjs';

const m = await startMock(['--lifetime', '1s']);
after(() => m.close());

test('8 processes × 4 threads (worker_threads) for 20 s never replay', async () => {
  const store = new Store(tempDir());
  await loginAndSave(store, m, 'soak');
  const gen0 = record(store, 'soak').generation;
  const racer = join(here, 'fixtures', 'racer.mjs');
  const runs = await Promise.all(
    Array.from({ length: 8 }, () => runNode(racer, [store.path, 'soak', `${m.url}/resource`, '20000', '3'])),
  );
  let calls = 0;
  let ok = 0;
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.threads, 4);
    assert.deepEqual(out.errors, {}, `no client errors: ${r.stderr}`);
    assert.equal(out.unauthorized, 0);
    calls += out.calls;
    ok += out.ok;
  }
  const stats = await m.stats();
  const rotations = record(store, 'soak').generation - gen0;
  assert.equal(stats.replays, 0, 'no refresh token spent twice');
  assert.equal(stats.revoked_families, 0);
  assert.equal(stats.invalid_grants, 0);
  assert.equal(stats.refreshes, rotations, 'one refresh per committed rotation');
  assert.ok(rotations >= 15, `about one rotation per ~0.5 s margin window (${rotations})`);
  assert.equal(ok, calls);
  console.log(`# soak: ${calls} calls, ${rotations} rotations, ${stats.refreshes} refreshes, 0 replays`);
});
