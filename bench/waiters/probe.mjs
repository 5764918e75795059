// One waiting Node process, for the "Waiters wake together" figures (bench/waiters/waiters.py
// starts many at once), as bench/waiters/probe.py is for Python:
//
//     node probe.mjs STORE KEY
//
// opens `new Store(STORE).source(KEY)` with the addon built in bindings/node (scripts/bench-
// waiters builds it in release), prints "ready", waits for a line on stdin, makes one
// `accessToken()` call and, at a second line on stdin (sent once the round is over: its JSON
// and write must not take CPU from the waiters still waking), prints {pid, generation,
// fingerprint, error, started_ns, returned_ns}, CLOCK_REALTIME in ns; then stays, idle, until
// stdin closes (a waiter that exits would take CPU from the waiters still waking).
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bindings', 'node');
const { Store } = createRequire(join(pkg, 'package.json'))('./lib/index.js');

// Node has no realtime clock finer than Date.now()'s ms: the time origin (a realtime stamp
// taken once, sub-ms) plus the monotonic time since, good to µs over a probe's short life.
const realtimeNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

const [store, key] = process.argv.slice(2);
if (!store || !key) {
  process.stderr.write('usage: node probe.mjs STORE KEY\n');
  process.exit(2);
}
const source = new Store(store).source(key);
process.stdin.setEncoding('utf8');
let buffered = '';
let went = false;
// Resolved at the second line: the report waits for it.
let askReport;
const reportAsked = new Promise((resolve) => {
  askReport = resolve;
});
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  const lines = buffered.split('\n').length - 1;
  if (!went && lines >= 1) {
    went = true;
    void go();
  }
  if (lines >= 2) askReport();
});
// Stays until stdin closes, then leaves at once (no teardown while others still wake).
process.stdin.on('end', () => process.exit(0));
process.stdout.write('ready\n');

async function go() {
  const started = realtimeNs();
  let returned;
  let generation = null;
  let fingerprint = null;
  let error = null;
  try {
    const token = await source.accessToken();
    returned = realtimeNs();
    generation = token.generation;
    fingerprint = token.fingerprint;
  } catch (e) {
    returned = realtimeNs();
    error = e.code ?? String(e);
  }
  await reportAsked;
  // The times spliced in as integers: a Number loses the ns (2^53 < 10^18).
  const doc = JSON.stringify({ pid: process.pid, generation, fingerprint, error });
  process.stdout.write(`${doc.slice(0, -1)},"started_ns":${started},"returned_ns":${returned}}\n`);
}
