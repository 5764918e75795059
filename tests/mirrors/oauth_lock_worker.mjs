// An oauth-lock process of the mirror runs (tests/mirrors/test_mirrors.py), through the Node
// package: in a loop it takes the credential's access token and GETs the mock's /resource with
// it; on a 401 it rejects the token and retries once. Prints ONE JSON line: {"program", "pid",
// "calls", "resource_ok", "resource_unauthorized", "rejects", "errors"}. Never prints a token.
//
// argv: STORE KEY RESOURCE_URL SECONDS EVERY_MS
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Store } = require('../../bindings/node/lib/index.js');

const [dir, key, url, seconds, everyMs] = process.argv.slice(2);
const report = {
  program: 'oauth-lock-node',
  pid: process.pid,
  calls: 0,
  resource_ok: 0,
  resource_unauthorized: 0,
  rejects: 0,
  errors: {},
};
const error = (code, err) => {
  if (!report.errors[code]) console.error(`oauth-lock-node pid ${process.pid}: ${code}: ${err?.message ?? err}`);
  report.errors[code] = (report.errors[code] ?? 0) + 1;
};
const get = async (token) => {
  const res = await fetch(url, { headers: { authorization: token.authorization() } });
  await res.arrayBuffer();
  return res.status;
};

const source = new Store(dir).source(key);
const end = Date.now() + Number(seconds) * 1000;
while (Date.now() < end) {
  report.calls += 1;
  try {
    let token = await source.accessToken();
    let status = await get(token);
    if (status === 401) {
      report.resource_unauthorized += 1;
      report.rejects += 1;
      token = await source.reject(token);
      status = await get(token);
      if (status === 401) report.resource_unauthorized += 1;
    }
    if (status === 200) report.resource_ok += 1;
    else error(`resource_http_${status}`, 'after a reject');
  } catch (err) {
    error(err?.codeName ?? err?.code ?? err?.name ?? 'error', err);
  }
  await new Promise((ok) => setTimeout(ok, Number(everyMs)));
}
process.stdout.write(`${JSON.stringify(report)}\n`);
