/**
 * The HTML report: one self-contained file (inline SVG and CSS, no script, no CDN).
 * Plots: latency percentiles over time per policy, errors and shed load over time,
 * per-server load (a heat map per policy), per-region traffic; scenario events are
 * marked on every time axis. Colours: the Okabe-Ito palette (colour-blind safe) for
 * lines, viridis for heat maps.
 */
import type { SimReport } from './index.js';

const OKABE_ITO = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];
const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];

interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dash?: string;
}

const W = 860;
const H = 280;
const M = { l: 64, r: 16, t: 44, b: 44 };

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

function eventMarks(events: SimReport['events'], x: (t: number) => number, top: number, bottom: number): string {
  // Events at the same moment share one mark and one label ("kill us-east/0 +9 more"), so
  // ten simultaneous kills do not print ten labels on top of each other.
  const byTime = new Map<number, string[]>();
  for (const e of events) byTime.set(e.t_s, [...(byTime.get(e.t_s) ?? []), e.label]);
  return [...byTime]
    .map(([t, labels], i) => {
      const px = x(t);
      const label = labels.length === 1 ? (labels[0] as string) : `${labels[0] as string} +${labels.length - 1} more`;
      return `<line x1="${px}" x2="${px}" y1="${top}" y2="${bottom}" stroke="#555" stroke-dasharray="4 3"/><text x="${px + 3}" y="${top + 10 + (i % 4) * 11}" font-size="10" fill="#333">${esc(label)}</text>`;
    })
    .join('');
}

function lineChart(title: string, yLabel: string, series: readonly Series[], r: SimReport): string {
  const xMax = r.duration_s;
  const yMax = Math.max(1e-9, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const yt = ticks(yMax);
  const yTop = yt[yt.length - 1] as number;
  const x = (t: number): number => +(M.l + (t / xMax) * (W - M.l - M.r)).toFixed(1);
  const y = (v: number): number => +(H - M.b - (v / yTop) * (H - M.t - M.b)).toFixed(1);
  const grid = yt.map((v) => `<line x1="${M.l}" x2="${W - M.r}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/><text x="${M.l - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${fmt(v)}</text>`).join('');
  const xt = ticks(xMax).filter((t) => t <= xMax).map((t) => `<text x="${x(t)}" y="${H - M.b + 16}" text-anchor="middle" font-size="11">${fmt(t)}</text>`).join('');
  const lines = series
    .map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${s.points.map((p) => `${x(p[0])},${y(p[1])}`).join(' ')}"/>`)
    .join('');
  const legend = series.map((s, i) => `<g transform="translate(${M.l + 8 + (i % 4) * 200},${M.t - 30 + Math.floor(i / 4) * 13})"><line x1="0" x2="16" y1="-3" y2="-3" stroke="${s.color}" stroke-width="3"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/><text x="20" font-size="11">${esc(s.name)}</text></g>`).join('');
  const warm = r.warmup_s > 0 ? `<rect x="${M.l}" y="${M.t}" width="${x(r.warmup_s) - M.l}" height="${H - M.t - M.b}" fill="#f2f2f2"/><text x="${M.l + 4}" y="${H - M.b - 4}" font-size="10" fill="#777">warm-up</text>` : '';
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">
${warm}${grid}${xt}
<line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${H - M.b}" stroke="#333"/><line x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}" stroke="#333"/>
<text x="${(M.l + W - M.r) / 2}" y="${H - 8}" text-anchor="middle" font-size="12">virtual time (s)</text>
<text transform="translate(16,${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>
${eventMarks(r.events, x, M.t, H - M.b)}${lines}${legend}</svg></figure>`;
}

function heatMap(title: string, r: SimReport, policyIndex: number): string {
  const res = r.results[policyIndex];
  if (!res) return '';
  const ids = res.servers.map((s) => s.id);
  const buckets = res.timeseries;
  const rowH = Math.max(3, Math.min(16, Math.floor(360 / Math.max(1, ids.length))));
  const h = M.t + ids.length * rowH + M.b;
  const plotW = W - M.l - M.r - 70;
  const bw = plotW / Math.max(1, buckets.length);
  const perS = (b: (typeof buckets)[number], j: number, i: number): number => {
    const next = buckets[i + 1];
    const width = (next ? next.t_s : r.duration_s) - b.t_s;
    return width > 0 ? (b.servers[j] ?? 0) / width : 0;
  };
  let max = 0;
  buckets.forEach((b, i) => ids.forEach((_, j) => (max = Math.max(max, perS(b, j, i)))));
  const cells = buckets
    .map((b, i) =>
      ids
        .map((_, j) => {
          const v = max > 0 ? perS(b, j, i) / max : 0;
          const c = VIRIDIS[Math.min(VIRIDIS.length - 1, Math.floor(v * VIRIDIS.length))] as string;
          return `<rect x="${(M.l + i * bw).toFixed(1)}" y="${M.t + j * rowH}" width="${(bw + 0.5).toFixed(1)}" height="${rowH}" fill="${c}"/>`;
        })
        .join(''),
    )
    .join('');
  const labelEvery = Math.max(1, Math.ceil(12 / rowH));
  const yl = ids.map((id, j) => (j % labelEvery === 0 ? `<text x="${M.l - 4}" y="${M.t + j * rowH + rowH - 2}" text-anchor="end" font-size="${Math.min(11, rowH + 2)}">${esc(id)}</text>` : '')).join('');
  const x = (t: number): number => +(M.l + (t / r.duration_s) * plotW).toFixed(1);
  const xt = ticks(r.duration_s).filter((t) => t <= r.duration_s).map((t) => `<text x="${x(t)}" y="${h - M.b + 16}" text-anchor="middle" font-size="11">${fmt(t)}</text>`).join('');
  const legend = VIRIDIS.map((c, i) => `<rect x="${W - M.r - 40}" y="${M.t + (VIRIDIS.length - 1 - i) * 14}" width="14" height="14" fill="${c}"/>`).join('');
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${esc(title)}">
${cells}${yl}${xt}${eventMarks(r.events, x, M.t, h - M.b)}
<text x="${(M.l + M.l + plotW) / 2}" y="${h - 8}" text-anchor="middle" font-size="12">virtual time (s)</text>
${legend}<text x="${W - M.r - 22}" y="${M.t - 4}" text-anchor="middle" font-size="10">${fmt(max)} req/s</text><text x="${W - M.r - 22}" y="${M.t + VIRIDIS.length * 14 + 12}" text-anchor="middle" font-size="10">0 req/s</text>
</svg></figure>`;
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
    { name: `${res.policy} shed`, color: color(i), dash: '5 3', points: perSecond(r, (b) => b.shed, res.timeseries) },
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
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:18px 0}figcaption{font-weight:600;margin-bottom:4px}svg{font-family:system-ui,sans-serif;background:#fff}</style>
</head><body>
<h1>${esc(r.scenario)}</h1>
<p>Seed ${r.seed}; ${r.duration_s} s of virtual time, statistics from ${r.warmup_s} s on; time buckets of ${r.bucket_s} s. Latency is the client's: load balancer to response plus the RTT to the chosen region.</p>
${summary}
<h2>Events</h2>${events}
<h2>Latency over time</h2>
${lineChart('p50 latency per policy', 'latency (ms)', pct('p50'), r)}
${lineChart('p99 latency per policy', 'latency (ms)', pct('p99'), r)}
${lineChart('Failed (solid) and shed (dashed) requests per policy', 'requests / s', errors, r)}
<h2>Per-server load</h2>
${r.results.map((_, i) => heatMap(`Requests started per server per second, ${r.results[i]?.policy}`, r, i)).join('\n')}
<h2>Per-region traffic</h2>
${regionCharts}
</body></html>
`;
}
