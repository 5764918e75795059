// Store.importLogin: Claude Code's own file becomes a record whose refreshes keep the file in
// step (through a symlink, other fields kept); a file without a usable login is refused,
// naming it, with nothing written (DESIGN.md §6.1).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readFileSync, symlinkSync, lstatSync, existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Store, isOAuthLockError, codes } from 'oauth-lock';
import { startMock, tempDir } from './support.mjs';

const CLAUDE_CLIENT = '9d1c250a-e61b-44d9-88ed-5944d1962f5e';
const m = await startMock(['--client-id', CLAUDE_CLIENT, '--body', 'json']);
after(() => m.close());

test('a Claude Code login is imported, refreshed and written back through its symlink', async () => {
  const home = dirname(tempDir());
  const target = join(home, 'dotfiles', 'credentials.json');
  mkdirSync(dirname(target), { recursive: true });
  const login = await m.login();
  const oauth = {
    accessToken: login.access_token,
    refreshToken: login.refresh_token,
    expiresAt: Date.now(),
    subscriptionType: 'pro',
  };
  writeFileSync(target, JSON.stringify({ claudeAiOauth: oauth, mcpOAuth: { a: 1 } }));
  const link = join(home, 'claude', '.credentials.json');
  mkdirSync(dirname(link));
  symlinkSync(target, link);

  const store = new Store(tempDir());
  const status = await store.importLogin('claude-code', { file: link, tokenUrl: m.tokenUrl });
  assert.equal(status.key, 'claude-code');
  assert.equal(status.mirrorShape, 'claude_code');
  assert.equal(status.mirrorPath, link);

  const token = await store.source('claude-code').accessToken();
  const stats = await m.stats();
  assert.equal(stats.refreshes, 1);
  assert.equal(stats.replays, 0);
  assert.ok(lstatSync(link).isSymbolicLink(), 'the link stays a link');
  const file = JSON.parse(readFileSync(target, 'utf8'));
  assert.equal(file.claudeAiOauth.accessToken, token.value);
  assert.equal(file.claudeAiOauth.subscriptionType, 'pro');
  assert.deepEqual(file.mcpOAuth, { a: 1 });
  assert.ok(!existsSync(join(dirname(link), '.oauth_refresh.lock')), "Claude Code's lock released");
});

test('a logged-out stub is refused with InvalidArgument naming it; nothing is written', async () => {
  const dir = dirname(tempDir());
  const file = join(dir, '.credentials.json');
  const stub = JSON.stringify({ claudeAiOauth: { accessToken: '', refreshToken: '', expiresAt: 0 } });
  writeFileSync(file, stub);
  const store = new Store(tempDir());
  await assert.rejects(store.importLogin('claude-code', { key: 'cc', file }), (err) => {
    assert.ok(isOAuthLockError(err, codes.InvalidArgument), `${err.code}: ${err.message}`);
    assert.equal(err.key, 'cc');
    assert.ok(err.message.includes(file) && err.message.includes('logged out'), err.message);
    return true;
  });
  assert.equal(readFileSync(file, 'utf8'), stub);
  assert.equal((await store.status('cc')).exists, false);
  assert.deepEqual(readdirSync(store.path).filter((n) => n.endsWith('.json')), []);
});
