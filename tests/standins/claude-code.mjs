// A stand-in for Claude Code's OAuth credential handling, scaled down for tests: a test fixture
// that behaves as the real program does with ~/.claude/.credentials.json (DESIGN.md §6.1).
//
// What it copies from Claude Code:
// - It reads its credentials file ONCE at start and keeps the tokens in memory.
// - Before each call, if the in-memory access token expires within the margin (5 min for
//   Claude's ~8 h tokens; here `--margin-ms`, scaled with the test's token lifetime), it
//   takes Claude Code's two proper-lockfile locks with Claude's options (stale 60 s, mtime
//   touched every 5 s): `<dir>/.oauth_refresh.lock`, then the legacy `<realpath(dir)>.lock`,
//   where dir is the directory of the credentials file as given (Claude's config dir). On
//   ELOCKED it retries up to 5 times, sleeping 1-2 s each time (scaled by `--retry-scale`),
//   then gives up with `lock_timeout` and does NOT refresh (Claude never refreshes unlocked).
// - Under the locks it re-reads the file: a token there that is not within the margin is
//   adopted (no refresh); else it POSTs JSON {grant_type, refresh_token, client_id} to the
//   token URL with the file's refresh token.
// - On 200 it writes the merged file (every other field kept: mcpOAuth, unknown ones) to a
//   temp file in the same directory and renames it over the path. Like Claude Code this
//   REPLACES a symlinked credentials file with a regular file: that is the real behaviour.
// - On 400 invalid_grant it writes the "logged-out stub" (accessToken "", refreshToken "",
//   expiresAt 0, the other fields kept) the same way, and stops calling: a logged-out session
//   waits for /login.
// - Each call then GETs the resource with the bearer token; on a 401 it re-reads the file and
//   retries once with the file's token if that differs, else goes through the refresh path
//   (forced) and retries once.
//
// One deviation, forced by proper-lockfile 4.1.2 itself: the library keeps its held locks in
// a registry keyed by the canonical path of the `file` argument, so two locks taken on the
// same `file` in one process overwrite each other's entry (releasing one then removes the
// other's directory, or leaves a directory that its own heartbeat keeps fresh for ever). So
// the first lock is taken with the credentials file as `file` (its lock directory is
// `lockfilePath` all the same) and the legacy one with the directory, which names
// `<realpath(dir)>.lock` as Claude's does. The directories made, the options and the order
// are Claude Code's.
//
// `--naive` turns it into what programs sharing Claude's credential did before oauth-lock (a
// "naive agent"): no locks, no re-read under a lock; it reads the file, refreshes with the
// file's refresh token when the token is within the margin, and writes the file back in place.
//
// Never prints a token: fingerprints (first 8 hex of SHA-256) only. At the end prints ONE JSON
// line: {"program","calls","refreshes","adopted","logged_out","resource_ok",
// "resource_unauthorized","lock_waits","errors"}.
//
// Usage: node claude-code.mjs --file PATH --token-url URL --resource-url URL
//          [--client-id ID] [--margin-ms N] [--seconds S] [--every-ms N] [--retry-scale F]
//          [--naive] [--label NAME]
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const lockfile = require('proper-lockfile');

// Claude Code's OAuth client id.
const CLAUDE_CODE_CLIENT_ID = '9d1c250a-e61b-44d9-88ed-5944d1962f5e';
// Claude Code's proper-lockfile options: stale after 60 s, the holder touches the mtime every 5 s.
const LOCK_STALE_MS = 60_000;
const LOCK_UPDATE_MS = 5_000;
// Claude Code's contention handling: 5 retries, 1-2 s apart (jittered), then `lock_timeout`.
const LOCK_RETRIES = 5;

const { values: args } = parseArgs({
  options: {
    file: { type: 'string' },
    'token-url': { type: 'string' },
    'resource-url': { type: 'string' },
    'client-id': { type: 'string', default: CLAUDE_CODE_CLIENT_ID },
    'margin-ms': { type: 'string', default: '300000' },
    seconds: { type: 'string', default: '10' },
    'every-ms': { type: 'string', default: '50' },
    'retry-scale': { type: 'string', default: '1' },
    naive: { type: 'boolean', default: false },
    label: { type: 'string' },
  },
  strict: true,
});
for (const required of ['file', 'token-url', 'resource-url']) {
  if (!args[required]) {
    console.error(`claude-code stand-in: --${required} is required`);
    process.exit(2);
  }
}
const FILE = args.file;
const DIR = path.dirname(FILE);
const MARGIN_MS = Number(args['margin-ms']);
const SECONDS = Number(args.seconds);
const EVERY_MS = Number(args['every-ms']);
const RETRY_SCALE = Number(args['retry-scale']);
const NAIVE = args.naive;
const PROGRAM = NAIVE ? 'naive-agent' : 'claude-code';
const LABEL = args.label ?? `${PROGRAM} pid ${process.pid}`;

const report = {
  program: PROGRAM,
  pid: process.pid,
  calls: 0,
  refreshes: 0,
  adopted: 0,
  logged_out: false,
  resource_ok: 0,
  resource_unauthorized: 0,
  lock_waits: 0,
  errors: {},
};

function error(code, detail) {
  if (!report.errors[code]) console.error(`${LABEL}: ${code}: ${detail}`);
  report.errors[code] = (report.errors[code] ?? 0) + 1;
}

const fingerprint = (token) =>
  token ? createHash('sha256').update(token).digest('hex').slice(0, 8) : '(empty)';
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** The whole credentials file as JSON, or null when it is missing or does not parse. */
function readFile() {
  try {
    const value = JSON.parse(fs.readFileSync(FILE, 'utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** Its claudeAiOauth entry, if it holds a usable (non-stub) token. */
function oauthOf(file) {
  const o = file?.claudeAiOauth;
  return o && typeof o.accessToken === 'string' && o.accessToken !== '' ? o : null;
}

const expiresWithinMargin = (o) => !o || !(Number(o.expiresAt) - Date.now() > MARGIN_MS);

/** Writes the file as Claude Code does: a temp file beside it, then a rename over the path. */
function writeReplacing(value) {
  const tmp = path.join(DIR, `.${path.basename(FILE)}.tmp.${process.pid}.${Date.now()}`);
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, FILE);
}

/** Writes the file in place (open with truncate, write), as the naive sharers did. */
function writeInPlace(value) {
  fs.writeFileSync(FILE, JSON.stringify(value, null, 2), { mode: 0o600 });
}

/** Takes Claude Code's two locks; the release function, or null after the retries. */
async function takeLocks() {
  const options = {
    stale: LOCK_STALE_MS,
    update: LOCK_UPDATE_MS,
    onCompromised: (err) => error('lock_compromised', err.message),
  };
  for (let attempt = 0; ; attempt++) {
    let first = null;
    try {
      first = await lockfile.lock(FILE, {
        ...options,
        lockfilePath: path.join(DIR, '.oauth_refresh.lock'),
      });
      const second = await lockfile.lock(DIR, options);
      return async () => {
        await second();
        await first();
      };
    } catch (err) {
      if (first) await first().catch((e) => error('unlock', e.message));
      if (err.code !== 'ELOCKED') {
        error(`lock_${err.code ?? 'error'}`, err.message);
        return null;
      }
      report.lock_waits += 1;
      if (attempt >= LOCK_RETRIES) {
        error('lock_timeout', 'another Claude Code process is refreshing the token');
        return null;
      }
      await sleep((1000 + Math.random() * 1000) * RETRY_SCALE);
    }
  }
}

// The tokens in memory, read once at start.
let memory = oauthOf(readFile());

/** POSTs the refresh; {status, body}. */
async function postRefresh(refreshToken) {
  const res = await fetch(args['token-url'], {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: args['client-id'],
    }),
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // reported below by status
  }
  return { status: res.status, body };
}

/** Re-read, adopt or refresh, write back. Runs under the locks (Claude) or none (naive). */
async function refreshUnderLock(force) {
  const file = readFile();
  const onDisk = oauthOf(file);
  if (onDisk && !expiresWithinMargin(onDisk) && !(force && onDisk.accessToken === memory?.accessToken)) {
    if (onDisk.accessToken !== memory?.accessToken) report.adopted += 1;
    memory = onDisk;
    return;
  }
  const refreshToken = onDisk?.refreshToken || file?.claudeAiOauth?.refreshToken || memory?.refreshToken;
  if (!refreshToken) {
    report.logged_out = true;
    error('no_refresh_token', 'the credentials file holds no refresh token');
    return;
  }
  const sentAt = Date.now();
  const { status, body } = await postRefresh(refreshToken);
  const base = file ?? {};
  const entry = { ...(base.claudeAiOauth ?? memory ?? {}) };
  const write = NAIVE ? writeInPlace : writeReplacing;
  if (status === 200 && body?.access_token) {
    entry.accessToken = body.access_token;
    if (body.refresh_token) entry.refreshToken = body.refresh_token;
    entry.expiresAt = sentAt + Math.round(Number(body.expires_in) * 1000);
    if (typeof body.scope === 'string') entry.scopes = body.scope.split(' ').filter(Boolean);
    write({ ...base, claudeAiOauth: entry });
    memory = entry;
    report.refreshes += 1;
    console.error(
      `${LABEL}: refreshed ${fingerprint(refreshToken)} -> ${fingerprint(entry.refreshToken)}`,
    );
  } else if (status === 400 && body?.error === 'invalid_grant') {
    // What a failing Claude Code writes: the logged-out stub, every other field kept.
    if (!NAIVE) {
      write({ ...base, claudeAiOauth: { ...entry, accessToken: '', refreshToken: '', expiresAt: 0 } });
    }
    report.logged_out = true;
    console.error(`${LABEL}: invalid_grant for ${fingerprint(refreshToken)}: logged out`);
  } else {
    error(`token_http_${status}`, body?.error ?? 'no OAuth body');
  }
}

/** The refresh path: under Claude Code's locks (none when naive). */
async function refresh(force) {
  if (NAIVE) return refreshUnderLock(force);
  const release = await takeLocks();
  if (!release) return;
  try {
    await refreshUnderLock(force);
  } finally {
    await release().catch((e) => error('unlock', e.message));
  }
}

async function resource(token) {
  const res = await fetch(args['resource-url'], { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

async function call() {
  report.calls += 1;
  if (expiresWithinMargin(memory)) await refresh(false);
  if (report.logged_out || !memory) return;
  let status = await resource(memory.accessToken);
  if (status === 401) {
    report.resource_unauthorized += 1;
    const onDisk = oauthOf(readFile());
    if (onDisk && onDisk.accessToken !== memory.accessToken) {
      memory = onDisk;
      report.adopted += 1;
    } else {
      await refresh(true);
      if (report.logged_out) return;
    }
    status = await resource(memory.accessToken);
    if (status === 401) report.resource_unauthorized += 1;
  }
  if (status === 200) report.resource_ok += 1;
  else error(`resource_http_${status}`, 'after one retry');
}

async function main() {
  if (!memory) {
    report.logged_out = true;
    error('not_logged_in', `no usable token in ${FILE}`);
  }
  const end = Date.now() + SECONDS * 1000;
  while (!report.logged_out && Date.now() < end) {
    try {
      await call();
    } catch (err) {
      error(err?.code ?? err?.name ?? 'error', err?.message ?? String(err));
    }
    await sleep(EVERY_MS);
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
