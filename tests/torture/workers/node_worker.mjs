// One Node process of the mixed torture run (tests/torture/test_torture.py): TASKS
// concurrent async loops on the main thread, and THREADS worker_threads running TASKS loops
// each, all on one credential. Each call takes a token, sends it to the mock's /resource and,
// on a 401, rejects it and retries (a revocation can also catch the token the reject
// adopted, hence a chain of rejects; see MAX_REJECTS). Prints one JSON line report (with the calls of the main
// thread and of the worker threads apart, to prove both took part); exits 1 on any error.
//
// argv: STORE_DIR KEY MOCK_URL SECONDS TASKS THREADS
import { createRequire } from 'node:module';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const { Store } = require('../../../bindings/node/lib/index.js');

// A 401 after this many rejects in one call is an error. One revocation can take several: it
// kills every token issued before it, and a reject answers with a token other than the
// rejected one (the process's cached one, the file's, or a refresh answered just before the
// revocation), which may be such a token too; each reject must at least return another token.
const MAX_REJECTS = 8;
// Latency samples kept per loop (reservoir sampling).
const SAMPLE = 4000;

function tally() {
  return { calls: 0, ok: 0, unauthorized: 0, rejects: 0, longest: 0, errors: {}, latencies: [], seen: 0 };
}

function error(t, code, err) {
  if (!t.errors[code]) console.error(`node pid ${process.pid}: ${code}:`, err);
  t.errors[code] = (t.errors[code] ?? 0) + 1;
}

function latency(t, ns) {
  t.seen += 1;
  if (t.latencies.length < SAMPLE) t.latencies.push(ns);
  else {
    const i = Math.floor(Math.random() * t.seen);
    if (i < SAMPLE) t.latencies[i] = ns;
  }
}

async function loop(source, resource, end, t) {
  const get = async (token) => {
    const res = await fetch(resource, { headers: { authorization: token.authorization() } });
    await res.arrayBuffer();
    return res.status;
  };
  while (Date.now() < end) {
    try {
      const started = process.hrtime.bigint();
      let token;
      try {
        token = await source.accessToken();
      } finally {
        latency(t, Number(process.hrtime.bigint() - started));
        t.calls += 1;
      }
      let status = await get(token);
      let rejects = 0;
      while (status === 401 && rejects < MAX_REJECTS) {
        t.unauthorized += 1;
        t.rejects += 1;
        rejects += 1;
        t.longest = Math.max(t.longest, rejects);
        const fresh = await source.reject(token);
        if (fresh.value === token.value) {
          // reject() must answer with another token than the one rejected.
          throw Object.assign(new Error(fresh.fingerprint), { name: 'RejectReturnedTheRejectedToken' });
        }
        token = fresh;
        status = await get(token);
      }
      if (status === 200) t.ok += 1;
      else error(t, `http_${status}`, `/resource after ${rejects} rejects`);
    } catch (err) {
      error(t, err?.codeName ?? err?.name ?? String(err), err);
    }
    await new Promise((ok) => setTimeout(ok, 1));
  }
}

// TASKS loops on this thread's event loop; their tallies merged.
async function race({ dir, key, url, seconds, tasks }) {
  const source = new Store(dir).source(key);
  const end = Date.now() + seconds * 1000;
  const tallies = Array.from({ length: tasks }, tally);
  await Promise.all(tallies.map((t) => loop(source, `${url}/resource`, end, t)));
  return merge(tallies);
}

function merge(tallies) {
  const out = tally();
  for (const t of tallies) {
    for (const k of ['calls', 'ok', 'unauthorized', 'rejects']) out[k] += t[k];
    out.longest = Math.max(out.longest, t.longest);
    for (const [k, v] of Object.entries(t.errors)) out.errors[k] = (out.errors[k] ?? 0) + v;
    out.latencies.push(...t.latencies);
  }
  return out;
}

if (isMainThread) {
  const [dir, key, url, seconds, tasks, threads] = process.argv.slice(2);
  const job = { dir, key, url, seconds: Number(seconds), tasks: Number(tasks) };
  const workers = Array.from({ length: Number(threads) }, () =>
    new Promise((ok, fail) => {
      const w = new Worker(new URL(import.meta.url), { workerData: job });
      w.once('message', ok);
      w.once('error', fail);
    }),
  );
  const [main, ...others] = await Promise.all([race(job), ...workers]);
  const off = merge(others);
  const all = merge([main, off]);
  const report = {
    lang: 'node',
    pid: process.pid,
    concurrency: job.tasks * (1 + others.length),
    calls: all.calls,
    resource_ok: all.ok,
    resource_unauthorized: all.unauthorized,
    rejects: all.rejects,
    max_rejects_per_call: all.longest,
    errors: all.errors,
    parts: { async: main.calls, worker_threads: off.calls },
    latencies_ns: all.latencies,
  };
  console.log(JSON.stringify(report));
  process.exitCode = all.calls > 0 && Object.keys(all.errors).length === 0 ? 0 : 1;
} else {
  parentPort.postMessage(await race(workerData));
}
