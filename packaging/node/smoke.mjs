// The installed package as a user would use it, against the strict mock provider: a login
// saved with its refresh config, a token, a 401 after the provider revokes it, `reject`, a
// different token that the provider accepts, and a missing key's NeedsLogin. Run by
// scripts/test-package-node in a new npm project; $OAUTH_LOCK_CLI is the release CLI.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Store, AccessToken, codes, isOAuthLockError, version } from 'oauth-lock';

const cli = process.env.OAUTH_LOCK_CLI;
assert.ok(cli, 'OAUTH_LOCK_CLI names the oauth-lock CLI');
const require = createRequire(import.meta.url);
console.log(`oauth-lock ${version} from ${require.resolve('oauth-lock')}`);

const mock = spawn(cli, ['mock-server', '--port', '0', '--lifetime', '1h'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
try {
  const first = await new Promise((ok, fail) => {
    mock.once('error', fail);
    mock.once('exit', (code) => fail(new Error(`mock-server exited with ${code}`)));
    createInterface({ input: mock.stdout }).once('line', ok);
  });
  const url = first.match(/^listening on (\S+)/)?.[1];
  assert.ok(url, `mock-server printed ${JSON.stringify(first)}`);
  console.log(`mock provider at ${url}`);
  const resource = async (token) => {
    const res = await fetch(`${url}/resource`, { headers: { authorization: `Bearer ${token.value}` } });
    await res.arrayBuffer();
    return res.status;
  };

  const store = new Store(join(mkdtempSync(join(tmpdir(), 'oauth-lock-smoke-')), 'store'));
  const login = await (await fetch(`${url}/login`, { method: 'POST' })).json();
  const saved = await store.saveTokenResponse('smoke', login, {
    tokenUrl: `${url}/oauth/token`,
    clientId: 'oauth-lock-demo',
  });
  assert.equal(saved.generation, 1);
  assert.equal(saved.hasRefreshConfig, true);

  const source = store.source('smoke');
  const token = await source.accessToken();
  assert.ok(token instanceof AccessToken);
  assert.equal(token.value, login.access_token, 'the saved token');
  assert.equal(await resource(token), 200);
  console.log(`token ${token.fingerprint} (generation ${token.generation}): /resource 200`);

  const revoked = await fetch(`${url}/admin/revoke-access`, { method: 'POST', body: '{}' });
  assert.equal(revoked.status, 200);
  await revoked.arrayBuffer();
  assert.equal(await resource(token), 401);
  const fresh = await source.reject(token);
  assert.notEqual(fresh.value, token.value, 'reject gives a different token');
  assert.equal(fresh.generation, 2);
  assert.equal(await resource(fresh), 200);
  console.log(`after a 401, reject: token ${fresh.fingerprint} (generation ${fresh.generation}): /resource 200`);

  const stats = await (await fetch(`${url}/stats`)).json();
  assert.equal(stats.refreshes, 1, 'one refresh');
  assert.equal(stats.replays, 0, 'no replay');

  await assert.rejects(store.source('nobody').accessToken(), (err) => {
    assert.ok(isOAuthLockError(err, codes.NeedsLogin), `${err.code}: ${err.message}`);
    assert.equal(err.code, 'ERR_OAUTH_LOCK_NEEDS_LOGIN');
    assert.equal(err.key, 'nobody');
    return true;
  });
  console.log('a missing key: ERR_OAUTH_LOCK_NEEDS_LOGIN');
  console.log(`smoke: ok (provider: ${stats.refreshes} refresh, ${stats.replays} replays)`);
} finally {
  mock.kill();
}
