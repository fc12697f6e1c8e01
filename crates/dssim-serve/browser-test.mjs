// Drives `dssim serve` in a real, headless Chromium over the DevTools protocol (a pipe:
// no npm packages, no network): load a shipped experiment, start, kill an instance by
// clicking it, see the errors rise in the chart's data, change workers, instances and the
// balancing algorithm with the controls, run to the end, export, re-run the
// export with `dssim run`, and compare runs.csv and the errors column of timeseries.csv.
//
//   node crates/dssim-serve/browser-test.mjs [--screenshots DIR]
//
// Environment: DSSIM (the binary, default target/release/dssim), CHROMIUM (default
// /usr/bin/chromium). Exit code 0 when every check holds.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DSSIM = process.env.DSSIM || 'target/release/dssim';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const shotsAt = process.argv.indexOf('--screenshots');
const SHOTS = shotsAt > 0 ? process.argv[shotsAt + 1] : null;
const work = mkdtempSync(join(tmpdir(), 'dssim-browser-'));
const children = [];
let failed = false;

function check(ok, what) {
  console.log((ok ? 'ok   ' : 'FAIL ') + what);
  if (!ok) failed = true;
}

function cleanup() {
  for (const c of children) { try { c.kill('SIGTERM'); } catch (_) { /* gone */ } }
}
process.on('exit', cleanup);
const deadline = setTimeout(() => { console.log('FAIL timed out'); cleanup(); process.exit(1); }, 240_000);

// ---- the server -------------------------------------------------------------------------
const server = spawn(DSSIM, ['serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(server);
const url = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/http:\/\/[0-9.]+:\d+\//);
    if (m) resolve(m[0]);
  });
  server.on('exit', (c) => reject(new Error('dssim serve exited with ' + c)));
});
console.log('server at ' + url);

// ---- the browser, over --remote-debugging-pipe (fd 3: commands in, fd 4: events out) ----
const chrome = spawn(CHROMIUM, [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--user-data-dir=' + join(work, 'profile'), '--remote-debugging-pipe', '--window-size=1400,1000',
  'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
children.push(chrome);
chrome.stderr.on('data', () => {});
const toChrome = chrome.stdio[3];
const fromChrome = chrome.stdio[4];
let nextId = 1;
const waiting = new Map();
let buf = Buffer.alloc(0);
fromChrome.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  let z;
  while ((z = buf.indexOf(0)) >= 0) {
    const msg = JSON.parse(buf.subarray(0, z).toString());
    buf = buf.subarray(z + 1);
    if (msg.id && waiting.has(msg.id)) {
      const { resolve, reject } = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    }
  }
});
function cdp(method, params = {}, sessionId) {
  const id = nextId++;
  toChrome.write(JSON.stringify({ id, method, params, sessionId }) + '\0');
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}
const { targetId } = await cdp('Target.createTarget', { url: 'about:blank' });
const { sessionId } = await cdp('Target.attachToTarget', { targetId, flatten: true });
const page = (m, p) => cdp(m, p, sessionId);
await page('Emulation.setDeviceMetricsOverride', { width: 1400, height: 1000, deviceScaleFactor: 1, mobile: false });
await page('Page.enable');

async function js(expression) {
  const r = await page('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
  if (r.exceptionDetails) throw new Error(expression + ': ' + JSON.stringify(r.exceptionDetails));
  return r.result.value;
}
async function until(expression, what, ms = 60_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await js(expression)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  const seen = await js(`[document.getElementById('errors').textContent, document.getElementById('message').textContent,
    window.dssim.run && window.dssim.run.name, window.dssim.views.length && window.dssim.views[0].nodes.length].join(' | ')`);
  check(false, 'waited for ' + what + ' (page: ' + seen + ')');
  throw new Error('gave up waiting for ' + what);
}
async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  const { data } = await page('Page.captureScreenshot', { format: 'png' });
  writeFileSync(join(SHOTS, name), Buffer.from(data, 'base64'));
  console.log('screenshot ' + join(SHOTS, name));
}
// A real mouse click at the centre of the element.
async function click(selector) {
  const box = await js(`(() => { const r = document.querySelector(${JSON.stringify(selector)}).getBoundingClientRect();
    return [r.x + r.width / 2, r.y + r.height / 2]; })()`);
  for (const type of ['mousePressed', 'mouseReleased']) {
    await page('Input.dispatchMouseEvent', { type, x: box[0], y: box[1], button: 'left', clickCount: 1 });
  }
}
const errorsFrom = (t) => `window.dssim.views[0].rows.filter(r => r[0] >= ${t}).reduce((a, r) => a + r[4], 0)`;

try {
  await page('Page.navigate', { url });
  await until(`document.querySelectorAll('#experiment option').length > 5`, 'the experiment list');

  // 1. A malformed experiment gets the CLI's error, with line and column.
  await js(`document.getElementById('editor').value = 'duration = 5\\nmodel = "../models/faults.toml"\\n'; true`);
  await js(`document.getElementById('editor-box').hidden = false; true`);
  await click('#load-text');
  await until(`!document.getElementById('errors').hidden`, 'the error box');
  const shown = await js(`document.getElementById('errors').textContent`);
  writeFileSync(join(work, 'bad.toml'), 'duration = 5\nmodel = "../models/faults.toml"\n');
  let cliErr = '';
  try { execFileSync(DSSIM, ['check', join(work, 'bad.toml')], { stdio: 'pipe' }); } catch (e) { cliErr = e.stderr.toString(); }
  const tail = (s) => (s.match(/\.toml(:\d+:\d+: [^\n]*)/) || [])[1];
  check(tail(shown) !== undefined && tail(shown) === tail(cliErr),
    `the page shows the CLI's error: page ${JSON.stringify(tail(shown))}, CLI ${JSON.stringify(tail(cliErr))}`);
  await js(`document.getElementById('editor-box').hidden = true; true`);

  // 2. A shipped experiment: health checks every 5 s, 3 failures to eject (point 5).
  await js(`document.getElementById('experiment').value = 'health-checks.toml'; true`);
  await click('#load');
  await until(`window.dssim.run && window.dssim.views.length === 1 && document.querySelector('#point-a option')`, 'the diagram');
  await js(`const s = document.getElementById('point-a'); s.value = '5'; s.dispatchEvent(new Event('change')); true`);
  await until(`window.dssim.run && /unhealthy=3/.test(window.dssim.run.variants[0].label) && window.dssim.views[0].nodes.length > 0`, 'point 5 loaded');
  const nodes = await js(`window.dssim.run.variants[0].graph.nodes.map(n => n.kind + ':' + n.name).join(' ')`);
  check(/client:users/.test(nodes) && /load_balancer:lb/.test(nodes) && /service:app\.3/.test(nodes), 'the diagram has the built nodes: ' + nodes);
  await click('.speeds button[data-speed="10"]');
  await click('#start');
  await until(`window.dssim.views[0].now >= 8`, 'simulated time 8 s', 30_000);
  const before = await js(errorsFrom(0));
  check(before === 0, 'no errors before the kill (' + before + ')');

  // 3. Kill app.1 by clicking it; errors rise in the chart's data.
  await click('rect[data-name="app.1"]');
  await until(`/kill at/.test(document.getElementById('message').textContent)`, 'the kill to be applied');
  const killedAt = await js(`window.dssim.views[0].actions[0].at_s`);
  await until(`${errorsFrom('window.dssim.views[0].actions[0].at_s - 1')} > 100`, 'errors after the kill', 30_000);
  await until(`window.dssim.views[0].nodes[window.dssim.run.variants[0].graph.nodes.findIndex(n => n.name === 'app.1')][0] === 0`, 'app.1 drawn down');
  await shot('serve-kill.png');
  const after = await js(errorsFrom(killedAt - 1));
  check(after > 100, `errors rose after the kill at ${killedAt} s: ${after} in the chart's rows`);

  // 4. Raise the load; change workers and instances of app and the balancing algorithm
  // with the controls (each a timed change at the current simulated time); then run to the
  // end as fast as it goes.
  await js(`document.getElementById('rate').value = 2600; true`);
  await click('#rate-set');
  await until(`window.dssim.views[0].actions.length === 2`, 'the rate change');
  const pick = (id, value) => js(`(() => { const s = document.getElementById('${id}'); s.value = ${JSON.stringify(value)};
    s.dispatchEvent(new Event('change')); return s.value === ${JSON.stringify(value)}; })()`);
  check(await pick('set-target', 'app'), 'the settings list names the service');
  await js(`document.getElementById('set-workers').value = 16; document.getElementById('set-instances').value = 5; true`);
  await click('#set-apply');
  await until(`window.dssim.views[0].actions.length === 3`, 'the workers and instances change');
  const applied = await js(`JSON.stringify(window.dssim.views[0].actions[2].action)`);
  check(applied === '{"kind":"set","target":"app","set":{"workers":16,"instances":5}}', 'workers and instances set from the page: ' + applied);
  await until(`window.dssim.views[0].nodes[window.dssim.run.variants[0].graph.nodes.findIndex(n => n.name === 'app.4')][4] === 1`,
    'app.4 drawn on');
  check(await js(`window.dssim.views[0].nodes[window.dssim.run.variants[0].graph.nodes.findIndex(n => n.name === 'app.0')][5] === 16`),
    'app.0 shows 16 workers');
  check(await pick('set-target', 'lb'), 'the settings list names the load balancer');
  check(await js(`!document.getElementById('set-lb').hidden && document.getElementById('set-service').hidden`), 'the algorithm control shows for lb');
  check(await pick('set-algorithm', 'least_connections'), 'the algorithm list');
  await click('#set-apply');
  await until(`window.dssim.views[0].actions.length === 4`, 'the algorithm change');
  await shot('serve-settings.png');
  await click('.speeds button[data-speed="0"]');
  await until(`window.dssim.views[0].done && !document.getElementById('result-0').hidden`, 'the end of the run', 120_000);
  const result = (await js(`document.getElementById('result-0').textContent`)).replace(/^runs\.csv\n/, '');
  const rows = await js(`JSON.stringify(window.dssim.views[0].rows)`);

  // 5. Export, re-run with the CLI, compare.
  await click('#export');
  await until(`!document.getElementById('export-box').hidden && window.dssim.exported`, 'the export');
  await shot('serve-export.png');
  const exported = await js(`window.dssim.exported`);
  const file = join(work, 'demo.toml');
  writeFileSync(file, exported);
  execFileSync(DSSIM, ['run', file, '--out', join(work, 'out')], { stdio: 'pipe' });
  const cli = readFileSync(join(work, 'out', 'runs.csv'), 'utf8');
  check((exported.match(/\[\[model\.changes\]\]/g) || []).length === 2, 'the export holds the two changes as [[model.changes]]');
  check(cli === result, 'dssim run on the export gives the page\'s runs.csv byte for byte');
  const ts = readFileSync(join(work, 'out', 'timeseries.csv'), 'utf8').trim().split('\n');
  const col = ts[0].split(',').indexOf('errors');
  const cliErrors = ts.slice(1).map((l) => Number(l.split(',')[col]));
  const pageErrors = JSON.parse(rows).map((r) => r[4]);
  check(JSON.stringify(cliErrors) === JSON.stringify(pageErrors),
    `the chart's errors per row equal timeseries.csv's (${pageErrors.length} rows, ${pageErrors.reduce((a, b) => a + b, 0)} errors)`);

  // 6. Side by side: cap, ap vs cp in lockstep.
  if (SHOTS) {
    await js(`document.getElementById('experiment').value = 'cap.toml'; true`);
    await click('#load');
    await until(`window.dssim.run && window.dssim.run.name === 'cap' && document.querySelectorAll('#point-b option').length === 2`, 'cap loaded');
    await js(`const c = document.getElementById('side-by-side'); c.checked = true; c.dispatchEvent(new Event('change')); true`);
    await until(`window.dssim.views.length === 2`, 'two variants');
    await click('.speeds button[data-speed="10"]');
    await click('#start');
    await until(`window.dssim.views[0].now >= 70`, 'simulated 70 s of cap', 60_000);
    check(await js(`Math.abs(window.dssim.views[0].now - window.dssim.views[1].now) < 1e-9`), 'the two variants are in lockstep');
    await shot('serve-side-by-side.png');
  }

  // 7. Responsiveness: 100 instances at 10,000 requests/s played at 10x (figures printed,
  // not asserted: they depend on the machine).
  const big = readFileSync(new URL('../../benches/serve_pace.py', import.meta.url), 'utf8')
    .split('MODEL = ' + '"'.repeat(3))[1].split('"'.repeat(3))[0];
  await js(`document.getElementById('editor').value = ${JSON.stringify(big)}; true`);
  await js(`window.dssim.name = 'pace.toml'; document.getElementById('editor-box').hidden = false; true`);
  await click('#load-text');
  await until(`window.dssim.run && window.dssim.run.name === 'pace' && window.dssim.views[0].nodes.length > 100`, 'the 100-instance model');
  await js(`document.getElementById('editor-box').hidden = true; true`);
  await click('.speeds button[data-speed="10"]');
  await click('#start');
  await until(`window.dssim.views[0].now >= 2`, '2 simulated seconds', 30_000);
  const perf = await js(`new Promise((done) => {
    const v = window.dssim.views[0], t0 = performance.now(), s0 = v.now;
    let frames = 0, worst = 0, last = t0;
    const tick = (t) => { frames++; worst = Math.max(worst, t - last); last = t;
      if (t - t0 < 5000) requestAnimationFrame(tick);
      else done({ fps: frames / ((t - t0) / 1000), worst, rate: (v.now - s0) / ((t - t0) / 1000) }); };
    requestAnimationFrame(tick);
  })`);
  console.log(`info 100 instances, 10k rps at 10x: page ${perf.fps.toFixed(0)} animation frames/s, ` +
    `longest gap ${perf.worst.toFixed(0)} ms, ${perf.rate.toFixed(2)} simulated s per wall s`);
  check(perf.rate > 5, 'the 100-instance run advances (simulated s per wall s > 5)');
  await shot('serve-100-instances.png');
} catch (e) {
  console.log('FAIL ' + e.message);
  failed = true;
}
clearTimeout(deadline);
cleanup();
console.log(failed ? 'browser test FAILED' : 'browser test passed');
process.exit(failed ? 1 : 0);
