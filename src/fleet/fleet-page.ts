/**
 * The fleet's page on the admin server (`GET /fleet`): the live nodes with region,
 * version, config digest and last seen, Redis's state and the shared-health votes, read
 * from `GET /api/fleet` once a second. One self-contained document (no build, nothing
 * loaded from elsewhere), so any node's admin port shows it.
 */
export const FLEET_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Meridian fleet</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2433; }
  h1 { font-size: 1.2rem; margin: 0 0 .25rem; }
  .sub { color: #5b6475; margin-bottom: 1rem; }
  table { border-collapse: collapse; min-width: 36rem; margin-bottom: 1.25rem; }
  th, td { text-align: left; padding: .3rem .8rem .3rem 0; border-bottom: 1px solid #e3e6ec; }
  th { font-weight: 600; color: #5b6475; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .up { color: #137333; } .down { color: #b3261e; font-weight: 600; } .self { font-weight: 600; }
</style>
</head>
<body>
<h1>Fleet</h1>
<div class="sub" id="summary">loading…</div>
<table id="nodes"><thead><tr><th>node</th><th>region</th><th>version</th><th>config</th><th class="num">last seen</th></tr></thead><tbody></tbody></table>
<h2 style="font-size:1rem">Shared health</h2>
<table id="health"><thead><tr><th>cluster</th><th>endpoint</th><th class="num">votes</th><th>taken out here</th></tr></thead><tbody></tbody></table>
<script>
  const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; };
  const row = (cells) => { const tr = document.createElement('tr'); for (const c of cells) tr.append(c); return tr; };
  async function refresh() {
    let v;
    try { v = await (await fetch('/api/fleet', { cache: 'no-store' })).json(); }
    catch { document.getElementById('summary').textContent = 'admin API unreachable'; return; }
    const summary = document.getElementById('summary');
    summary.textContent = '';
    summary.append('this node: ' + v.node + (v.region ? ' (' + v.region + ')' : '') + ' · Redis ');
    const r = document.createElement('span'); r.className = v.redis === 'up' ? 'up' : 'down'; r.textContent = v.redis; summary.append(r);
    summary.append(' · ' + v.nodes.length + ' live node' + (v.nodes.length === 1 ? '' : 's'));
    const nodes = document.querySelector('#nodes tbody');
    nodes.replaceChildren(...v.nodes.map((n) => row([cell(n.node, n.self ? 'self' : ''), cell(n.region), cell(n.version), cell(n.config), cell((n.ageMs / 1000).toFixed(1) + ' s ago', 'num')])));
    const health = document.querySelector('#health tbody');
    const rows = [];
    for (const [cluster, h] of Object.entries(v.health)) for (const [ep, votes] of Object.entries(h.votes)) rows.push(row([cell(cluster), cell(ep), cell(String(votes), 'num'), cell(h.ejected.includes(ep) ? 'yes' : 'no')]));
    health.replaceChildren(...rows);
  }
  refresh();
  setInterval(refresh, 1000);
</script>
</body>
</html>
`;
