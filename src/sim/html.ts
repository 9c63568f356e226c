/**
 * The HTML report: one self-contained file (inline SVG and CSS, no script, no CDN).
 * Plots: latency percentiles over time per policy, errors and shed load over time,
 * per-server load (a heat map per policy), per-region traffic; scenario events are
 * marked on every time axis. Colours: the Okabe-Ito palette (colour-blind safe) for
 * lines, viridis for heat maps.
 */
import { HEAT_CLIP_QUANTILE, heatBin, heatClip } from './heat-scale.js';
import type { SimReport } from './index.js';
import { type EventLabel, layoutLabels, type PlacedLabel } from './label-layout.js';

const OKABE_ITO = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];
const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];

interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dash?: string;
}

/**
 * Charts are drawn in a 960-unit viewBox and scaled to the page's width by CSS (see STYLE
 * below), so the event-label layout computed here in viewBox units holds at any width.
 */
const W = 960;
const H = 300;
const M = { l: 64, r: 16, b: 44 };
const ROW = 14;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** About five round ticks over [0, max]. */
function ticks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = 0; v <= max * 1.0001 + step; v += step) {
    out.push(+v.toPrecision(12));
    if (v >= max) break;
  }
  return out;
}

/** Events at the same moment share one mark and one label ("kill us-east/0 +9 more"). */
function eventLabels(events: SimReport['events'], x: (t: number) => number): EventLabel[] {
  const byTime = new Map<number, string[]>();
  for (const e of events) byTime.set(e.t_s, [...(byTime.get(e.t_s) ?? []), e.label]);
  return [...byTime].map(([t, labels]) => ({ x: x(t), text: labels.length === 1 ? (labels[0] as string) : `${labels[0] as string} +${labels.length - 1} more` }));
}

/** Rows the event band above a chart needs. */
function bandRows(placed: readonly PlacedLabel[]): number {
  return placed.reduce((n, p) => Math.max(n, p.row + 1), 0);
}

/**
 * Marks run from their label down through the plot. On a heat map a dashed grey line
 * vanishes into mid-tone cells, so there each mark is a white dash over a dark line,
 * which reads against any viridis colour; labels are dark text on a white backing.
 */
function eventMarks(placed: readonly PlacedLabel[], bandTop: number, bottom: number, onHeat: boolean): string {
  const lines = placed
    .map((p) => {
      const y1 = bandTop + p.row * ROW + 2;
      return onHeat
        ? `<line x1="${p.x}" x2="${p.x}" y1="${y1}" y2="${bottom}" stroke="#111" stroke-width="3" stroke-opacity="0.7"/><line x1="${p.x}" x2="${p.x}" y1="${y1}" y2="${bottom}" stroke="#fff" stroke-width="1.2" stroke-dasharray="4 3"/>`
        : `<line x1="${p.x}" x2="${p.x}" y1="${y1}" y2="${bottom}" stroke="#444" stroke-dasharray="4 3"/>`;
    })
    .join('');
  const labels = placed
    .map((p) => {
      const y = bandTop + p.row * ROW;
      return `<rect x="${p.left.toFixed(1)}" y="${y}" width="${(p.right - p.left).toFixed(1)}" height="${ROW - 1}" fill="#fff"/><text class="ev" x="${p.anchor === 'start' ? p.left + 3 : p.right - 3}" y="${y + ROW - 4}"${p.anchor === 'end' ? ' text-anchor="end"' : ''}>${esc(p.text)}</text>`;
    })
    .join('');
  return lines + labels;
}

function svgOpen(title: string, h: number): string {
  return `<figure><figcaption>${esc(title)}</figcaption><div class="chart"><svg viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(title)}">`;
}

function lineChart(title: string, yLabel: string, series: readonly Series[], r: SimReport): string {
  const xMax = r.duration_s;
  const x = (t: number): number => +(M.l + (t / xMax) * (W - M.l - M.r)).toFixed(1);
  const placed = layoutLabels(eventLabels(r.events, x), W - M.r);
  const legendRows = Math.ceil(series.length / 4);
  const bandTop = 8 + legendRows * 16;
  const top = bandTop + bandRows(placed) * ROW + 8;
  const h = H + top - 44;
  const yMax = Math.max(1e-9, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const yt = ticks(yMax);
  const yTop = yt[yt.length - 1] as number;
  const y = (v: number): number => +(h - M.b - (v / yTop) * (h - top - M.b)).toFixed(1);
  const grid = yt.map((v) => `<line x1="${M.l}" x2="${W - M.r}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/><text x="${M.l - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`).join('');
  const xt = ticks(xMax).filter((t) => t <= xMax).map((t) => `<text x="${x(t)}" y="${h - M.b + 16}" text-anchor="middle">${fmt(t)}</text>`).join('');
  const lines = series
    .map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${s.points.map((p) => `${x(p[0])},${y(p[1])}`).join(' ')}"/>`)
    .join('');
  // The swatch is a stroke drawn as the series is, dash included, so two series that differ
  // only in dash still have swatches that tell them apart.
  const legend = series
    .map((s, i) => `<g transform="translate(${M.l + 8 + (i % 4) * 220},${12 + Math.floor(i / 4) * 16})"><line x2="24" y1="-4" y2="-4" stroke="${s.color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/><text x="30">${esc(s.name)}</text></g>`)
    .join('');
  const warm = r.warmup_s > 0 ? `<rect x="${M.l}" y="${top}" width="${x(r.warmup_s) - M.l}" height="${h - top - M.b}" fill="#f2f2f2"/><text x="${M.l + 4}" y="${h - M.b - 4}" class="small" fill="#666">warm-up</text>` : '';
  return `${svgOpen(title, h)}
${warm}${grid}${xt}
<line x1="${M.l}" x2="${M.l}" y1="${top}" y2="${h - M.b}" stroke="#333"/><line x1="${M.l}" x2="${W - M.r}" y1="${h - M.b}" y2="${h - M.b}" stroke="#333"/>
<text x="${(M.l + W - M.r) / 2}" y="${h - 8}" text-anchor="middle">virtual time (s)</text>
<text transform="translate(16,${(top + h - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>
${lines}${eventMarks(placed, bandTop, h - M.b, false)}${legend}</svg></div></figure>`;
}

function heatMap(title: string, r: SimReport, policyIndex: number): string {
  const res = r.results[policyIndex];
  if (!res) return '';
  const ids = res.servers.map((s) => s.id);
  const buckets = res.timeseries;
  const rowH = Math.max(3, Math.min(16, Math.floor(360 / Math.max(1, ids.length))));
  const left = Math.max(M.l, 12 + Math.max(0, ...ids.map((id) => id.length)) * 7);
  const legendW = 150;
  const plotW = W - left - M.r - legendW;
  const x = (t: number): number => +(left + (t / r.duration_s) * plotW).toFixed(1);
  const placed = layoutLabels(eventLabels(r.events, x), W - M.r);
  const bandTop = 8;
  const top = Math.max(40, bandTop + bandRows(placed) * ROW + 8);
  const plotH = ids.length * rowH;
  // Tall enough for the colour bar even with a handful of servers.
  const h = top + Math.max(plotH, VIRIDIS.length * 14 + 8) + M.b;
  const axisY = top + plotH;
  const bw = plotW / Math.max(1, buckets.length);
  const rate = buckets.map((b, i) => {
    const next = buckets[i + 1];
    const width = (next ? next.t_s : r.duration_s) - b.t_s;
    return ids.map((_, j) => (width > 0 ? (b.servers[j] ?? 0) / width : 0));
  });
  const all = rate.flat();
  const max = Math.max(0, ...all);
  const clip = heatClip(all);
  const cells = rate
    .map((col, i) =>
      col.map((v, j) => `<rect x="${(left + i * bw).toFixed(1)}" y="${top + j * rowH}" width="${(bw + 0.5).toFixed(1)}" height="${rowH}" fill="${VIRIDIS[heatBin(v, clip, VIRIDIS.length)] as string}"/>`).join(''),
    )
    .join('');
  const labelEvery = Math.max(1, Math.ceil(12 / rowH));
  const yl = ids.map((id, j) => (j % labelEvery === 0 ? `<text x="${left - 4}" y="${top + j * rowH + rowH - 2}" text-anchor="end" font-size="${Math.min(12, rowH + 2)}">${esc(id)}</text>` : '')).join('');
  const xt = ticks(r.duration_s).filter((t) => t <= r.duration_s).map((t) => `<text x="${x(t)}" y="${axisY + 16}" text-anchor="middle">${fmt(t)}</text>`).join('');
  const lx = W - M.r - legendW + 24;
  const legend = VIRIDIS.map((c, i) => `<rect x="${lx}" y="${top + (VIRIDIS.length - 1 - i) * 14}" width="16" height="14" fill="${c}"/>`).join('');
  // The top label says the scale is clipped and where, so a saturated cell is not read as "the maximum".
  const clipped = max > clip;
  const legendText = `<text x="${lx + 22}" y="${top + 11}">${clipped ? '≥ ' : ''}${fmt(clip)} req/s</text>${
    clipped ? `<text x="${lx + 22}" y="${top + 25}" class="small">(p${Math.round(HEAT_CLIP_QUANTILE * 100)} of cells;</text><text x="${lx + 22}" y="${top + 38}" class="small">max ${fmt(max)})</text>` : ''
  }<text x="${lx + 22}" y="${top + VIRIDIS.length * 14 - 3}">0 req/s</text>`;
  return `${svgOpen(title, h)}
${cells}${yl}${xt}${eventMarks(placed, bandTop, axisY, true)}
<text x="${left + plotW / 2}" y="${axisY + 36}" text-anchor="middle">virtual time (s)</text>
${legend}${legendText}
</svg></div></figure>`;
}

/**
 * A darker shade of a policy's colour, for its shed line: the hue still says which policy,
 * and the shade (with the dash) tells shed from failed even in the legend swatch.
 */
function shade(hex: string): string {
  const n = parseInt(hex.slice(1), 16);
  const c = [n >> 16, (n >> 8) & 255, n & 255].map((v) => Math.round(v * 0.55));
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

function perSecond(r: SimReport, pick: (b: SimReport['results'][number]['timeseries'][number]) => number, ts: SimReport['results'][number]['timeseries']): [number, number][] {
  return ts.map((b, i) => {
    const next = ts[i + 1];
    const width = (next ? next.t_s : r.duration_s) - b.t_s;
    return [b.t_s + width / 2, width > 0 ? pick(b) / width : 0];
  });
}

export function renderHtml(r: SimReport): string {
  const color = (i: number): string => OKABE_ITO[i % OKABE_ITO.length] as string;
  const mid = (ts: SimReport['results'][number]['timeseries'], i: number): number => {
    const b = ts[i] as (typeof ts)[number];
    const next = ts[i + 1];
    return (b.t_s + (next ? next.t_s : r.duration_s)) / 2;
  };
  const pct = (key: 'p50' | 'p90' | 'p99' | 'mean'): Series[] =>
    r.results.map((res, i) => ({
      name: res.policy,
      color: color(i),
      points: res.timeseries.filter((b) => b.completed > 0).map((b) => [mid(res.timeseries, res.timeseries.indexOf(b)), b.latency_ms[key]] as const),
    }));
  const errors: Series[] = r.results.flatMap((res, i) => [
    { name: `${res.policy} failed`, color: color(i), points: perSecond(r, (b) => b.failed, res.timeseries) },
    { name: `${res.policy} shed`, color: shade(color(i)), dash: '6 3', points: perSecond(r, (b) => b.shed, res.timeseries) },
  ]);
  const regionCharts = r.results
    .map((res) =>
      lineChart(
        `Traffic per region, ${res.policy} (requests arriving per second)`,
        'requests / s',
        r.regions.map((name, j) => ({ name, color: color(j), points: perSecond(r, (b) => b.regions[j] ?? 0, res.timeseries) })),
        r,
      ),
    )
    .join('\n');
  const summary = `<table><thead><tr><th>policy</th><th>requests</th><th>completed</th><th>failed</th><th>shed</th><th>mean ms</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max util</th><th>imbalance</th></tr></thead><tbody>${r.results
    .map(
      (x) =>
        `<tr><td>${x.policy}</td><td>${x.requests}</td><td>${x.completed}</td><td>${x.failed}</td><td>${x.shed}</td><td>${x.latency_ms.mean}</td><td>${x.latency_ms.p50}</td><td>${x.latency_ms.p90}</td><td>${x.latency_ms.p99}</td><td>${x.latency_ms.p999}</td><td>${x.max_utilization}</td><td>${x.imbalance}</td></tr>`,
    )
    .join('')}</tbody></table>`;
  const events = r.events.length === 0 ? '<p>No events.</p>' : `<ul>${r.events.map((e) => `<li>${e.t_s} s: ${esc(e.label)}</li>`).join('')}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.scenario)}: Meridian simulation</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:18px 0}figcaption{font-weight:600;margin-bottom:4px}svg{font-family:system-ui,sans-serif;background:#fff;font-size:13px;display:block;width:100%;height:auto;min-width:600px}.chart{overflow-x:auto}svg .small{font-size:11px}svg .ev{font-size:12px;fill:#111}.table{overflow-x:auto}@media (max-width:640px){body{margin:12px}}</style>
</head><body>
<h1>${esc(r.scenario)}</h1>
<p>Seed ${r.seed}; ${r.duration_s} s of virtual time, statistics from ${r.warmup_s} s on; time buckets of ${r.bucket_s} s. Latency is the client's: load balancer to response plus the RTT to the chosen region.</p>
<div class="table">${summary}</div>
<h2>Events</h2>${events}
<h2>Latency over time</h2>
${lineChart('p50 latency per policy', 'latency (ms)', pct('p50'), r)}
${lineChart('p99 latency per policy', 'latency (ms)', pct('p99'), r)}
${lineChart('Failed (solid) and shed (dashed, darker) requests per policy', 'requests / s', errors, r)}
<h2>Per-server load</h2>
${r.results.map((_, i) => heatMap(`Requests started per server per second, ${r.results[i]?.policy}`, r, i)).join('\n')}
<h2>Per-region traffic</h2>
${regionCharts}
</body></html>
`;
}
