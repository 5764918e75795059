// The README's TypeScript example runs as written: the block in README.md's node region is
// examples/quickstart.mts, compiled by tsc and run against a mock provider.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startMock, tempDir, packageDir, repoDir, runNode } from './support.mjs';

const m = await startMock(['--lifetime', '1h']);
after(() => m.close());

function readmeBlock() {
  const readme = readFileSync(join(repoDir, 'README.md'), 'utf8');
  const region = readme.slice(readme.indexOf('<!-- node:begin -->'), readme.indexOf('<!-- node:end -->'));
  const match = region.match(/```ts\n([\s\S]*?)```/);
  assert.ok(match, 'the node region has a ```ts block');
  return match[1];
}

test("the README's TypeScript example is examples/quickstart.mts and runs as written", async () => {
  const example = readFileSync(join(packageDir, 'examples', 'quickstart.mts'), 'utf8');
  assert.equal(readmeBlock(), example);
  const tsc = join(packageDir, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(packageDir, 'tsconfig.build.json')], { stdio: 'inherit' });
  const dir = tempDir();
  const run = await runNode(join(packageDir, '.build', 'examples', 'quickstart.mjs'), [], {
    PROVIDER_URL: m.url,
    OAUTH_LOCK_DIR: dir,
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /AccessToken \{/);
  assert.match(run.stdout, /resource: 200/);
  assert.match(run.stdout, /ERR_OAUTH_LOCK_NEEDS_LOGIN: log in first/);
  const saved = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8'));
  assert.ok(!run.stdout.includes(saved.access_token), 'the example never prints the token');
  assert.equal(saved.updated_by.lang, 'node');
});
