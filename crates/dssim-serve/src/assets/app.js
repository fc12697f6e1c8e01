// dssim serve: the page. No dependencies: SVG for the diagram, canvas for the charts.
// Everything the page shows comes from the server's frames; `window.dssim` exposes the
// chart data so tests (and curious students) can read it.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
// Columns of the time-series rows, as the server sends them.
const COL = { t: 0, rps: 1, arrivals: 2, p99: 3, errors: 4, shed: 5, instances: 6, queue: 7,
  inflight: 8, util: 9, hit: 10, lag: 11 };
const CHARTS = [
  ['throughput (req/s): ok, sent', [[COL.rps, '#2a7'], [COL.arrivals, '#999']]],
  ['p99 latency (ms)', [[COL.p99, '#c60']]],
  ['errors, shed (per row)', [[COL.errors, '#d22'], [COL.shed, '#a3a']]],
  ['utilization', [[COL.util, '#36c']], 1],
  ['queue length (mean)', [[COL.queue, '#863']]],
  ['instances', [[COL.instances, '#555']]],
  ['cache hit ratio', [[COL.hit, '#0aa']], 1],
  ['replication lag (ms)', [[COL.lag, '#b80']]],
];
const KIND_COL = { client: 0, load_balancer: 1, cdn: 1, circuit_breaker: 1, service: 2, queue: 2, cache: 3, database: 4 };
const KILLABLE = new Set(['service', 'cache', 'cdn', 'database']);

const state = { run: null, source: null, speed: 10, started: false, text: '', name: '', views: [] };
window.dssim = state;

async function api(method, url, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw data;
  return data;
}

function showErrors(e) {
  const box = $('errors');
  if (!e) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  if (e.errors) box.textContent = e.errors.map((x) => x.text + (x.help ? '\n  help: ' + x.help : '')).join('\n');
  else box.textContent = e.error || String(e);
}

function say(msg, refused) {
  $('message').textContent = msg || '';
  $('message').classList.toggle('refused', !!refused);
}

async function init() {
  const list = await api('GET', '/api/experiments');
  const sel = $('experiment');
  for (const e of list.experiments) {
    const o = document.createElement('option');
    o.value = e.name; o.textContent = e.name.replace(/\.toml$/, '');
    o.title = e.description;
    sel.appendChild(o);
  }
  if (list.initial) sel.value = list.initial;
  $('load').onclick = () => loadShipped();
  $('toggle-editor').onclick = () => { $('editor-box').hidden = !$('editor-box').hidden; };
  $('load-text').onclick = () => loadText($('editor').value, state.name || 'pasted.toml');
  $('upload').onchange = async (ev) => {
    const f = ev.target.files[0];
    if (!f) return;
    if (f.size > 256 * 1024) { showErrors({ error: 'the file is larger than 256 KiB' }); return; }
    const text = await f.text();
    $('editor').value = text;
    loadText(text, f.name);
  };
  $('point-a').onchange = $('point-b').onchange = $('side-by-side').onchange = () => createRun();
  $('start').onclick = () => togglePause();
  for (const b of document.querySelectorAll('.speeds button')) {
    b.onclick = () => setSpeed(Number(b.dataset.speed));
  }
  $('rate-set').onclick = () => setRate(Number($('rate').value));
  $('rate-up').onclick = () => setRate(Number($('rate').value) * 2);
  $('rate-down').onclick = () => setRate(Number($('rate').value) / 2);
  $('client').onchange = () => { $('rate').value = clientRate($('client').value); };
  $('cut').onclick = () => cut();
  $('heal').onclick = () => act({ kind: 'heal' });
  $('set-target').onchange = () => showSettings();
  $('set-apply').onclick = () => applySettings();
  $('export').onclick = () => exportDemo();
  if (list.initial) loadShipped();
}

async function loadShipped() {
  const name = $('experiment').value;
  const text = await api('GET', '/api/experiments/' + encodeURIComponent(name));
  $('editor').value = text;
  return loadText(text, name);
}

async function loadText(text, name) {
  state.text = text; state.name = name;
  showErrors(null);
  try {
    const info = await api('POST', '/api/check', { name, text });
    for (const id of ['point-a', 'point-b']) {
      const s = $(id); s.innerHTML = '';
      info.points.forEach((p, i) => {
        const o = document.createElement('option');
        o.value = i; o.textContent = p || 'the model';
        s.appendChild(o);
      });
    }
    $('point-b').value = Math.min(1, info.points.length - 1);
    $('points-box').hidden = info.points.length < 2;
    $('side-by-side').checked = false;
    return await createRun();
  } catch (e) {
    stopRun();
    showErrors(e);
    return false;
  }
}

function stopRun() {
  if (state.source) { state.source.close(); state.source = null; }
  if (state.run) { api('DELETE', '/api/runs/' + state.run.id).catch(() => {}); state.run = null; }
  $('variants').innerHTML = '';
  $('controls').hidden = true;
  $('hint').hidden = true;
}

async function createRun() {
  stopRun();
  const points = [Number($('point-a').value || 0)];
  if ($('side-by-side').checked) points.push(Number($('point-b').value || 0));
  let run;
  try {
    run = await api('POST', '/api/runs', { name: state.name, text: state.text, points, speed: state.speed });
  } catch (e) { showErrors(e); return false; }
  showErrors(null);
  state.run = run;
  state.started = false;
  $('start').textContent = 'Start';
  $('controls').hidden = false;
  $('hint').hidden = false;
  $('export-box').hidden = true;
  say('');
  state.views = run.variants.map((v, i) => makeView(v, i, run));
  fillControls(run);
  const es = new EventSource('/api/runs/' + run.id + '/events');
  es.onmessage = (m) => onFrame(JSON.parse(m.data));
  state.source = es;
  return true;
}

function fillControls(run) {
  const v = run.variants[0];
  const c = $('client'); c.innerHTML = '';
  for (const cl of v.clients) {
    const o = document.createElement('option'); o.value = cl.name; o.textContent = cl.name; c.appendChild(o);
  }
  $('rate').value = v.clients.length ? clientRate(v.clients[0].name) : '';
  const sides = [];
  const used = new Set(v.graph.nodes.map((n) => n.region));
  if (used.size > 1) v.graph.regions.forEach((r, i) => { if (used.has(i)) sides.push(['region:' + i, 'region ' + r]); });
  const groups = [...new Set(v.graph.nodes.map((n) => n.group))].filter((g) => v.addressable.includes(g));
  for (const g of groups) sides.push([g, g]);
  for (const id of ['side-a', 'side-b']) {
    const s = $(id); s.innerHTML = '';
    for (const [val, label] of sides) {
      const o = document.createElement('option'); o.value = val; o.textContent = label; s.appendChild(o);
    }
  }
  if (sides.length > 1) $('side-b').value = sides[1][0];
  const t = $('set-target'); t.innerHTML = '';
  const targets = [...v.services.map((x) => ['service', x]), ...v.caches.map((x) => ['cache', x]),
    ...v.load_balancers.map((x) => ['lb', x])];
  for (const [kind, x] of targets) {
    const o = document.createElement('option');
    o.value = x.name; o.textContent = x.name; o.dataset.kind = kind;
    t.appendChild(o);
  }
  $('settings').hidden = targets.length === 0;
  showSettings();
}

// The settings of a service, cache or load balancer now: the model's, then every `set`
// action taken so far, in order.
function currentSettings(name) {
  const v = state.run.variants[0];
  const base = v.services.find((x) => x.name === name) || v.caches.find((x) => x.name === name)
    || v.load_balancers.find((x) => x.name === name) || {};
  const cur = { workers: base.workers, instances: base.instances, ttl: base.ttl, algorithm: base.algorithm };
  const view = state.views[0];
  for (const a of (view ? view.actions : [])) {
    if (a.action.kind === 'set' && a.action.target === name) Object.assign(cur, a.action.set);
  }
  return cur;
}

function showSettings() {
  const sel = $('set-target');
  const o = sel.options[sel.selectedIndex];
  if (!o) return;
  const kind = o.dataset.kind, cur = currentSettings(o.value);
  const svc = state.run.variants[0].services.find((x) => x.name === o.value);
  $('set-service').hidden = kind !== 'service';
  $('set-cache').hidden = kind !== 'cache';
  $('set-lb').hidden = kind !== 'lb';
  $('set-workers').value = cur.workers ?? '';
  $('set-instances').value = cur.instances ?? '';
  $('set-instances').disabled = !!(svc && svc.autoscaled);
  $('set-instances').title = svc && svc.autoscaled ? 'an autoscaler sizes this service' : 'instances of the service';
  $('set-ttl').value = cur.ttl ?? '';
  $('set-algorithm').value = cur.algorithm ?? 'round_robin';
}

// Sends the settings that differ from the current ones, as one `set` action.
function applySettings() {
  const sel = $('set-target');
  const o = sel.options[sel.selectedIndex];
  if (!o) return false;
  const kind = o.dataset.kind, cur = currentSettings(o.value), set = {};
  if (kind === 'service') {
    const w = Number($('set-workers').value), n = Number($('set-instances').value);
    if (w !== cur.workers) set.workers = w;
    if (!$('set-instances').disabled && n !== cur.instances) set.instances = n;
  } else if (kind === 'cache') {
    const ttl = $('set-ttl').value.trim();
    if (ttl && ttl !== cur.ttl) set.ttl = ttl;
  } else if ($('set-algorithm').value !== cur.algorithm) {
    set.algorithm = $('set-algorithm').value;
  }
  if (!Object.keys(set).length) { say('nothing changed'); return false; }
  return act({ kind: 'set', target: o.value, set });
}

function clientRate(name) {
  const v = state.run.variants[0];
  const cl = v.clients.find((c) => c.name === name);
  const view = state.views[0];
  return (view && view.rates[name] !== undefined) ? view.rates[name] : (cl && cl.rate) || 0;
}

// ---- the diagram ----------------------------------------------------------------------

function makeView(v, index, run) {
  const div = document.createElement('div');
  div.className = 'variant';
  const h = document.createElement('h2');
  h.textContent = run.name + (v.label ? ' — ' + v.label : '');
  div.appendChild(h);
  const svg = document.createElementNS(SVG, 'svg');
  div.appendChild(svg);
  const charts = document.createElement('div');
  charts.className = 'charts';
  div.appendChild(charts);
  const result = document.createElement('pre');
  result.className = 'result'; result.hidden = true; result.id = 'result-' + index;
  div.appendChild(result);
  $('variants').appendChild(div);
  const view = { index, graph: v.graph, svg, rows: [], nodes: [], shapes: [], centers: [], groups: {},
    charts: [], result, reqs: [], dots: [], rates: {}, actions: [], done: false, now: 0 };
  layout(view);
  for (const [title, series, max] of CHARTS) {
    const box = document.createElement('div'); box.className = 'chart';
    const t = document.createElement('div'); t.className = 'title'; t.textContent = title;
    const c = document.createElement('canvas'); c.width = 520; c.height = 220;
    box.appendChild(t); box.appendChild(c); charts.appendChild(box);
    view.charts.push({ canvas: c, series, max, title });
  }
  const box = document.createElement('div'); box.className = 'chart';
  const t = document.createElement('div'); t.className = 'title';
  t.textContent = 'per instance: utilization (bars), queue (dots)';
  const c = document.createElement('canvas'); c.width = 520; c.height = 220;
  box.appendChild(t); box.appendChild(c); charts.appendChild(box);
  view.instanceChart = c;
  return view;
}

function layout(view) {
  const g = view.graph;
  const W = 900, colW = W / 5;
  const bands = g.regions.map(() => [[], [], [], [], []]);
  g.nodes.forEach((n, i) => bands[n.region][KIND_COL[n.kind] ?? 2].push(i));
  const svg = view.svg;
  svg.innerHTML = '';
  const edgeLayer = document.createElementNS(SVG, 'g');
  const nodeLayer = document.createElementNS(SVG, 'g');
  const dotLayer = document.createElementNS(SVG, 'g');
  svg.appendChild(edgeLayer); svg.appendChild(nodeLayer); svg.appendChild(dotLayer);
  view.dotLayer = dotLayer;
  let y0 = 8;
  const boxes = {};
  bands.forEach((cols, r) => {
    if (cols.every((c) => c.length === 0)) return;
    if (g.regions.length > 1) {
      const t = document.createElementNS(SVG, 'text');
      t.setAttribute('x', 4); t.setAttribute('y', y0 + 10); t.setAttribute('class', 'region');
      t.textContent = 'region ' + g.regions[r];
      nodeLayer.appendChild(t);
      y0 += 14;
    }
    let bandH = 0;
    cols.forEach((idx, c) => {
      const x = c * colW + 8;
      const small = idx.length > 8;
      let y = y0;
      idx.forEach((i, k) => {
        const n = g.nodes[i];
        let rect;
        if (small) {
          const per = Math.floor((colW - 16) / 17);
          rect = [x + (k % per) * 17, y0 + Math.floor(k / per) * 17, 14, 14];
        } else {
          rect = [x, y, colW - 24, 24];
          y += 30;
        }
        const el = document.createElementNS(SVG, 'rect');
        el.setAttribute('x', rect[0]); el.setAttribute('y', rect[1]);
        el.setAttribute('width', rect[2]); el.setAttribute('height', rect[3]);
        el.setAttribute('rx', 3);
        el.setAttribute('class', 'node');
        el.setAttribute('data-name', n.name);
        el.setAttribute('fill', n.initial ? '#cde' : '#f4f4f4');
        el.setAttribute('stroke', n.initial ? '#678' : '#bbb');
        if (!n.initial) el.setAttribute('stroke-dasharray', '3 2');
        const title = document.createElementNS(SVG, 'title');
        title.textContent = n.name;
        el.appendChild(title);
        if (KILLABLE.has(n.kind)) el.onclick = () => toggleNode(view, i);
        nodeLayer.appendChild(el);
        if (!small) {
          const t = document.createElementNS(SVG, 'text');
          t.setAttribute('x', rect[0] + 5); t.setAttribute('y', rect[1] + 15);
          t.textContent = n.name;
          nodeLayer.appendChild(t);
        }
        view.shapes[i] = { el, title };
        view.centers[i] = [rect[0] + rect[2] / 2, rect[1] + rect[3] / 2];
        const b = boxes[n.group] || (boxes[n.group] = [Infinity, Infinity, -Infinity, -Infinity]);
        b[0] = Math.min(b[0], rect[0]); b[1] = Math.min(b[1], rect[1]);
        b[2] = Math.max(b[2], rect[0] + rect[2]); b[3] = Math.max(b[3], rect[1] + rect[3]);
        bandH = Math.max(bandH, rect[1] + rect[3] - y0);
      });
      if (small && idx.length) {
        const t = document.createElementNS(SVG, 'text');
        t.setAttribute('x', x); t.setAttribute('y', y0 + bandH + 11);
        t.textContent = g.nodes[idx[0]].group + ' (' + idx.length + ')';
        nodeLayer.appendChild(t);
        bandH += 14;
      }
    });
    y0 += bandH + 14;
  });
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + (y0 + 4));
  svg.style.height = Math.min(520, y0 + 4) + 'px';
  view.groups = boxes;
  for (const [a, b] of g.edges) {
    const ba = boxes[a], bb = boxes[b];
    if (!ba || !bb) continue;
    const line = document.createElementNS(SVG, 'path');
    const x1 = ba[2], y1 = (ba[1] + ba[3]) / 2, x2 = bb[0], y2 = (bb[1] + bb[3]) / 2;
    const back = x2 < x1;
    const d = back ? `M${(ba[0] + ba[2]) / 2},${ba[3]} L${(bb[0] + bb[2]) / 2},${bb[1]}`
      : `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`;
    line.setAttribute('d', d);
    line.setAttribute('fill', 'none'); line.setAttribute('stroke', '#aab'); line.setAttribute('stroke-width', 1.5);
    edgeLayer.appendChild(line);
  }
}

function utilColor(u) {
  const x = Math.max(0, Math.min(1, u));
  return `hsl(${Math.round(120 * (1 - x))}, 70%, ${Math.round(75 - 20 * x)}%)`;
}

function paint(view) {
  const g = view.graph;
  view.nodes.forEach((s, i) => {
    const sh = view.shapes[i];
    if (!sh) return;
    const n = g.nodes[i];
    const [alive, util, queue, reqs, on, workers] = s;
    let fill = '#cde';
    if (!on) fill = '#f4f4f4';
    else if (!alive) fill = '#555';
    else if (n.kind === 'service' || n.kind === 'database') fill = utilColor(n.kind === 'database' ? Math.min(1, util / 8) : util);
    else if (n.kind === 'cache' || n.kind === 'cdn') fill = '#bde';
    sh.el.setAttribute('fill', fill);
    sh.el.setAttribute('stroke', !on ? '#bbb' : alive ? '#678' : '#d00');
    if (on) sh.el.removeAttribute('stroke-dasharray'); else sh.el.setAttribute('stroke-dasharray', '3 2');
    sh.title.textContent = `${n.name}${!on ? ' (off)' : alive ? '' : ' (down)'}` +
      (n.kind === 'service' ? `\nworkers ${workers}` : '') + `\nutilization ${util}\nqueue ${queue}\nrequests ${reqs}`;
  });
}

function toggleNode(view, i) {
  const n = view.graph.nodes[i];
  const s = view.nodes[i];
  const alive = !s || s[0];
  act({ kind: alive ? 'kill' : 'recover', target: n.name });
}

// Single requests moving: at low rates, one dot per request an instance or node handled
// since the last frame, from the component in front of it.
function animate(view, deltas) {
  const total = deltas.reduce((a, b) => a + b, 0);
  if (total === 0 || total > 40) return;
  const g = view.graph;
  const upstream = {};
  for (const [a, b] of g.edges) upstream[b] = upstream[b] || a;
  deltas.forEach((d, i) => {
    const n = g.nodes[i];
    if (!d || !['service', 'database', 'cache'].includes(n.kind)) return;
    const from = upstream[n.group];
    const box = from && view.groups[from];
    if (!box) return;
    for (let k = 0; k < d; k++) {
      const c = document.createElementNS(SVG, 'circle');
      c.setAttribute('r', 3); c.setAttribute('fill', '#e63');
      view.dotLayer.appendChild(c);
      view.dots.push({ el: c, from: [box[2], (box[1] + box[3]) / 2], to: view.centers[i], t0: performance.now() + k * 30 });
    }
  });
}

function moveDots() {
  const now = performance.now();
  for (const view of state.views) {
    view.dots = view.dots.filter((d) => {
      const f = (now - d.t0) / 450;
      if (f >= 1) { d.el.remove(); return false; }
      const x = d.from[0] + (d.to[0] - d.from[0]) * Math.max(0, f);
      const y = d.from[1] + (d.to[1] - d.from[1]) * Math.max(0, f);
      d.el.setAttribute('cx', x); d.el.setAttribute('cy', y);
      return true;
    });
  }
  requestAnimationFrame(moveDots);
}

// ---- the charts -----------------------------------------------------------------------

const SHOWN_ROWS = 120;

function drawChart(view, ch) {
  const c = ch.canvas, x = c.getContext('2d');
  const W = c.width, H = c.height, L = 60, B = 24;
  x.clearRect(0, 0, W, H);
  const rows = view.rows.slice(-SHOWN_ROWS);
  x.font = '18px sans-serif'; x.fillStyle = '#666';
  if (!rows.length) return;
  const t0 = rows[0][COL.t], t1 = Math.max(rows[rows.length - 1][COL.t], t0 + 1e-9);
  let hi = ch.max || 0;
  for (const r of rows) for (const [col] of ch.series) if (r[col] !== null) hi = Math.max(hi, r[col]);
  if (hi === 0) hi = 1;
  const px = (t) => L + (W - L - 8) * (t - t0) / (t1 - t0);
  const py = (v) => H - B - (H - B - 8) * v / hi;
  x.strokeStyle = '#ddd'; x.beginPath(); x.moveTo(L, py(0)); x.lineTo(W - 8, py(0)); x.moveTo(L, py(hi)); x.lineTo(W - 8, py(hi)); x.stroke();
  x.fillText(fmt(hi), 2, py(hi) + 6); x.fillText('0', 2, py(0));
  x.fillText(fmt(t0) + ' s', L, H - 2); x.fillText(fmt(t1) + ' s', W - 90, H - 2);
  x.strokeStyle = '#f90';
  for (const a of view.actions) {
    if (a.at_s < t0 || a.at_s > t1) continue;
    x.beginPath(); x.moveTo(px(a.at_s), 8); x.lineTo(px(a.at_s), H - B); x.stroke();
  }
  for (const [col, color] of ch.series) {
    x.strokeStyle = color; x.lineWidth = 2; x.beginPath();
    let pen = false;
    for (const r of rows) {
      if (r[col] === null) { pen = false; continue; }
      if (pen) x.lineTo(px(r[COL.t]), py(r[col])); else x.moveTo(px(r[COL.t]), py(r[col]));
      pen = true;
    }
    x.stroke(); x.lineWidth = 1;
  }
}

function drawInstances(view) {
  const c = view.instanceChart, x = c.getContext('2d');
  const W = c.width, H = c.height;
  x.clearRect(0, 0, W, H);
  const idx = view.graph.nodes.map((n, i) => [n, i])
    .filter(([n, i]) => n.kind === 'service' && (view.nodes[i] ? view.nodes[i][4] : n.initial));
  if (!idx.length || !view.nodes.length) return;
  const bw = (W - 10) / idx.length;
  let qmax = 1;
  for (const [, i] of idx) qmax = Math.max(qmax, view.nodes[i] ? view.nodes[i][2] : 0);
  idx.forEach(([n, i], k) => {
    const s = view.nodes[i];
    if (!s) return;
    const u = Math.min(1, s[1]);
    x.fillStyle = s[0] ? utilColor(u) : '#555';
    x.fillRect(5 + k * bw, H - 20 - (H - 40) * (s[0] ? u : 1), Math.max(1, bw - 2), (H - 40) * (s[0] ? u : 1));
    x.fillStyle = '#863';
    x.fillRect(5 + k * bw + bw / 2 - 2, H - 20 - (H - 40) * s[2] / qmax - 2, 4, 4);
  });
  x.fillStyle = '#666'; x.font = '18px sans-serif';
  x.fillText('queue max ' + fmt(qmax), 5, 18);
}

function fmt(v) {
  if (Math.abs(v) >= 1000) return Math.round(v).toString();
  return (Math.round(v * 100) / 100).toString();
}

// ---- frames ---------------------------------------------------------------------------

function onFrame(f) {
  f.variants.forEach((v, k) => {
    const view = state.views[k];
    if (!view) return;
    if (v.reset) view.rows = [];
    if (v.graph && v.graph.nodes.length !== view.graph.nodes.length) {
      // A change of the instance count built more instances: draw them.
      view.graph = v.graph;
      state.run.variants[k].graph = v.graph;
      view.nodes = []; view.shapes = []; view.centers = [];
      layout(view);
    }
    view.rows.push(...v.rows);
    if (v.nodes.length) {
      const deltas = v.nodes.map((s, i) => (view.nodes[i] ? Math.max(0, s[3] - view.nodes[i][3]) : 0));
      view.nodes = v.nodes;
      if (state.started && !f.paused) animate(view, deltas);
    }
    view.actions = v.actions;
    view.now = v.now_s;
    view.done = v.done;
    for (const a of v.actions) if (a.action.kind === 'rate') view.rates[a.action.client] = a.action.rate;
    if (k === 0 && v.actions.length !== state.shownActions) { state.shownActions = v.actions.length; showSettings(); }
    paint(view);
    for (const ch of view.charts) drawChart(view, ch);
    drawInstances(view);
    if (v.result) { view.result.hidden = false; view.result.textContent = 'runs.csv\n' + v.result; }
  });
  const v0 = f.variants[0];
  if (v0) $('clock').textContent = 't = ' + v0.now_s.toFixed(1) + ' s of ' + state.run.duration_s + ' s' + (v0.done ? ' (ended)' : '');
  state.paused = f.paused;
}

async function togglePause() {
  if (!state.run) return;
  const paused = state.started ? !state.paused : false;
  state.started = true;
  const r = await api('POST', '/api/runs/' + state.run.id + '/control', { paused, speed: state.speed });
  state.paused = r.paused;
  $('start').textContent = r.paused ? 'Resume' : 'Pause';
}

async function setSpeed(s) {
  state.speed = s;
  for (const b of document.querySelectorAll('.speeds button')) b.classList.toggle('on', Number(b.dataset.speed) === s);
  if (state.run) await api('POST', '/api/runs/' + state.run.id + '/control', { speed: s });
}

async function act(action) {
  if (!state.run) return false;
  try {
    const r = await api('POST', '/api/runs/' + state.run.id + '/action', action);
    say(action.kind + ' at ' + r.at_s[0].toFixed(3) + ' s');
    return true;
  } catch (e) { say('refused: ' + (e.error || String(e)), true); return false; }
}

function setRate(rate) {
  if (!(rate >= 0)) return;
  $('rate').value = rate;
  return act({ kind: 'rate', client: $('client').value, rate });
}

function sideNames(val) {
  if (!val.startsWith('region:')) return [val];
  const v = state.run.variants[0];
  const r = Number(val.slice(7));
  const names = new Set();
  for (const n of v.graph.nodes) {
    if (n.region !== r) continue;
    if (v.addressable.includes(n.name)) names.add(n.name);
    else if (v.addressable.includes(n.group)) names.add(n.group);
  }
  return [...names];
}

function cut() {
  const a = sideNames($('side-a').value), b = sideNames($('side-b').value);
  return act({ kind: 'cut', a, b });
}

async function exportDemo(variant = 0) {
  const text = await api('GET', '/api/runs/' + state.run.id + '/export?variant=' + variant);
  $('export-box').hidden = false;
  $('exported').textContent = text;
  const a = $('download');
  a.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  a.download = (state.run.name || 'demo') + '-demo.toml';
  state.exported = text;
  return text;
}

requestAnimationFrame(moveDots);
init().catch((e) => showErrors(e));
