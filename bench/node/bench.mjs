// The Node benchmark (scripts/bench-node): figures, not tests. In one run: accessToken()'s
// hot path beside a trivial napi async call and beside a hand-written proper-lockfile
// routine's per-call re-read, a cold read, and the hand-off latency to a process blocked
// behind a refresh — oauth-lock's kernel-blocking lock vs proper-lockfile's retry polling.
// Writes JSON for bench/report.py: `node bench.mjs OUT_JSON [quick]`.
import { fork, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..', '..', 'bindings', 'node');
const require = createRequire(join(pkg, 'package.json'));
const { Store } = require('./lib/index.js');
const native = require('./index.js');
const lockfile = require('proper-lockfile');

// What a hand-written integration typically configures: poll with backoff while locked.
export const PL_RETRIES = { retries: 100, factor: 1.3, minTimeout: 5, maxTimeout: 100 };

const now = () => process.hrtime.bigint();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A fresh token record, as the hand-written routine stores it. */
function handRecord(i) {
  return JSON.stringify({ access_token: `at-${i}`, refresh_token: `rt-${i}`, expires_at_ms: Date.now() + 3_600_000 });
}

/** The hand-written routine: re-read per call; if stale, lock (polling), re-read, refresh, write. */
export async function handToken(file, refresh) {
  let rec = JSON.parse(await readFile(file, 'utf8'));
  if (rec.expires_at_ms - Date.now() > 60_000) return rec.access_token;
  const release = await lockfile.lock(file, { retries: PL_RETRIES, realpath: false });
  try {
    rec = JSON.parse(await readFile(file, 'utf8'));
    if (rec.expires_at_ms - Date.now() > 60_000) return rec.access_token;
    const fresh = await refresh(rec);
    await writeFile(`${file}.tmp`, JSON.stringify(fresh));
    await rename(`${file}.tmp`, file);
    return fresh.access_token;
  } finally {
    await release();
  }
}

/** ns per call of `f` over `n` sequential awaited calls, one sample per round. */
async function perCall(f, n, rounds) {
  for (let i = 0; i < n; i++) await f(); // warm-up
  const per = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = now();
    for (let i = 0; i < n; i++) await f();
    per.push(Number(now() - t0) / n);
  }
  return per;
}

/** One measurement for the JSON file: sorted samples and their summary. */
function measurement(label, samples) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    label,
    median_ns: s[Math.floor(s.length / 2)],
    p99_ns: s[Math.round((s.length - 1) * 0.99)],
    min_ns: s[0],
    max_ns: s[s.length - 1],
    n: s.length,
    samples_ns: s,
  };
}

async function hotPaths(dir, scale, rounds) {
  const store = new Store(dir);
  await store.save('hot', { access_token: 'at-hot', refresh_token: 'rt-hot', expires_in: 3600 });
  const source = store.source('hot');
  await source.accessToken();
  const handFile = join(dir, 'hand.json');
  writeFileSync(handFile, handRecord(0));
  const noRefresh = async () => {
    throw new Error('fresh: no refresh expected');
  };
  return {
    accessToken: await perCall(() => source.accessToken(), 200_000 * scale, rounds),
    noop: await perCall(() => native.benchNoop(), 20_000 * scale, rounds),
    resolved: await perCall(() => Promise.resolve(0), 200_000 * scale, rounds),
    hand: await perCall(() => handToken(handFile, noRefresh), 5_000 * scale, rounds),
  };
}

/** The first accessToken() of a key in this process, on a fresh record written directly (as
 * another process's commit would be), so this process has never seen it. */
async function coldReads(dir, n) {
  const store = new Store(dir);
  const out = [];
  for (let i = 0; i < n; i++) {
    const key = `cold-${i}`;
    const t = Date.now();
    const record = { format: 1, key, generation: 1, access_token: `at-${key}`, refresh_token: 'rt', issued_at_ms: t, expires_at_ms: t + 3_600_000 };
    writeFileSync(store.pathOf(key), JSON.stringify(record));
    const source = store.source(key);
    const t0 = now();
    await source.accessToken();
    out.push(Number(now() - t0));
  }
  return out;
}

/** A child process that serves as the blocked loser: it answers {t} = when its call returned. */
function loser() {
  const child = fork(fileURLToPath(import.meta.url), ['loser'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map();
  child.on('message', (m) => waiting.get(m.id)?.(m));
  let next = 0;
  return {
    ask(msg) {
      const id = next++;
      return new Promise((ok) => {
        waiting.set(id, ok);
        child.send({ ...msg, id });
      });
    },
    close: () => child.kill(),
  };
}

/** bench/node/lock_holder.py: another process holding and releasing a credential's flock. */
function lockHolder() {
  const child = spawn('python3', [join(here, 'lock_holder.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (l) => waiting.shift()(l));
  const ask = (cmd) =>
    new Promise((ok) => {
      waiting.push(ok);
      child.stdin.write(`${cmd}\n`);
    });
  return { ask, close: () => child.kill() };
}

async function handOffOurs(dir, rounds) {
  const store = new Store(dir);
  const holder = lockHolder();
  const lat = [];
  for (let i = 0; i < rounds; i++) {
    const key = `handoff-${i}`;
    await store.save(key, { access_token: `old-${i}`, refresh_token: `rt-${i}`, expires_in: 0 });
    const record = store.pathOf(key);
    await holder.ask(`hold ${record.replace(/\.json$/, '.lock')}`);
    const blocked = store
      .source(key)
      .accessToken()
      .then((t) => ({ t: now(), value: t.value }));
    await sleep(50); // the call is now blocked in flock on <stem>.lock (on the core's thread)
    const released = BigInt(await holder.ask(`release ${record} ${key} new-${i}`));
    const { t, value } = await blocked;
    if (value !== `new-${i}`) throw new Error(`the blocked call got another token`);
    lat.push(Number(t - released));
  }
  holder.close();
  return lat;
}

async function handOffProperLockfile(dir, rounds) {
  const b = loser();
  await b.ask({ kind: 'ping' });
  const lat = [];
  for (let i = 0; i < rounds; i++) {
    const file = join(dir, `pl-${i}.json`);
    writeFileSync(file, JSON.stringify({ access_token: `old-${i}`, refresh_token: `rt-${i}`, expires_at_ms: 0 }));
    const release = await lockfile.lock(file, { realpath: false });
    const blocked = b.ask({ kind: 'pl', file });
    // The loser is now polling the lock; release at a random phase of its backoff (which
    // reaches maxTimeout, 100 ms), as a real refresh's duration would.
    await sleep(100 + Math.random() * PL_RETRIES.maxTimeout);
    writeFileSync(`${file}.tmp`, handRecord(i));
    renameSync(`${file}.tmp`, file);
    await release();
    const released = now();
    const { t, value } = await blocked;
    if (value !== `at-${i}`) throw new Error(`the loser got ${value}`);
    lat.push(Number(BigInt(t) - released));
  }
  b.close();
  return lat;
}

async function loserMain() {
  process.on('message', async (m) => {
    if (m.kind === 'ping') return process.send({ id: m.id });
    const value = await handToken(m.file, async () => {
      throw new Error('the loser must adopt, not refresh');
    });
    const t = now();
    process.send({ id: m.id, t: t.toString(), value });
  });
}

async function main() {
  const [out, mode] = process.argv.slice(2);
  const quick = mode === 'quick';
  const dir = join(mkdtempSync(join(tmpdir(), 'oauth-lock-bench-node-')), 'store');
  const hot = await hotPaths(dir, quick ? 0.1 : 1, quick ? 3 : 15);
  const cold = await coldReads(dir, quick ? 40 : 400);
  const rounds = quick ? 10 : 40;
  const ours = await handOffOurs(dir, rounds);
  const pl = await handOffProperLockfile(dir, rounds);
  const m = {
    hot: measurement('`await source.accessToken()`', hot.accessToken),
    noop: measurement('trivial napi async call `await benchNoop()`', hot.noop),
    resolved: measurement('`await Promise.resolve()`', hot.resolved),
    peer_proper_lockfile: measurement('hand-written `proper-lockfile` routine, fresh (re-read + parse per call)', hot.hand),
    cold_read: measurement('first `await accessToken()` of a fresh record', cold),
    handoff: measurement("winner's commit → blocked process's `accessToken()` returns", ours),
    peer_proper_lockfile_handoff: measurement('`proper-lockfile`: release → polling process returns the token', pl),
  };
  for (const [k, v] of Object.entries(m)) {
    console.log(`node ${k.padEnd(28)} median ${v.median_ns.toFixed(1).padStart(14)} ns  p99 ${v.p99_ns.toFixed(1).padStart(14)} ns  (n ${v.n})`);
  }
  const plVersion = JSON.parse(readFileSync(require.resolve('proper-lockfile/package.json'), 'utf8')).version;
  const doc = {
    lang: 'node',
    quick,
    recorded_at_ms: Date.now(),
    versions: { node: process.version, 'proper-lockfile': plVersion, 'proper-lockfile retries': JSON.stringify(PL_RETRIES) },
    measurements: m,
  };
  writeFileSync(out, JSON.stringify(doc, null, 1));
}

if (process.argv[2] === 'loser') await loserMain();
else await main();
