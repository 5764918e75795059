// Loading the package: napi-rs's loader takes a local build or the platform package
// `oauth-lock-<platform>` (an optional dependency of the published package). A missing one
// must give an error that names the platform and what to do, and a platform package of
// another version must be refused before it is loaded. Each case is an installed layout in a
// temporary node_modules, made from the package under test, and a fresh `node` that loads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { version } from 'oauth-lock';
import { packageDir } from './support.mjs';
import { platformName } from './platform.mjs';

const platform = platformName();
const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const platformPackage = `${manifest.name}-${platform}`;
const addonFile = `${manifest.napi.binaryName}.${platform}.node`;

/** The addon the package under test loads: its local build, or its platform package's. */
function addon() {
  const local = join(packageDir, addonFile);
  if (existsSync(local)) return local;
  return createRequire(join(packageDir, 'package.json')).resolve(platformPackage);
}

/**
 * node_modules/oauth-lock without any .node file (as the published package), whose
 * optionalDependencies name `published` platforms, and, when `platformVersion` is given,
 * node_modules/oauth-lock-<platform> of that version holding the real addon.
 */
function install({ published = [platform], platformVersion } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'oauth-lock-load-'));
  const main = join(root, 'node_modules', manifest.name);
  mkdirSync(main, { recursive: true });
  cpSync(join(packageDir, 'lib'), join(main, 'lib'), { recursive: true });
  cpSync(join(packageDir, 'index.js'), join(main, 'index.js'));
  const optionalDependencies = Object.fromEntries(
    published.map((p) => [`${manifest.name}-${p}`, manifest.version]),
  );
  writeFileSync(join(main, 'package.json'), JSON.stringify({ ...manifest, optionalDependencies }));
  if (platformVersion !== undefined) {
    const dir = join(root, 'node_modules', platformPackage);
    mkdirSync(dir);
    const pkg = { name: platformPackage, version: platformVersion, main: addonFile, files: [addonFile] };
    writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg));
    symlinkSync(addon(), join(dir, addonFile));
  }
  return root;
}

/** `require('oauth-lock')` in a new node in `root`: {loaded, code, message}. */
function load(root) {
  const script = `
    try {
      const { version } = require('oauth-lock');
      console.log(JSON.stringify({ loaded: version }));
    } catch (err) {
      console.log(JSON.stringify({ code: err.code, message: err.message, cause: Boolean(err.cause) }));
    }`;
  const env = { ...process.env };
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
  delete env.NODE_PATH;
  return new Promise((ok, fail) => {
    execFile(process.execPath, ['-e', script], { cwd: root, env }, (err, stdout, stderr) =>
      err ? fail(new Error(`node failed: ${stderr}`)) : ok(JSON.parse(stdout)),
    );
  });
}

test('the platform package of the same version loads', async () => {
  assert.deepEqual(await load(install({ platformVersion: version })), { loaded: version });
});

test('a missing platform package: the error names the platform, the package and the fixes', async () => {
  const result = await load(install());
  assert.equal(result.code, 'ERR_OAUTH_LOCK_NO_NATIVE_BINDING', result.message);
  assert.ok(result.cause, "napi's own error is the cause");
  for (const part of [
    `this platform (${platform})`,
    `${platformPackage} is not installed`,
    '--omit=optional',
    `npm install ${platformPackage}@${version}`,
    'scripts/build-node',
  ]) {
    assert.ok(result.message.includes(part), `the message says ${JSON.stringify(part)}: ${result.message}`);
  }
});

test('a platform without a package: the error says so and how to build from source', async () => {
  const result = await load(install({ published: [] }));
  assert.equal(result.code, 'ERR_OAUTH_LOCK_NO_NATIVE_BINDING', result.message);
  for (const part of [`this platform (${platform})`, `no package ${platformPackage}`, 'scripts/build-node']) {
    assert.ok(result.message.includes(part), `the message says ${JSON.stringify(part)}: ${result.message}`);
  }
});

test('a platform package of another version is refused before it is loaded', async () => {
  const result = await load(install({ platformVersion: '0.0.1-other' }));
  assert.equal(result.code, 'ERR_OAUTH_LOCK_NATIVE_VERSION_MISMATCH', result.message);
  for (const part of [
    `oauth-lock ${version} cannot use ${platformPackage} 0.0.1-other`,
    `npm install ${platformPackage}@${version}`,
  ]) {
    assert.ok(result.message.includes(part), `the message says ${JSON.stringify(part)}: ${result.message}`);
  }
});
