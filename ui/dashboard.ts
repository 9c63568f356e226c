// The live dashboard: one snapshot a second over server-sent events (/api/demo/events),
// charts by uPlot, a topology drawn in SVG, tables updated in place (so keyboard focus
// stays where it is), and controls that POST to the token-protected admin API.
import type { DemoHello, DemoSnapshot, EndpointSnapshot, RegionSnapshot } from '../src/admin/dashboard-types.js';
import uPlot from './uplot.js';

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const REGION_COLOURS = ['#E69F00', '#0072B2', '#009E73', '#CC79A7', '#56B4E9'];
// A region's backends, told apart within their region's chart (Okabe-Ito without the yellow, weak on white).
const BACKEND_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const DASHES: number[][] = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2]];
const STATE_LABEL: Record<string, string> = { healthy: 'healthy', slow_start: 'slow start', draining: 'draining', ejected: 'ejected', unhealthy: 'unhealthy' };
const HISTORY = 180;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] => {
  const { dataset, ...rest } = props;
  const e = Object.assign(document.createElement(tag), rest);
  if (dataset) Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
};
const fmt = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined ? '–' : x.toFixed(digits));
const pct = (x: number): string => `${(x * 100).toFixed(x > 0 && x < 0.01 ? 2 : 1)}`;

let token = new URLSearchParams(location.hash.slice(1)).get('token') ?? sessionStorage.getItem('meridian-token') ?? '';
let regionColour = new Map<string, string>();
let last: DemoSnapshot | undefined;
let lastAt = 0;

// ---- controls --------------------------------------------------------------------------

function log(text: string, ok = true, source = 'this page', t = Date.now()): void {
  const li = el('li', { className: ok ? 'ok' : 'fail' }, el('time', {}, new Date(t).toLocaleTimeString()), ' ', el('span', { className: 'source' }, source), ' ', text);
  $('log').prepend(li);
  while ($('log').childElementCount > 100) $('log').lastElementChild?.remove();
}

// Activity comes from the server (every snapshot carries what changed since the one before):
// controls through the admin API from anywhere, health, DNS and policy changes. This page adds
// only its own failed requests, which the server never recorded.
let shownUntil = 0;
function showEvents(s: DemoSnapshot): void {
  if (s.t <= shownUntil) return;
  shownUntil = s.t;
  for (const e of s.events) log(e.text, true, e.source, e.t);
}

async function post(path: string, body: unknown = {}): Promise<boolean> {
  if (!token) {
    log(`${path}: needs the admin token`, false);
    $('token-note').hidden = false;
    return false;
  }
  try {
    const res = await fetch(path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = (await res.json().catch(() => ({}))) as { error?: string };
    if (!res.ok) log(`${path}: ${res.status}: ${answer.error ?? res.statusText}`, false);
    if (res.status === 401 || res.status === 403) $('token-note').hidden = false;
    return res.ok;
  } catch (e) {
    log(`${path}: ${(e as Error).message}`, false);
    return false;
  }
}

function setupControls(): void {
  $('token-note').hidden = token !== '';
  $('token-save').addEventListener('click', () => {
    token = $<HTMLInputElement>('token-input').value.trim();
    sessionStorage.setItem('meridian-token', token);
    $('token-note').hidden = token !== '';
  });
  $('spike').addEventListener('click', () => void post('/api/demo/spike', { factor: 10, seconds: 30 }));
  $('policy-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const policy = $<HTMLSelectElement>('policy').value;
    const region = $<HTMLSelectElement>('policy-region').value;
    void post('/api/demo/policy', region ? { policy, region } : { policy });
  });
}

/** A button whose label and action follow the state; created once, updated in place. */
function toggle(action: () => { label: string; aria: string; path: string; body?: unknown; name: string }): HTMLButtonElement {
  const b = el('button', { type: 'button' });
  const apply = (): void => {
    const a = action();
    b.textContent = a.label;
    b.setAttribute('aria-label', a.aria);
    b.dataset['action'] = a.name;
  };
  b.addEventListener('click', async () => {
    const a = action();
    b.disabled = true;
    await post(a.path, a.body ?? {});
    b.disabled = false;
  });
  (b as HTMLButtonElement & { refresh: () => void }).refresh = apply;
  apply();
  return b;
}
const refresh = (b: HTMLButtonElement): void => (b as HTMLButtonElement & { refresh?: () => void }).refresh?.();

// ---- region cards and endpoint tables (built on the first snapshot, then updated) --------

interface Row {
  readonly cells: Record<string, HTMLElement>;
  readonly buttons: HTMLButtonElement[];
  readonly tr: HTMLTableRowElement;
}
const rows = new Map<string, Row>();
const cards = new Map<string, { fields: Record<string, HTMLElement>; button: HTMLButtonElement }>();
const find = (region: string, id: string): EndpointSnapshot | undefined => last?.regions.find((r) => r.name === region)?.endpoints.find((e) => e.id === id);
const findRegion = (name: string): RegionSnapshot | undefined => last?.regions.find((r) => r.name === name);

function build(s: DemoSnapshot): void {
  regionColour = new Map(s.regions.map((r, i) => [r.name, REGION_COLOURS[i % REGION_COLOURS.length] as string]));
  const regionSelect = $<HTMLSelectElement>('policy-region');
  for (const r of s.regions) regionSelect.append(el('option', { value: r.name }, r.name));

  const cardBox = $('regions');
  for (const r of s.regions) {
    const fields: Record<string, HTMLElement> = {};
    const dd = (key: string, label: string, unit: string): HTMLElement[] => {
      fields[key] = el('dd', {}, '–');
      return [el('dt', {}, label, unit ? el('span', { className: 'unit' }, ` (${unit})`) : ''), fields[key]];
    };
    const button = toggle(() => {
      const up = findRegion(r.name)?.up ?? true;
      return up
        ? { label: 'Take region down', aria: `Take region ${r.name} down`, path: `/api/demo/regions/${r.name}/down`, name: 'region-down' }
        : { label: 'Bring region up', aria: `Bring region ${r.name} up`, path: `/api/demo/regions/${r.name}/up`, name: 'region-up' };
    });
    fields['status'] = el('span', { className: 'pill' });
    const swatch = el('span', { className: 'swatch' });
    swatch.style.background = regionColour.get(r.name) ?? '#000';
    const card = el(
      'article',
      { className: 'card', dataset: { region: r.name } },
      el('h3', {}, swatch, ` ${r.name} `, fields['status']),
      el('p', { className: 'meta' }, `${r.node} · listener ${r.address}:${r.listenerPort} · admin :${r.adminPort}`),
      el('dl', {}, ...dd('rps', 'requests', 'req/s'), ...dd('p50', 'p50', 'ms'), ...dd('p99', 'p99', 'ms'), ...dd('err', 'errors', '%'), ...dd('retries', 'retries', '/s'), ...dd('shed', 'shed 503', '/s'), ...dd('limited', 'limited 429', '/s'), ...dd('failover', 'failover out / in', 'req/s'), ...dd('dns', 'in DNS answers', ''), ...dd('policy', 'policy', ''), ...dd('limit', 'concurrency limit / queued', ''), ...dd('adaptive', 'adaptive policy', '')),
      button,
    );
    cards.set(r.name, { fields, button });
    cardBox.append(card);
  }

  const tables = $('tables');
  for (const r of s.regions) {
    const head = ['endpoint', 'state', 'weight', 'in flight', 'EWMA (ms)', 'req/s', 'p50 (ms)', 'p99 (ms)', 'errors (%)', 'actions'];
    const tbody = el('tbody');
    tbodies.set(r.name, tbody);
    for (const e of r.endpoints) tbody.append(endpointRow(r, e));
    const table = el('table', { dataset: { region: r.name } }, el('caption', {}, `${r.name}: cluster ${r.cluster}`), el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col', className: h === 'actions' ? 'actions' : '' }, h)))), tbody);
    tables.append(el('div', { className: 'table-wrap' }, table));
  }
}

/** A region's table body, by region: rows are added when discovery brings an endpoint. */
const tbodies = new Map<string, HTMLElement>();

/** One endpoint's row, with its controls; its numbers are filled by update(). */
function endpointRow(r: RegionSnapshot, e: EndpointSnapshot): HTMLTableRowElement {
  const cells: Record<string, HTMLElement> = {};
  const td = (key: string): HTMLElement => (cells[key] = el('td', { className: key === 'id' || key === 'state' ? '' : 'num' }));
  const buttons: HTMLButtonElement[] = [];
  const drain = toggle(() => {
    const now = find(r.name, e.id);
    const draining = now?.status === 'draining';
    return { label: draining ? 'Undrain' : 'Drain', aria: `${draining ? 'Undrain' : 'Drain'} ${e.id}`, name: draining ? 'undrain' : 'drain', path: `/api/clusters/${encodeURIComponent(r.cluster)}/endpoints/${encodeURIComponent(e.id)}/drain`, body: { draining: !draining } };
  });
  // Kill and slow act on the demo's own backend processes; an endpoint found elsewhere has none.
  if (!e.remote && e.alive !== undefined) {
    buttons.push(
      toggle(() => {
        const alive = find(r.name, e.id)?.alive ?? true;
        return alive
          ? { label: 'Kill', aria: `Kill ${e.id}`, name: 'kill', path: `/api/demo/backends/${e.id}/kill` }
          : { label: 'Revive', aria: `Revive ${e.id}`, name: 'revive', path: `/api/demo/backends/${e.id}/revive` };
      }),
      toggle(() => {
        const slowed = find(r.name, e.id)?.slowed ?? false;
        return slowed
          ? { label: 'Unslow', aria: `Restore the latency of ${e.id}`, name: 'unslow', path: `/api/demo/backends/${e.id}/slow`, body: { latency: null } }
          : { label: 'Slow', aria: `Slow ${e.id} (250 ms)`, name: 'slow', path: `/api/demo/backends/${e.id}/slow`, body: { latency: 'exp:250ms' } };
      }),
    );
  }
  buttons.push(drain);
  const actions = el('td', { className: 'actions' }, el('div', { className: 'buttons' }, ...buttons));
  const tr = el('tr', { dataset: { endpoint: e.id } }, td('id'), td('state'), td('weight'), td('active'), td('ewma'), td('rps'), td('p50'), td('p99'), td('err'), actions);
  rows.set(`${r.name}/${e.id}`, { cells, buttons, tr });
  return tr;
}

/** The endpoint's name, and where it came from when a discovery source found it (a `dns` or `file` badge). */
function endpointName(cell: HTMLElement, e: EndpointSnapshot): void {
  const name = e.remote ? `${e.id} (failover)` : e.id;
  if (e.source === undefined) {
    if (cell.textContent !== name) cell.replaceChildren(name);
    return;
  }
  if (cell.firstElementChild?.getAttribute('data-source') === e.source) return;
  const title = e.source === 'dns' ? 'found by the cluster\'s DNS discovery' : 'listed in the cluster\'s watched endpoint file';
  cell.replaceChildren(name, ' ', el('span', { className: 'badge', title, dataset: { source: e.source } }, e.source));
}

/** prequal's probes and pool, or predictive's model against its fallback; a dash for the other policies. */
function adaptiveText(r: DemoSnapshot['regions'][number]): string {
  const a = r.adaptive;
  if (a === undefined) return '–';
  if (a.poolSize !== undefined) return `probes ${fmt(a.probeRepliesPerS ?? 0)}/s · pool ${a.poolSize}`;
  const mode = a.fallback ? 'fallback: peak EWMA' : 'model';
  return `${mode} · error ${fmt(a.maeMs ?? 0)} ms (peak EWMA ${fmt(a.baselineMaeMs ?? 0)}) · drift ${a.driftEvents ?? 0}`;
}

function update(s: DemoSnapshot): void {
  for (const r of s.regions) {
    const c = cards.get(r.name);
    if (c) {
      const f = c.fields;
      (f['status'] as HTMLElement).textContent = r.up ? (r.inPanic ? 'panic' : 'up') : 'down';
      (f['status'] as HTMLElement).dataset['state'] = r.up ? (r.inPanic ? 'panic' : 'up') : 'down';
      (f['rps'] as HTMLElement).textContent = fmt(r.rps);
      (f['p50'] as HTMLElement).textContent = fmt(r.p50Ms);
      (f['p99'] as HTMLElement).textContent = fmt(r.p99Ms);
      (f['err'] as HTMLElement).textContent = pct(r.errorRate);
      (f['retries'] as HTMLElement).textContent = fmt(r.retries);
      (f['shed'] as HTMLElement).textContent = fmt(r.shed);
      (f['limited'] as HTMLElement).textContent = fmt(r.rateLimited);
      (f['failover'] as HTMLElement).textContent = `${fmt(r.failoverOutRps)} / ${fmt(r.peerInRps)}`;
      (f['policy'] as HTMLElement).textContent = r.policy;
      (f['limit'] as HTMLElement).textContent = r.concurrency === undefined ? 'off' : `${r.concurrency.limit} / ${r.concurrency.queued}`;
      (f['adaptive'] as HTMLElement).textContent = adaptiveText(r);
      (f['dns'] as HTMLElement).textContent = s.dns === null ? 'no DNS' : r.dnsUp ? 'yes' : 'no (held out)';
      refresh(c.button);
    }
    // Discovery adds and removes endpoints while the page is open: a row per endpoint now, the others hidden.
    const now = new Set(r.endpoints.map((e) => `${r.name}/${e.id}`));
    for (const [key, row] of rows) if (key.startsWith(`${r.name}/`)) row.tr.hidden = !now.has(key);
    for (const e of r.endpoints) {
      if (!rows.has(`${r.name}/${e.id}`)) tbodies.get(r.name)?.append(endpointRow(r, e));
      const row = rows.get(`${r.name}/${e.id}`);
      if (!row) continue;
      const { cells } = row;
      endpointName(cells['id'] as HTMLElement, e);
      const state = cells['state'] as HTMLElement;
      state.replaceChildren(el('span', { className: 'state', dataset: { status: e.status } }, STATE_LABEL[e.status] ?? e.status), e.alive === false ? ' (killed)' : '', e.slowed ? ' (slowed)' : '');
      state.dataset['status'] = e.status;
      (cells['weight'] as HTMLElement).textContent = `${fmt(e.effectiveWeight, e.effectiveWeight % 1 === 0 ? 0 : 2)} / ${e.weight}`;
      (cells['active'] as HTMLElement).textContent = String(e.active);
      (cells['ewma'] as HTMLElement).textContent = fmt(e.latencyEwmaMs);
      (cells['rps'] as HTMLElement).textContent = fmt(e.rps);
      (cells['p50'] as HTMLElement).textContent = fmt(e.p50Ms);
      (cells['p99'] as HTMLElement).textContent = fmt(e.p99Ms);
      (cells['err'] as HTMLElement).textContent = pct(e.errorRate);
      for (const b of row.buttons) refresh(b);
    }
  }
  const l = s.load;
  const spike = l.spikeUntil === null ? '' : ` · spike: ${Math.max(0, Math.round((l.spikeUntil - s.t) / 1000))} s left`;
  const dns = s.dns === null ? '' : ` · DNS: ${s.dns.name} on 127.0.0.1:${s.dns.port}`;
  $('load').textContent = (l.running ? `load: ${fmt(l.rate, 0)} req/s target (base ${fmt(l.baseRate, 0)})${spike}${l.dropped > 0 ? ` · ${fmt(l.dropped)} req/s dropped by the client cap` : ''}` : 'load: none (--no-load)') + dns;
  $<HTMLButtonElement>('spike').disabled = !l.running;
  topology(s);
}

// ---- topology (SVG) ----------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
const width = (rps: number): number => Math.min(14, 1 + Math.sqrt(rps));

function topology(s: DemoSnapshot): void {
  const W = 1000;
  const n = s.regions.length;
  const colW = W / n;
  const maxBackends = Math.max(...s.regions.map((r) => r.endpoints.filter((e) => !e.remote).length));
  const perRow = Math.min(maxBackends, Math.max(2, Math.floor(colW / 60)));
  const backendRows = Math.ceil(maxBackends / perRow);
  // The last row of backend boxes is centred at 290 + (rows - 1) * 56 and 36 high: room for it and a margin.
  const H = 262 + backendRows * 56;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': topologyText(s) });
  root.append(svg('title', {}, topologyText(s)));
  const node = new Map<string, { x: number; y: number }>();
  s.regions.forEach((r, i) => node.set(r.name, { x: colW * i + colW / 2, y: 150 }));

  // Clients, above their region.
  s.regions.forEach((r, i) => {
    const geos = s.geos.filter((g) => g.region === r.name);
    geos.forEach((g, k) => {
      // Spread over the whole column (half a slot at each edge), so neighbours' names get the most room.
      const x = colW * i + (colW * (k + 0.5)) / geos.length;
      const to = node.get(r.name) as { x: number; y: number };
      // Names wider than their slot (five regions, or many clients over one region while others are down): two staggered rows.
      const dy = geos.length * 95 > colW && k % 2 === 1 ? 36 : 0;
      if (g.rps > 0) root.append(svg('line', { x1: x, y1: 48 + dy, x2: to.x, y2: to.y - 22, stroke: '#555', 'stroke-width': width(g.rps), 'stroke-opacity': 0.55 }));
      root.append(svg('text', { x, y: 20 + dy, 'text-anchor': 'middle', class: 'geo' }, g.name));
      root.append(svg('text', { x, y: 38 + dy, 'text-anchor': 'middle', class: 'small' }, `${fmt(g.rps, 0)} req/s`));
    });
  });

  // Failover between regions: arcs below the nodes.
  for (const f of s.flows.filter((x) => x.kind === 'failover')) {
    const a = node.get(f.from);
    const b = node.get(f.to);
    if (!a || !b) continue;
    const mid = (a.x + b.x) / 2;
    const dip = 60 + Math.abs(a.x - b.x) / 8;
    root.append(svg('path', { d: `M ${a.x} ${a.y + 22} Q ${mid} ${a.y + dip} ${b.x} ${b.y + 22}`, fill: 'none', stroke: regionColour.get(f.from) ?? '#000', 'stroke-width': width(f.rps), 'stroke-dasharray': '8 5', 'marker-end': 'url(#arrow)' }));
    root.append(svg('text', { x: mid, y: a.y + dip / 2 + 22, 'text-anchor': 'middle', class: 'small flow' }, `${f.from} → ${f.to}: ${fmt(f.rps, 0)} req/s`));
  }

  s.regions.forEach((r, i) => {
    const c = node.get(r.name) as { x: number; y: number };
    const colour = regionColour.get(r.name) ?? '#000';
    const local = r.endpoints.filter((e) => !e.remote);
    // Lines first, boxes over them: a second row's line passes behind the first row's boxes.
    const boxes: SVGGElement[] = [];
    local.forEach((e, k) => {
      const row = Math.floor(k / perRow);
      const inRow = Math.min(perRow, local.length - row * perRow);
      const x = colW * i + (colW * ((k % perRow) + 0.5)) / inRow;
      const y = 290 + row * 56;
      if (e.rps > 0) root.append(svg('line', { x1: c.x, y1: c.y + 22, x2: x, y2: y - 18, stroke: colour, 'stroke-width': width(e.rps), 'stroke-opacity': 0.8 }));
      const g = svg('g', { class: 'backend', 'data-status': e.alive === false ? 'down' : e.status });
      g.append(svg('rect', { x: x - 27, y: y - 18, width: 54, height: 36, rx: 4 }));
      g.append(svg('text', { x, y: y - 3, 'text-anchor': 'middle', class: 'small' }, e.id.slice(e.id.lastIndexOf('-') + 1) === e.id ? e.id : `#${e.id.slice(e.id.lastIndexOf('-') + 1)}`));
      g.append(svg('text', { x, y: y + 11, 'text-anchor': 'middle', class: 'tiny' }, e.alive === false ? 'down' : (STATE_LABEL[e.status] ?? e.status)));
      boxes.push(g);
    });
    root.append(...boxes);
    const box = svg('g', { class: 'node' });
    box.append(svg('rect', { x: c.x - 70, y: c.y - 22, width: 140, height: 44, rx: 8, fill: '#fff', stroke: colour, 'stroke-width': 3 }));
    box.append(svg('text', { x: c.x, y: c.y - 4, 'text-anchor': 'middle', class: 'region' }, r.name));
    box.append(svg('text', { x: c.x, y: c.y + 13, 'text-anchor': 'middle', class: 'small' }, `${fmt(r.rps, 0)} req/s · ${r.up ? 'up' : 'DOWN'}`));
    root.append(box);
  });
  const defs = svg('defs', {});
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#333' }));
  defs.append(marker);
  root.prepend(defs);
  $('topology').replaceChildren(root);
  topologyHint();
}

/** Narrower than the drawing, the topology scrolls sideways: say so, and how many regions are out of sight. */
function topologyHint(): void {
  const box = $('topology');
  const hint = $('topology-hint');
  const n = last?.regions.length ?? 0;
  const hidden = box.scrollWidth - box.clientWidth > 1;
  hint.hidden = !hidden;
  if (hidden) hint.textContent = `Scroll the drawing sideways → to see all ${n} regions`;
}

/** The topology in words, for screen readers. */
function topologyText(s: DemoSnapshot): string {
  const parts = s.regions.map((r) => `${r.name}: ${fmt(r.rps, 0)} req/s, ${r.endpoints.filter((e) => !e.remote && e.status === 'healthy').length} of ${r.endpoints.filter((e) => !e.remote).length} backends healthy`);
  const failover = s.flows.filter((f) => f.kind === 'failover').map((f) => `${f.from} fails over to ${f.to} at ${fmt(f.rps, 0)} req/s`);
  return [...parts, ...failover].join('; ');
}

// ---- charts (uPlot) ---------------------------------------------------------------------

interface Chart {
  readonly plot: uPlot;
  readonly data: number[][];
  readonly values: (s: DemoSnapshot) => (number | null)[];
}
const charts: Chart[] = [];

/** The last non-null value of series `i` (what the legend shows when the cursor is not on the chart). */
function latest(u: uPlot, i: number): number | null {
  const col = u.data[i] as (number | null | undefined)[] | undefined;
  for (let k = (col?.length ?? 0) - 1; k >= 0; k--) {
    const v = col?.[k];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}
const clock = (t: number | null): string => (t === null ? '–' : new Date(t * 1000).toLocaleTimeString([], { hour12: false }));
// A solid line's swatch is filled, a dashed or dotted one's is hollow with that border, so p50 and p99 (one colour) differ.
const legendDash = (u: uPlot, i: number): string => {
  const d = u.series[i]?.dash;
  return d === undefined || d.length === 0 ? 'solid' : (d[0] ?? 0) <= 2 ? 'dotted' : 'dashed';
};
const legendFill = (u: uPlot, i: number): string => {
  const stroke = u.series[i]?.stroke;
  return legendDash(u, i) !== 'solid' ? 'transparent' : String(typeof stroke === 'function' ? stroke(u, i) : stroke);
};

function chart(box: HTMLElement, unit: string, series: uPlot.Series[], values: (s: DemoSnapshot) => (number | null)[], history: readonly DemoSnapshot[], height = 200): void {
  const data: (number | null)[][] = [history.map((h) => h.t / 1000), ...series.map((_, i) => history.map((h) => values(h)[i] ?? null))];
  const opts: uPlot.Options = {
    width: Math.max(260, box.clientWidth),
    height,
    series: [{ label: 'time', value: (u, v, _i, idx) => (idx === null ? 'latest' : clock(v ?? latest(u, 0))) }, ...series.map((x) => ({ ...x, value: (u: uPlot, v: number | null, i: number, idx: number | null) => fmt(idx === null ? latest(u, i) : v, 1) }))],
    axes: [
      // One row of hh:mm:ss, far enough apart not to touch at 420 px (uPlot's default stacks a date row under them).
      { label: 'time (local clock)', labelSize: 20, size: 40, space: 90, values: (_u, ticks) => ticks.map(clock) },
      { label: unit, labelSize: 18, size: 56 },
    ],
    scales: { y: { range: (_u, _min, max) => [0, Math.max(max * 1.1, unit === 'error rate (%)' ? 1 : 5)] } },
    // Not hovered, the legend shows each series' latest value (uPlot's default is `--`, which reads as missing data).
    legend: { live: true, markers: { width: 2, dash: legendDash, fill: legendFill } },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(opts, data as uPlot.AlignedData, box);
  charts.push({ plot, data: data as number[][], values });
}

function setupCharts(s: DemoSnapshot, history: readonly DemoSnapshot[]): void {
  const colour = (name: string): string => regionColour.get(name) ?? '#000';
  const regions = s.regions.map((r) => r.name);
  const rIdx = (snap: DemoSnapshot, name: string): RegionSnapshot | undefined => snap.regions.find((r) => r.name === name);
  chart($('chart-rps'), 'requests / s', regions.map((n) => ({ label: n, stroke: colour(n), width: 2 })), (x) => regions.map((n) => rIdx(x, n)?.rps ?? null), history);
  chart(
    $('chart-lat'),
    'latency (ms)',
    regions.flatMap((n) => [
      { label: `${n} p99`, stroke: colour(n), width: 2 },
      { label: `${n} p50`, stroke: colour(n), width: 1.5, dash: [6, 4] },
    ]),
    (x) => regions.flatMap((n) => [rIdx(x, n)?.p99Ms ?? null, rIdx(x, n)?.p50Ms ?? null]),
    history,
  );
  chart($('chart-err'), 'error rate (%)', regions.map((n) => ({ label: n, stroke: colour(n), width: 2 })), (x) => regions.map((n) => { const r = rIdx(x, n); return r ? r.errorRate * 100 : null; }), history);
  const sum = (x: DemoSnapshot, f: (r: RegionSnapshot) => number): number => x.regions.reduce((a, r) => a + f(r), 0);
  chart(
    $('chart-shed'),
    'requests / s',
    [
      { label: 'retries', stroke: '#0072B2', width: 2 },
      { label: 'shed (503)', stroke: '#D55E00', width: 2, dash: [8, 4] },
      { label: 'rate-limited (429)', stroke: '#CC79A7', width: 2, dash: [2, 3] },
    ],
    (x) => [sum(x, (r) => r.retries), sum(x, (r) => r.shed), sum(x, (r) => r.rateLimited)],
    history,
  );
  // Small multiples, one figure per region: every backend of the demo in one chart was 12
  // (up to 80) lines in a region's colour each. A region's backends are what a kill or a slow
  // backend moves against each other, so they share a chart, in colours of their own;
  // a top-N view would drop a killed backend out of the chart just when it matters.
  const box = $('backend-charts');
  for (const r of s.regions) {
    const ids = r.endpoints.filter((e) => !e.remote).map((e) => e.id);
    const bSeries = ids.map((id, k) => ({ label: id, stroke: BACKEND_COLOURS[k % BACKEND_COLOURS.length] as string, width: 1.5, dash: DASHES[Math.floor(k / BACKEND_COLOURS.length) % DASHES.length] as number[] }));
    const bFind = (x: DemoSnapshot, id: string): EndpointSnapshot | undefined => rIdx(x, r.name)?.endpoints.find((e) => e.id === id);
    const rpsBox = el('div', { className: 'chart-rps-backends' });
    const latBox = el('div', { className: 'chart-lat-backends' });
    const swatch = el('span', { className: 'swatch' });
    swatch.style.background = colour(r.name);
    box.append(el('figure', { dataset: { region: r.name } }, el('figcaption', {}, swatch, ` ${r.name}: requests per second, then upstream latency p99, by backend`), rpsBox, latBox));
    chart(rpsBox, 'requests / s', bSeries, (x) => ids.map((id) => bFind(x, id)?.rps ?? null), history, 160);
    chart(latBox, 'p99 (ms)', bSeries.map((b) => ({ ...b })), (x) => ids.map((id) => bFind(x, id)?.p99Ms ?? null), history, 160);
  }

  let pending = 0;
  addEventListener('resize', () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => {
      topologyHint();
      for (const c of charts) c.plot.setSize({ width: Math.max(260, (c.plot.root.parentElement as HTMLElement).clientWidth), height: c.plot.height });
    });
  });
}

function pushCharts(s: DemoSnapshot): void {
  for (const c of charts) {
    const v = c.values(s);
    (c.data[0] as number[]).push(s.t / 1000);
    v.forEach((x, i) => (c.data[i + 1] as (number | null)[]).push(x));
    if ((c.data[0] as number[]).length > HISTORY) for (const col of c.data) col.shift();
    c.plot.setData(c.data as uPlot.AlignedData);
  }
}

// ---- the stream --------------------------------------------------------------------------

function connect(): void {
  const conn = $('conn');
  const es = new EventSource('/api/demo/events');
  let built = false;
  es.addEventListener('hello', (ev) => {
    const hello = JSON.parse((ev as MessageEvent<string>).data) as DemoHello;
    const select = $<HTMLSelectElement>('policy');
    if (select.options.length === 0) for (const p of hello.policies) select.append(el('option', { value: p }, p));
    built = charts.length > 0;
    pendingHistory = hello.history;
    for (const h of hello.history) showEvents(h);
  });
  es.addEventListener('snapshot', (ev) => {
    const s = JSON.parse((ev as MessageEvent<string>).data) as DemoSnapshot;
    if (!built) {
      build(s);
      setupCharts(s, [...pendingHistory.filter((h) => h.t < s.t), s]);
      const p = s.regions[0]?.policy;
      if (p) $<HTMLSelectElement>('policy').value = p;
      built = true;
    } else {
      pushCharts(s);
    }
    showEvents(s);
    last = s;
    lastAt = Date.now();
    update(s);
    conn.textContent = 'live';
    conn.dataset['state'] = 'live';
  });
  es.addEventListener('error', () => {
    conn.textContent = 'disconnected: retrying…';
    conn.dataset['state'] = 'down';
  });
}
let pendingHistory: readonly DemoSnapshot[] = [];

setInterval(() => {
  if (lastAt && Date.now() - lastAt > 3000) {
    $('conn').textContent = `stale: last update ${Math.round((Date.now() - lastAt) / 1000)} s ago`;
    $('conn').dataset['state'] = 'down';
  }
}, 1000);

setupControls();
connect();
