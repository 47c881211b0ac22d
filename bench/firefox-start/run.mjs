// Repro for onnxruntime-web's start in Firefox ESR's worker: raw ORT (no Edgeship code) in a
// fresh module worker per trial, N trials per configuration, in headless firefox-esr driven by
// puppeteer-core over WebDriver BiDi. A trial that does not finish within `limit` ms is a hang.
//   node bench/firefox-start/run.mjs threads=2 ort=ort.bundle.min.mjs paths=override n=20
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const ortDir = join(root, 'node_modules/onnxruntime-web/dist');
const model = join(root, 'node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const types = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=')));
const isolated = args.isolated !== '0';
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let file = null;
  if (url.pathname === '/' || url.pathname === '/index.html') file = join(here, 'index.html');
  else if (url.pathname === '/worker.js') file = join(here, 'worker.js');
  else if (url.pathname === '/model.onnx') file = model;
  else if (url.pathname.startsWith('/ort/')) file = join(ortDir, url.pathname.slice(5));
  if (!file || !existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  const headers = {
    'content-type': types[extname(file)] ?? 'application/octet-stream',
    'content-length': statSync(file).size,
    'cache-control': 'no-store',
  };
  if (isolated)
    Object.assign(headers, {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
  res.writeHead(200, headers);
  createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const query = new URLSearchParams({
  threads: '2',
  ort: 'ort.bundle.min.mjs',
  paths: 'override',
  n: '20',
  limit: '30000',
  ...args,
});
query.delete('isolated');
query.delete('pages');
const browser = await puppeteer.launch({
  browser: 'firefox',
  protocol: 'webDriverBiDi',
  executablePath: '/usr/bin/firefox-esr',
  headless: true,
  protocolTimeout: 0,
  extraPrefsFirefox: JSON.parse(args.prefs ?? '{}'),
});
const pages = Number(args.pages ?? 1);
const all = [];
try {
  for (let p = 0; p < pages; p++) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage({ type: 'window' });
    await page.goto(`http://127.0.0.1:${port}/?${query}`);
    await page.waitForFunction(() => window.done === true, { timeout: 0, polling: 1000 });
    all.push(...(await page.evaluate(() => window.results)));
    await context.close();
  }
} finally {
  await browser.close();
  server.close();
}
const hangs = all.filter((r) => r.hang);
const errors = all.filter((r) => !r.hang && r.error);
const ranMs = all
  .filter((r) => !r.hang && !r.error)
  .map((r) => Number(r.phases.at(-1).split('@')[1]))
  .sort((a, b) => a - b);
console.log(
  JSON.stringify({
    config: Object.fromEntries(query),
    isolated,
    trials: all.length,
    hangs: hangs.length,
    errors: errors.length,
    medianMs: ranMs[Math.floor(ranMs.length / 2)],
    maxMs: ranMs.at(-1),
  }),
);
for (const h of hangs) console.log('HANG', JSON.stringify(h));
console.log('FIRST', JSON.stringify(all[0]));
for (const e of errors.slice(0, 3)) console.log('ERROR', JSON.stringify(e));
