// Shared helpers of the Node tests: the oauth-lock CLI, a mock provider process, a
// temporary store with a logged-in credential, and Node child processes.
//
// The same tests run in the repository (scripts/test-node: bindings/node/test/) and against an
// installed package (scripts/test-package-node copies them into a new npm project): the
// package under test is wherever `oauth-lock` resolves from here, the CLI is $OAUTH_LOCK_CLI,
// and the expected version is $OAUTH_LOCK_WORKSPACE_VERSION or the repository's Cargo.toml.
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
/** The package under test: bindings/node itself, or the installed node_modules/oauth-lock. */
export const packageDir = dirname(createRequire(import.meta.url).resolve('oauth-lock/package.json'));
/** The repository (when the tests run from bindings/node/test). */
export const repoDir = resolve(here, '..', '..', '..');

/** The CLI: `$OAUTH_LOCK_CLI`, else the one scripts/test-node built (target/debug/oauth-lock). */
export const cli =
  process.env.OAUTH_LOCK_CLI ??
  join(process.env.CARGO_TARGET_DIR ?? join(repoDir, 'target'), 'debug', 'oauth-lock');
if (!existsSync(cli)) {
  throw new Error(`no oauth-lock CLI at ${cli}: build it (scripts/build-node) or set OAUTH_LOCK_CLI`);
}

/** The workspace's version (Cargo.toml `[workspace.package]`), which every artifact carries. */
export function workspaceVersion() {
  if (process.env.OAUTH_LOCK_WORKSPACE_VERSION) return process.env.OAUTH_LOCK_WORKSPACE_VERSION;
  const manifest = join(repoDir, 'Cargo.toml');
  if (!existsSync(manifest)) {
    throw new Error(`no ${manifest}: set OAUTH_LOCK_WORKSPACE_VERSION to the expected version`);
  }
  const section = readFileSync(manifest, 'utf8').split(/^\[workspace\.package\]$/m)[1] ?? '';
  const match = section.split(/^\[/m)[0].match(/^version\s*=\s*"([^"]+)"/m);
  if (!match) throw new Error(`${manifest} has no [workspace.package] version`);
  return match[1];
}

/** A running `oauth-lock mock-server`; `close()` kills it. */
export async function startMock(args = []) {
  const child = spawn(cli, ['mock-server', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`mock-server exited with ${code}`)));
    lines.once('line', ok);
  });
  const url = first.replace(/^listening on /, '').trim();
  return {
    url,
    tokenUrl: `${url}/oauth/token`,
    refresh: { tokenUrl: `${url}/oauth/token`, clientId: 'oauth-lock-demo', body: 'json' },
    async stats() {
      return (await fetch(`${url}/stats`)).json();
    },
    async login() {
      const res = await fetch(`${url}/login`, { method: 'POST' });
      if (res.status !== 200) throw new Error(`login: HTTP ${res.status}`);
      return res.json();
    },
    async revokeAccess() {
      const res = await fetch(`${url}/admin/revoke-access`, { method: 'POST', body: '{}' });
      if (res.status !== 200) throw new Error(`revoke-access: HTTP ${res.status}`);
    },
    async resourceStatus(token) {
      const res = await fetch(`${url}/resource`, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      return res.status;
    },
    close() {
      child.kill();
    },
  };
}

/** A fresh store directory. */
export function tempDir() {
  return join(mkdtempSync(join(tmpdir(), 'oauth-lock-node-')), 'store');
}

/** Logs in at the mock and saves the credential with its refresh config. */
export async function loginAndSave(store, mock, key, expiresIn) {
  const response = await mock.login();
  if (expiresIn !== undefined) response.expires_in = expiresIn;
  await store.saveTokenResponse(key, response, mock.refresh);
  return response;
}

/** The record file's bytes. */
export function recordBytes(store, key) {
  return readFileSync(store.pathOf(key));
}

export function record(store, key) {
  return JSON.parse(recordBytes(store, key).toString('utf8'));
}

/**
 * Whether a failed refresh changed nothing but the shared backoff (DESIGN.md §4 step 9): the
 * tokens and every other field as they were, the generation one higher (or the record not
 * written at all, when the failure came after the caller's timeout).
 */
export function onlyBackoffAdded(before, after) {
  const old = JSON.parse(before.toString('utf8'));
  const now = JSON.parse(after.toString('utf8'));
  if (before.equals(after)) return true;
  if (now.generation !== old.generation + 1 || !(now.backoff?.failures >= 1)) return false;
  for (const v of ['generation', 'updated_at_ms', 'updated_by', 'backoff']) {
    delete old[v];
    delete now[v];
  }
  return JSON.stringify(old) === JSON.stringify(now);
}

/** Runs `node file args…`; resolves with {code, stdout, stderr}. */
export function runNode(file, args = [], env = {}) {
  return run(process.execPath, [file, ...args], env);
}

/** Runs the CLI with `--dir dir`. */
export function runCli(dir, args, env = {}) {
  return run(cli, ['--dir', dir, ...args], env);
}

function run(bin, args, env) {
  return new Promise((ok) => {
    execFile(
      bin,
      args,
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => ok({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}
