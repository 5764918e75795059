// Shared helpers of the Node tests: the oauth-lock CLI, a mock provider process, a
// temporary store with a logged-in credential, and Node child processes.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const packageDir = resolve(here, '..');
export const repoDir = resolve(packageDir, '..', '..');

/** The CLI that scripts/test-node built (`$OAUTH_LOCK_CLI`, else target/debug/oauth-lock). */
export const cli =
  process.env.OAUTH_LOCK_CLI ??
  join(process.env.CARGO_TARGET_DIR ?? join(repoDir, 'target'), 'debug', 'oauth-lock');

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
