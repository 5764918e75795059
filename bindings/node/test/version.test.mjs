// One version everywhere: the package's `version` export is its package.json's version, the
// native addon's (the core's CARGO_PKG_VERSION) and the workspace's (Cargo.toml), and the
// platform package that an installed oauth-lock loads is of that version too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { Store, version } from 'oauth-lock';
import { packageDir, workspaceVersion, tempDir, record } from './support.mjs';
import { platformName } from './platform.mjs';

const require = createRequire(import.meta.url);

test("version is the package's, the addon's (the core's) and the workspace's", () => {
  assert.match(version, /^\d+\.\d+\.\d+/);
  assert.equal(version, require('oauth-lock').version, 'the same from require and import');
  assert.equal(version, require('oauth-lock/package.json').version);
  assert.equal(require(join(packageDir, 'index.js')).coreVersion(), version);
  assert.equal(version, workspaceVersion());
});

test('a record written from Node names the core version that wrote it', async () => {
  const store = new Store(tempDir());
  await store.save('v', { access_token: 'a', refresh_token: 'r', expires_in: 3600 });
  const { lang, version: writer } = record(store, 'v').updated_by;
  assert.deepEqual({ lang, writer }, { lang: 'node', writer: version });
});

test('an installed package loads the platform package of its own version', (t) => {
  if (!packageDir.split(sep).includes('node_modules')) {
    t.skip('not installed: the repository loads its local build');
    return;
  }
  const fromPackage = createRequire(join(packageDir, 'package.json'));
  const manifest = fromPackage('./package.json');
  const platformPackage = `${manifest.name}-${platformName()}`;
  assert.equal(manifest.optionalDependencies?.[platformPackage], version, 'pinned exactly');
  assert.equal(fromPackage(`${platformPackage}/package.json`).version, version);
});
