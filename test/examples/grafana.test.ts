// The Grafana dashboard and the Prometheus rules in examples/ query only what Meridian
// exports: every metric and label they name is checked against a real Meridian's /metrics
// (after traffic through it, and with the DNS layer on) and against docs/metrics.md.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import parsePrometheus, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { parse as parseYaml } from 'yaml';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import { udpQuery } from '../global/helpers.js';
import { backends, closeAll, config, get, startMeridian, type Running } from '../proxy/harness.js';

const DASHBOARD = 'examples/grafana/meridian-dashboard.json';
const ALERTS = 'examples/prometheus/alerts.yml';
const PROMETHEUS = 'examples/prometheus/prometheus.yml';
const DOCS = 'docs/metrics.md';

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly uid?: string };
  readonly targets?: readonly { readonly expr: string; readonly datasource?: { readonly uid?: string } }[];
}
interface Dashboard {
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly type: string; readonly query: unknown }[] };
  readonly annotations: { readonly list: readonly { readonly expr?: string }[] };
}
interface Rule {
  readonly alert?: unknown;
  readonly expr?: unknown;
  readonly for?: unknown;
  readonly labels?: { readonly severity?: unknown };
  readonly annotations?: { readonly summary?: unknown };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const alerts = parseYaml(readFileSync(ALERTS, 'utf8')) as { groups?: { name?: unknown; rules?: Rule[] }[] };

/** Every PromQL expression of the dashboard (panels, annotations, variable queries), Grafana's variables given sample values. */
function dashboardExprs(): string[] {
  const exprs = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.annotations.list.flatMap((a) => (a.expr === undefined ? [] : [a.expr])),
  ];
  const vars = dashboard.templating.list.filter((v) => v.type === 'query').map((v) => (v.query as { query: string }).query);
  return [...exprs, ...vars.map((q) => /^label_values\((.+), *\w+\)$/.exec(q)?.[1] ?? assert.fail(`variable query not label_values(metric, label): ${q}`))].map((e) =>
    e
      .replaceAll('$__rate_interval', '5m')
      .replaceAll('$__range', '1h')
      .replace(/\$(cluster|endpoint|region)\b/g, '.*'),
  );
}

function alertExprs(): string[] {
  return (alerts.groups ?? []).flatMap((g) => (g.rules ?? []).map((r) => String(r.expr)));
}

/** The label names each metric has, from docs/metrics.md's tables (which test/admin/metrics.test.ts keeps equal to the code's). */
function documentedLabels(): Map<string, { readonly type: string; readonly labels: readonly string[] }> {
  const m = new Map<string, { type: string; labels: string[] }>();
  for (const line of readFileSync(DOCS, 'utf8').split('\n')) {
    const row = /^\| `(meridian_\w+)` \| (counter|gauge|histogram) \| ([^|]*) \|/.exec(line);
    if (row) m.set(row[1] as string, { type: row[2] as string, labels: [...(row[3] as string).matchAll(/`(\w+)`/g)].map((x) => x[1] as string) });
  }
  return m;
}

/**
 * The metric families an expression reads, each with the label names it uses: in its own
 * selector, and in by()/without() clauses when the expression reads one family (with two,
 * a clause cannot be pinned on one of them). `name_bucket`/`_sum`/`_count` is a histogram's
 * series only when `name` is a histogram: a counter may itself end in `_count`.
 */
function references(expr: string, histograms: ReadonlySet<string>): Map<string, Set<string>> {
  const refs = new Map<string, Set<string>>();
  for (const m of expr.matchAll(/\b(meridian_\w+)\s*(\{([^}]*)\})?/g)) {
    const series = m[1] as string;
    const base = /^(.+)_(bucket|sum|count)$/.exec(series);
    const family = base && histograms.has(base[1] as string) ? (base[1] as string) : series;
    const labels = refs.get(family) ?? new Set<string>();
    for (const l of (m[3] ?? '').matchAll(/(\w+)\s*(=~|!~|!=|=)/g)) labels.add(l[1] as string);
    if (base?.[2] === 'bucket') labels.delete('le');
    refs.set(family, labels);
  }
  if (refs.size === 1) {
    // Labels label_replace() makes, and the target's labels Prometheus adds, are not the metric's.
    const made = new Set([...expr.matchAll(/"(\w+)",\s*"[^"]*",\s*"\w+",\s*"/g)].map((x) => x[1] as string));
    for (const l of ['instance', 'job', 'le']) made.add(l);
    const labels = [...refs.values()][0] as Set<string>;
    for (const c of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
      for (const l of (c[1] as string).split(',').map((x) => x.trim())) if (l !== '' && !made.has(l)) labels.add(l);
    }
  }
  return refs;
}

describe('examples/grafana and examples/prometheus', () => {
  let bs: SampleBackend[];
  let m: Running;
  let families: PrometheusFamily[];

  before(async () => {
    bs = await backends(2);
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ match: { path: { prefix: '/app' } }, cluster: 'c' }] }],
        clusters: [{ name: 'c', localities: [{ region: 'us-east', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }] }],
        global: {
          dns: { address: '127.0.0.1', port: 0, zone: 'meridian.test', ttl: '30s', ns: ['ns1.meridian.test'], ns_addresses: { 'ns1.meridian.test': ['127.0.0.1'] } },
          regions: [{ name: 'us-east', location: { lat: 39.0, lon: -77.5 }, addresses: ['127.0.0.11'] }],
          hostnames: [{ name: 'www.meridian.test', policy: 'geo' }],
        },
      }),
    );
    for (let i = 0; i < 4; i++) assert.equal((await get(m.port, '/app')).status, 200);
    assert.equal((await get(m.port, '/elsewhere')).status, 404);
    const dns = await udpQuery(m.meridian.global()!.ports().dns, { questions: [{ type: 'A', name: 'www.meridian.test' }] });
    assert.equal(dns.rcode, 'NOERROR');
    const scrape = await get(m.meridian.adminPort, '/metrics');
    assert.equal(scrape.status, 200);
    families = parsePrometheus(scrape.body);
  });
  after(() => closeAll(m, bs));

  const histograms = (): Set<string> => new Set(families.filter((f) => f.type === 'HISTOGRAM').map((f) => f.name));

  /**
   * Each family is declared (# HELP/# TYPE) in the scrape whether or not it has series yet;
   * the traffic above gives series to those the dashboard's first rows read, so those are
   * checked to have samples too (retries, ejections, refusals and RRL need faults to appear).
   */
  function checkAgainstScrapeAndDocs(what: string, exprs: readonly string[], mustHaveSamples: readonly string[]): void {
    const docs = documentedLabels();
    const seen = new Set<string>();
    for (const expr of exprs) {
      for (const [family, labels] of references(expr, histograms())) {
        seen.add(family);
        assert.ok(
          families.some((f) => f.name === family),
          `${what}: ${family} is not in /metrics (in: ${expr})`,
        );
        const doc = docs.get(family);
        assert.ok(doc, `${what}: ${family} is not in a table of ${DOCS}`);
        for (const l of labels) assert.ok(doc.labels.includes(l), `${what}: ${family} has no label ${l} (in: ${expr})`);
      }
    }
    for (const name of mustHaveSamples) {
      assert.ok(seen.has(name), `${what} does not read ${name}`);
      assert.ok((families.find((f) => f.name === name)?.metrics.length ?? 0) > 0, `${name}: no samples after the traffic`);
    }
  }

  it('every metric and label the dashboard queries is in /metrics and docs/metrics.md', () => {
    checkAgainstScrapeAndDocs('dashboard', dashboardExprs(), [
      'meridian_requests_total',
      'meridian_request_duration_seconds',
      'meridian_upstream_duration_seconds',
      'meridian_request_attempts',
      'meridian_local_replies_total',
      'meridian_endpoint_status',
      'meridian_cluster_panic',
      'meridian_locality_traffic_share',
      'meridian_connections_active',
      'meridian_dns_queries_total',
      'meridian_dns_steering_decisions_total',
      'meridian_config_reloads_total',
    ]);
  });

  it('every metric and label the alerting rules query is in /metrics and docs/metrics.md', () => {
    checkAgainstScrapeAndDocs('alerts.yml', alertExprs(), [
      'meridian_requests_total',
      'meridian_request_duration_seconds',
      'meridian_endpoint_status',
      'meridian_cluster_panic',
      'meridian_config_reloads_total',
    ]);
  });

  it('the suffix rule: _bucket/_sum/_count name a histogram only when the base is one', () => {
    const refs = references('rate(meridian_request_attempts_count[5m]) + meridian_request_duration_seconds_bucket{cluster="a", le="1"}', histograms());
    assert.deepEqual(
      [...refs].map(([f, l]) => [f, [...l]]),
      [
        ['meridian_request_attempts', []],
        ['meridian_request_duration_seconds', ['cluster']],
      ],
    );
    assert.deepEqual([...references('meridian_config_reloads_total', histograms()).keys()], ['meridian_config_reloads_total']);
  });

  it('the dashboard is importable: schema 39, one Prometheus data source variable, cluster/endpoint/region variables', () => {
    assert.equal(dashboard.schemaVersion, 39);
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    assert.equal(vars.get('DS_PROMETHEUS')?.type, 'datasource');
    assert.equal(vars.get('DS_PROMETHEUS')?.query, 'prometheus');
    for (const v of ['cluster', 'endpoint', 'region']) assert.match(String((vars.get(v)?.query as { query?: string } | undefined)?.query), new RegExp(`^label_values\\(.+, *${v}\\)$`));
    const queried = dashboard.panels.filter((p) => p.type !== 'row');
    assert.ok(queried.length >= 20, `${queried.length} panels`);
    for (const p of queried) {
      assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `panel ${p.title}`);
      assert.ok((p.targets ?? []).length > 0, `panel ${p.title} has no query`);
      for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, '${DS_PROMETHEUS}', `panel ${p.title}`);
    }
  });

  it('alerts.yml: groups of rules, each with alert, expr, for, a severity label and a summary', () => {
    const groups = alerts.groups ?? [];
    assert.ok(groups.length > 0);
    const names: string[] = [];
    for (const g of groups) {
      assert.equal(typeof g.name, 'string');
      assert.ok((g.rules ?? []).length > 0, `group ${String(g.name)} has no rules`);
      for (const r of g.rules ?? []) {
        assert.equal(typeof r.alert, 'string', JSON.stringify(r));
        names.push(r.alert as string);
        assert.equal(typeof r.expr, 'string', `${String(r.alert)}: expr`);
        assert.match(String(r.for), /^\d+[smh]$/, `${String(r.alert)}: for`);
        assert.ok(['critical', 'warning', 'info'].includes(String(r.labels?.severity)), `${String(r.alert)}: severity`);
        assert.equal(typeof r.annotations?.summary, 'string', `${String(r.alert)}: summary`);
      }
    }
    for (const a of ['MeridianHighErrorRatio', 'MeridianHighP99Latency', 'MeridianEndpointsDown', 'MeridianClusterPanic', 'MeridianConfigReloadFailed']) assert.ok(names.includes(a), a);
  });

  it('promtool accepts prometheus.yml, alerts.yml and every dashboard query', (t) => {
    if (spawnSync('promtool', ['--version']).error) {
      t.skip('promtool not installed (apt-get install prometheus): the rules were checked for structure only');
      return;
    }
    const check = (args: string[]): void => {
      const r = spawnSync('promtool', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    };
    check(['check', 'config', PROMETHEUS]); // also checks the rule files it names
    // The dashboard's queries as recording rules: promtool parses each as PromQL.
    const dir = mkdtempSync(join(tmpdir(), 'meridian-grafana-'));
    try {
      const rules = { groups: [{ name: 'dashboard', rules: dashboardExprs().map((expr, i) => ({ record: `dashboard:query${i}`, expr })) }] };
      writeFileSync(join(dir, 'dashboard-rules.json'), JSON.stringify(rules));
      check(['check', 'rules', join(dir, 'dashboard-rules.json')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
