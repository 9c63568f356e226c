// ProxyMetrics through its real output: every assertion reads a scrape parsed by an
// independent Prometheus text parser, as Prometheus itself would see it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import parse, { type PrometheusFamily, type PrometheusSample } from 'parse-prometheus-text-format';
import { mergeExpositions } from '../../src/admin/merge-expositions.js';
import { DURATION_BUCKETS_S, internalErrorsCounter, ProxyMetrics } from '../../src/admin/metrics.js';
import { Registry } from 'prom-client';
import { HEALTH_STATUSES, type ClusterState } from '../../src/admin/types.js';
import { endpoint } from './fixtures.js';
import { DnsMetrics } from '../../src/global/dns-metrics.js';
import { FleetMetrics } from '../../src/fleet/fleet-metrics.js';
import { GlobalLayer } from '../../src/global/global-layer.js';
import { globalConfig, quiet } from '../global/helpers.js';

// dist/test/admin/ → repository root.
const DOCS = fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url));

async function scrape(m: ProxyMetrics): Promise<{ text: string; families: PrometheusFamily[] }> {
  const text = await m.metricsText();
  return { text, families: parse(text) };
}

function family(families: readonly PrometheusFamily[], name: string): PrometheusFamily {
  const f = families.find((x) => x.name === name);
  assert.ok(f, `no metric family ${name}`);
  return f;
}

/** The one sample whose labels are exactly `labels`. */
function sample(f: PrometheusFamily, labels: Record<string, string>): PrometheusSample {
  const found = f.metrics.filter((s) => sameLabels(s.labels ?? {}, labels));
  assert.equal(found.length, 1, `${f.name}${JSON.stringify(labels)}: ${found.length} samples in ${JSON.stringify(f.metrics)}`);
  return found[0] as PrometheusSample;
}

function value(families: readonly PrometheusFamily[], name: string, labels: Record<string, string>): number {
  return Number(sample(family(families, name), labels).value);
}

/** One line of the exposition, parsed alone by the library: name, labels, value. */
interface Line {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function sampleLines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [f] = parse(`${l}\n`);
      assert.ok(f && f.metrics.length === 1, `unparsable sample line: ${l}`);
      const s = f.metrics[0] as PrometheusSample;
      return { name: f.name, labels: s.labels ?? {}, value: Number(s.value) };
    });
}

/**
 * One series of a histogram. parse-prometheus-text-format 1.1.1 merges the series of a
 * labelled histogram into one sample (its flattenMetrics keeps buckets by `le` only and
 * drops labelled _sum/_count), so histograms are read line by line, each line parsed by
 * the library, and grouped here.
 */
function histogram(text: string, name: string, labels: Record<string, string>): { buckets: Record<string, number>; sum: number; count: number } {
  const mine = sampleLines(text).filter((l) => {
    const { le: _le, ...rest } = l.labels;
    return [`${name}_bucket`, `${name}_sum`, `${name}_count`].includes(l.name) && sameLabels(rest, labels);
  });
  const buckets: Record<string, number> = {};
  for (const l of mine) if (l.name === `${name}_bucket`) buckets[l.labels.le as string] = l.value;
  const one = (suffix: string): number => {
    const found = mine.filter((l) => l.name === `${name}${suffix}`);
    assert.equal(found.length, 1, `${name}${suffix}${JSON.stringify(labels)}`);
    return (found[0] as Line).value;
  };
  return { buckets, sum: one('_sum'), count: one('_count') };
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** Calls every recording method once, so that every family has a sample to inspect. */
function exerciseAll(m: ProxyMetrics): void {
  m.observeRequest({ listener: 'web', cluster: 'api', endpoint: '10.0.0.1:80', code: 200 }, 0.01, 0.008, 1);
  m.localReply('web', 'no_route', 404);
  m.retry('api', 'connect_failure');
  m.retryRefused('api', 'budget');
  m.hedge('api', 'won');
  m.healthTransition('api', '10.0.0.1:80', false, 'active');
  m.ejection('api', '10.0.0.1:80', 'consecutive_5xx');
  m.healthCheck('api', '10.0.0.1:80', true);
  m.reload(true);
  m.discoveryRefresh('api', 'failure');
  m.discoveryChange('api', 'held');
  m.tcpConnection('db', 'pg', '10.0.0.2:5432', 'closed', 10, 20);
  m.upstreamAnswer('api', 'h2', 'TLSv1.3');
  m.grpcCall('web', 'api', '14');
  m.setConnectionSource(() => [['web', 3]]);
  m.connectionRefused('web', 'listener_limit');
  m.internalError('http2_session', 'ECONNRESET');
  m.setSource(() => [
    {
      name: 'api',
      policy: 'round_robin',
      inPanic: false,
      endpoints: [endpoint('10.0.0.1:80')],
      localities: [{ region: 'r', zone: 'z', priority: 0, remote: false, hosts: 1, healthy: 1, share: 1, panic: false, active: 0, maxRequestsPerSecond: undefined, maxInFlight: undefined, spilledOut: 0, spilledIn: 0 }],
      overload: OVERLOAD,
    },
  ]);
  m.probe('api', 'backend', 'ok');
  m.modelSwitch('api', '0||', true, 'drift');
  m.setBalancerSource(() => [
    { cluster: 'api', locality: '0||', stats: { poolSize: 5, probeReplies: 10 } },
    { cluster: 'web', locality: '0||', stats: { fallback: true, maeMs: 3, baselineMaeMs: 9, p90AbsErrorMs: 7, samples: 100, modelPicks: 30, baselinePicks: 10 } },
  ]);
}

describe('ProxyMetrics: predictive', () => {
  it("exports the share of the model's picks it left to peak EWMA; nothing for a locality with no pick yet", async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    exerciseAll(m);
    assert.equal(value((await scrape(m)).families, 'meridian_predictive_baseline_pick_ratio', { cluster: 'web', locality: '0||' }), 0.25);
    m.setBalancerSource(() => [{ cluster: 'web', locality: '0||', stats: { fallback: false, modelPicks: 0, baselinePicks: 0 } }]);
    assert.equal(family((await scrape(m)).families, 'meridian_predictive_baseline_pick_ratio').metrics.length, 0);
  });
});

const OVERLOAD = { limit: 40, inFlight: 12, queued: 3, queueDelayMs: 4, minRttMs: 15, refused: { critical: 0, default: 5, sheddable: 9 } };

describe('ProxyMetrics: adaptive concurrency', () => {
  it("exports a cluster's limit, in flight, queue, queue delay, min RTT and refusals by class; nothing for a cluster without it", async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    exerciseAll(m);
    const { families } = await scrape(m);
    const v = (name: string, labels: Record<string, string>): number => value(families, name, labels);
    assert.equal(v('meridian_adaptive_concurrency_limit', { cluster: 'api' }), 40);
    assert.equal(v('meridian_adaptive_concurrency_in_flight', { cluster: 'api' }), 12);
    assert.equal(v('meridian_adaptive_concurrency_queued', { cluster: 'api' }), 3);
    assert.equal(v('meridian_adaptive_concurrency_queue_delay_seconds', { cluster: 'api' }), 0.004);
    assert.equal(v('meridian_adaptive_concurrency_min_rtt_seconds', { cluster: 'api' }), 0.015);
    assert.equal(v('meridian_adaptive_concurrency_refused_requests', { cluster: 'api', class: 'sheddable' }), 9);
    assert.equal(v('meridian_adaptive_concurrency_refused_requests', { cluster: 'api', class: 'critical' }), 0);
    m.setSource(() => [{ name: 'api', policy: 'round_robin', inPanic: false, endpoints: [] }]);
    assert.equal(family((await scrape(m)).families, 'meridian_adaptive_concurrency_limit').metrics.length, 0);
  });
});

describe('ProxyMetrics: endpoints that a reload removed', () => {
  it("drops their series, keeps the others' and the local replies'", async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    for (const endpoint of ['a', 'b']) {
      m.observeRequest({ listener: 'web', cluster: 'api', endpoint, code: 200 }, 0.01, 0.008, 1);
      m.healthCheck('api', endpoint, false, 'timeout');
      m.healthTransition('api', endpoint, false, 'active');
      m.ejection('api', endpoint, 'consecutive_5xx');
    }
    m.observeRequest({ listener: 'web', cluster: '', endpoint: '', code: 404 }, 0.001);
    m.forgetEndpoints(new Map([['api', new Set(['a'])]]));
    const { families } = await scrape(m);
    for (const name of ['meridian_requests_total', 'meridian_health_checks_total', 'meridian_health_transitions_total', 'meridian_ejections_total']) {
      const endpoints = family(families, name).metrics.map((x) => x.labels?.endpoint);
      assert.ok(endpoints.includes('a'), `${name} keeps a`);
      assert.ok(!endpoints.includes('b'), `${name} drops b`);
    }
    const text = await m.metricsText();
    assert.match(text, /^meridian_upstream_duration_seconds_count\{cluster="api",endpoint="a"\} 1$/m, 'the upstream histogram keeps a');
    assert.doesNotMatch(text, /^meridian_upstream_duration_seconds_\w+\{[^}]*endpoint="b"/m, 'and drops b');
    assert.equal(value(families, 'meridian_requests_total', { listener: 'web', cluster: '', endpoint: '', code: '404' }), 1);
    // A removed endpoint that comes back starts from zero.
    m.observeRequest({ listener: 'web', cluster: 'api', endpoint: 'b', code: 200 }, 0.01);
    assert.equal(value((await scrape(m)).families, 'meridian_requests_total', { listener: 'web', cluster: 'api', endpoint: 'b', code: '200' }), 1);
  });
});

describe('ProxyMetrics: events', () => {
  it('counts requests by listener, cluster, endpoint and code', async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    const ok = { listener: 'web', cluster: 'api', endpoint: '10.0.0.1:8080', code: 200 };
    m.observeRequest(ok, 0.01);
    m.observeRequest(ok, 0.02);
    m.observeRequest({ ...ok, endpoint: '[::1]:8080', code: 503 }, 0.03);
    m.observeRequest({ listener: 'web', cluster: '', endpoint: '', code: 404 }, 0.0001);
    const { families } = await scrape(m);
    const f = family(families, 'meridian_requests_total');
    assert.equal(f.type, 'COUNTER');
    assert.equal(f.metrics.length, 3);
    assert.equal(value(families, 'meridian_requests_total', { listener: 'web', cluster: 'api', endpoint: '10.0.0.1:8080', code: '200' }), 2);
    assert.equal(value(families, 'meridian_requests_total', { listener: 'web', cluster: 'api', endpoint: '[::1]:8080', code: '503' }), 1);
    assert.equal(value(families, 'meridian_requests_total', { listener: 'web', cluster: '', endpoint: '', code: '404' }), 1);
  });

  it('puts request durations in buckets from 0.5 ms to 30 s, per cluster', async () => {
    assert.equal(DURATION_BUCKETS_S[0], 0.0005);
    assert.equal(DURATION_BUCKETS_S.at(-1), 30);
    const m = new ProxyMetrics({ defaultMetrics: false });
    const l = { listener: 'web', cluster: 'api', endpoint: 'e1', code: 200 };
    for (const s of [0.0004, 0.003, 0.2, 45]) m.observeRequest(l, s);
    m.observeRequest({ ...l, cluster: 'other' }, 1);
    const { text, families } = await scrape(m);
    assert.equal(family(families, 'meridian_request_duration_seconds').type, 'HISTOGRAM');
    const api = histogram(text, 'meridian_request_duration_seconds', { cluster: 'api' });
    assert.equal(api.count, 4);
    assert.equal(api.sum, 0.0004 + 0.003 + 0.2 + 45);
    // Cumulative: 0.4 ms is in every bucket, 45 s only in +Inf.
    const b = api.buckets;
    assert.deepEqual(Object.keys(b).sort(), [...DURATION_BUCKETS_S.map(String), '+Inf'].sort());
    assert.equal(b['0.0005'], 1);
    assert.equal(b['0.0025'], 1);
    assert.equal(b['0.005'], 2);
    assert.equal(b['0.1'], 2);
    assert.equal(b['0.25'], 3);
    assert.equal(b['30'], 3);
    assert.equal(b['+Inf'], 4);
    assert.equal(histogram(text, 'meridian_request_duration_seconds', { cluster: 'other' }).count, 1);
  });

  it('records upstream time and attempts only when given', async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    const l = { listener: 'web', cluster: 'api', endpoint: 'e1', code: 200 };
    m.observeRequest(l, 0.05, 0.04, 1);
    m.observeRequest({ ...l, endpoint: 'e2' }, 0.3, 0.2, 3);
    m.observeRequest({ ...l, code: 429 }, 0.0001); // answered locally: no upstream, no attempts
    const { text } = await scrape(m);
    const upstreamCounts = sampleLines(text).filter((l) => l.name === 'meridian_upstream_duration_seconds_count');
    assert.deepEqual(upstreamCounts.map((l) => l.labels.endpoint).sort(), ['e1', 'e2']);
    assert.equal(histogram(text, 'meridian_upstream_duration_seconds', { cluster: 'api', endpoint: 'e1' }).count, 1);
    assert.equal(histogram(text, 'meridian_upstream_duration_seconds', { cluster: 'api', endpoint: 'e2' }).sum, 0.2);
    const attempts = histogram(text, 'meridian_request_attempts', { cluster: 'api' });
    assert.equal(attempts.count, 2);
    assert.equal(attempts.sum, 4);
    assert.deepEqual(attempts.buckets, { '1': 1, '2': 1, '3': 2, '4': 2, '5': 2, '+Inf': 2 });
    assert.equal(histogram(text, 'meridian_request_duration_seconds', { cluster: 'api' }).count, 3);
  });

  it('counts local replies, retries, budget exhaustion, health transitions, ejections, checks and reloads', async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    m.localReply('web', 'no_route', 404);
    m.localReply('web', 'no_route', 404);
    m.localReply('web', 'rate_limited', 429);
    m.localReply('tcp', 'no_healthy_endpoint', 503);
    m.retry('api', 'connect_failure');
    m.retry('api', 'connect_failure');
    m.retry('api', '503');
    m.retryRefused('api', 'budget');
    m.retryRefused('api', 'max_retries');
    m.retryRefused('api', 'max_retries');
    m.healthTransition('api', 'e1', false, 'active');
    m.healthTransition('api', 'e1', true, 'active');
    m.healthTransition('api', 'e1', false, 'outlier');
    m.ejection('api', 'e1', 'consecutive_5xx');
    m.healthCheck('api', 'e1', true);
    m.healthCheck('api', 'e1', true);
    m.healthCheck('api', 'e1', false, 'timeout');
    m.healthCheck('api', 'e1', false);
    const before = await scrape(m);
    // Both reload results exist before the first reload, at 0.
    assert.equal(value(before.families, 'meridian_config_reloads_total', { result: 'success' }), 0);
    assert.equal(value(before.families, 'meridian_config_reloads_total', { result: 'failure' }), 0);
    m.reload(true);
    m.reload(false);
    m.reload(true);
    const { families } = await scrape(m);
    const v = (name: string, labels: Record<string, string>): number => value(families, name, labels);
    assert.equal(v('meridian_local_replies_total', { listener: 'web', reason: 'no_route', code: '404' }), 2);
    assert.equal(v('meridian_local_replies_total', { listener: 'web', reason: 'rate_limited', code: '429' }), 1);
    assert.equal(v('meridian_local_replies_total', { listener: 'tcp', reason: 'no_healthy_endpoint', code: '503' }), 1);
    assert.equal(v('meridian_retries_total', { cluster: 'api', reason: 'connect_failure' }), 2);
    assert.equal(v('meridian_retries_total', { cluster: 'api', reason: '503' }), 1);
    assert.equal(v('meridian_retries_refused_total', { cluster: 'api', reason: 'budget' }), 1);
    assert.equal(v('meridian_retries_refused_total', { cluster: 'api', reason: 'max_retries' }), 2);
    const t = { cluster: 'api', endpoint: 'e1' };
    assert.equal(v('meridian_health_transitions_total', { ...t, to: 'unhealthy', source: 'active' }), 1);
    assert.equal(v('meridian_health_transitions_total', { ...t, to: 'healthy', source: 'active' }), 1);
    assert.equal(v('meridian_health_transitions_total', { ...t, to: 'unhealthy', source: 'outlier' }), 1);
    assert.equal(family(families, 'meridian_health_transitions_total').metrics.length, 3);
    assert.equal(v('meridian_ejections_total', { ...t, reason: 'consecutive_5xx' }), 1);
    assert.equal(v('meridian_health_checks_total', { ...t, result: 'success' }), 2);
    assert.equal(v('meridian_health_checks_total', { ...t, result: 'timeout' }), 1);
    assert.equal(v('meridian_health_checks_total', { ...t, result: 'failure' }), 1);
    assert.equal(v('meridian_config_reloads_total', { result: 'success' }), 2);
    assert.equal(v('meridian_config_reloads_total', { result: 'failure' }), 1);
  });
});

describe('ProxyMetrics: state gauges read from the source at scrape time', () => {
  const clusters: ClusterState[] = [
    {
      name: 'api',
      policy: 'least_request',
      inPanic: false,
      endpoints: [
        endpoint('10.0.0.1:80', { active: 3, effectiveWeight: 2, latencyEwmaMs: 12.5, poolOpen: 5, poolIdle: 2 }),
        endpoint('10.0.0.2:80', { status: 'ejected', effectiveWeight: 0, active: 1, latencyEwmaMs: 900, poolOpen: 1 }),
        endpoint('10.0.0.3:80', { status: 'slow_start', effectiveWeight: 0.25 }),
      ],
      localities: [
        { region: 'us-east', zone: 'a', priority: 0, remote: false, hosts: 3, healthy: 2, share: 0.9, panic: false, active: 4, maxRequestsPerSecond: 100, maxInFlight: undefined, spilledOut: 7, spilledIn: 0 },
        { region: 'eu-west', zone: undefined, priority: 1, remote: true, hosts: 1, healthy: 1, share: 0.1, panic: false, active: 0, maxRequestsPerSecond: undefined, maxInFlight: undefined, spilledOut: 0, spilledIn: 7 },
      ],
    },
    { name: 'db', policy: 'maglev', inPanic: true, endpoints: [endpoint('db-1', { status: 'unhealthy', active: 4 }), endpoint('db-2', { status: 'draining' })] },
  ];

  it('match the source: status as a state set, in flight, weight, latency, pools, panic', async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    m.setSource(() => clusters);
    const { families } = await scrape(m);
    const v = (name: string, labels: Record<string, string>): number => value(families, name, labels);

    // One series per status for every endpoint: 1 on the current status, 0 on the others.
    const status = family(families, 'meridian_endpoint_status');
    assert.equal(status.type, 'GAUGE');
    assert.equal(status.metrics.length, 5 * HEALTH_STATUSES.length);
    for (const c of clusters) {
      for (const e of c.endpoints) {
        for (const s of HEALTH_STATUSES) {
          assert.equal(v('meridian_endpoint_status', { cluster: c.name, endpoint: e.id, status: s }), s === e.status ? 1 : 0, `${e.id} ${s}`);
        }
        const l = { cluster: c.name, endpoint: e.id };
        assert.equal(v('meridian_endpoint_in_flight', l), e.active);
        assert.equal(v('meridian_endpoint_weight', l), e.effectiveWeight);
        assert.equal(v('meridian_endpoint_latency_ewma_seconds', l), e.latencyEwmaMs / 1000);
        assert.equal(v('meridian_endpoint_pool_connections', { ...l, state: 'open' }), e.poolOpen);
        assert.equal(v('meridian_endpoint_pool_connections', { ...l, state: 'idle' }), e.poolIdle);
      }
    }
    assert.equal(v('meridian_endpoint_latency_ewma_seconds', { cluster: 'api', endpoint: '10.0.0.1:80' }), 0.0125);
    assert.equal(v('meridian_cluster_panic', { cluster: 'api' }), 0);
    assert.equal(v('meridian_cluster_panic', { cluster: 'db' }), 1);
    assert.equal(v('meridian_locality_traffic_share', { cluster: 'api', region: 'us-east', zone: 'a', priority: '0' }), 0.9);
    assert.equal(v('meridian_locality_traffic_share', { cluster: 'api', region: 'eu-west', zone: '', priority: '1' }), 0.1);
    assert.equal(v('meridian_locality_spilled_requests', { cluster: 'api', region: 'us-east', zone: 'a', priority: '0', direction: 'out' }), 7);
    assert.equal(v('meridian_locality_spilled_requests', { cluster: 'api', region: 'eu-west', zone: '', priority: '1', direction: 'in' }), 7);
    assert.equal(v('meridian_cluster_in_flight', { cluster: 'api' }), 4);
    assert.equal(v('meridian_cluster_in_flight', { cluster: 'db' }), 4);
  });

  it('read the source once per scrape, and drop endpoints and clusters that are gone', async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    let calls = 0;
    let current = clusters;
    m.setSource(() => {
      calls++;
      return current;
    });
    await scrape(m);
    assert.equal(calls, 1);
    current = [{ ...(clusters[0] as ClusterState), endpoints: [endpoint('10.0.0.1:80', { active: 7 })] }];
    const { families } = await scrape(m);
    assert.equal(calls, 2);
    assert.equal(family(families, 'meridian_endpoint_in_flight').metrics.length, 1);
    assert.equal(value(families, 'meridian_endpoint_in_flight', { cluster: 'api', endpoint: '10.0.0.1:80' }), 7);
    assert.equal(family(families, 'meridian_endpoint_status').metrics.length, HEALTH_STATUSES.length);
    assert.deepEqual(
      family(families, 'meridian_cluster_panic').metrics.map((s) => s.labels?.cluster),
      ['api'],
    );
  });

  it('without a source, have no series; a source that throws fails the scrape', async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    const { families } = await scrape(m);
    for (const name of ['meridian_endpoint_status', 'meridian_endpoint_in_flight', 'meridian_cluster_panic']) {
      assert.equal(families.find((f) => f.name === name)?.metrics.length ?? 0, 0, name);
    }
    m.setSource(() => {
      throw new Error('proxy is gone');
    });
    await assert.rejects(m.metricsText(), /proxy is gone/);
    m.setSource(() => clusters);
    assert.equal(family((await scrape(m)).families, 'meridian_cluster_panic').metrics.length, 2);
  });
});

describe('ProxyMetrics: the exposition as a whole', () => {
  it('parses, has HELP text on every metric, no duplicate series, and only meridian_ names (process metrics included)', async () => {
    const m = new ProxyMetrics();
    exerciseAll(m);
    const { text, families } = await scrape(m);
    assert.ok(families.length > 20);
    assert.ok(families.some((f) => f.name === 'meridian_process_cpu_seconds_total'));
    const names = families.map((f) => f.name);
    assert.equal(new Set(names).size, names.length, 'a family appears twice');
    for (const f of families) {
      assert.ok(f.name.startsWith('meridian_'), f.name);
      assert.ok(f.help.trim().length > 0, `${f.name} has no HELP text`);
      assert.doesNotMatch(f.help, /\n/);
    }
    // Every sample line names a distinct series.
    const series = text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => {
        const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) \S+$/.exec(line);
        assert.ok(match, `unparsable sample line: ${line}`);
        return match[1];
      });
    const dup = series.filter((s, i) => series.indexOf(s) !== i);
    assert.deepEqual(dup, []);
  });

  it('is its own registry: two instances do not share series', async () => {
    const a = new ProxyMetrics({ defaultMetrics: false });
    const b = new ProxyMetrics({ defaultMetrics: false });
    a.retry('api', 'timeout');
    assert.equal(value((await scrape(a)).families, 'meridian_retries_total', { cluster: 'api', reason: 'timeout' }), 1);
    assert.equal(family((await scrape(b)).families, 'meridian_retries_total').metrics.length, 0);
    assert.match(a.contentType, /^text\/plain; version=0\.0\.4/);
  });
});

describe('docs/metrics.md', () => {
  const docs = readFileSync(DOCS, 'utf8');
  /** Rows of the form: | `name` | type | `label`, `label` | help text | */
  const rows = new Map(
    [...docs.matchAll(/^\| `(meridian_[a-z0-9_]+)` \| (counter|gauge|histogram) \| ([^|]*) \| (.+) \|$/gm)].map((r) => [
      r[1] as string,
      { type: r[2] as string, labels: [...(r[3] as string).matchAll(/`([a-z_]+)`/g)].map((l) => l[1] as string), help: r[4] as string },
    ]),
  );

  it("documents each of Meridian's metrics with its type, labels and exact help text, and nothing else", async () => {
    const m = new ProxyMetrics({ defaultMetrics: false });
    exerciseAll(m);
    // The global layer's counters, on the same registry as Meridian registers them.
    const layer = new GlobalLayer(globalConfig().global!, { log: quiet, registry: m.registry });
    layer.setRegionOverride('us-east', 'down');
    const dns = DnsMetrics.for(m.registry);
    dns.query('udp', 'NOERROR');
    dns.decision('www.meridian.test', 'eu-west', 'failover');
    dns.rateLimited('drop');
    // The fleet's, on the same registry as Meridian registers them with sync: configured.
    const fleet = new FleetMetrics(m.registry);
    fleet.setUp(true);
    fleet.setUp(false);
    fleet.error('limit');
    fleet.setLiveSource(() => [{ node: 'n1', region: 'eu-west', version: '0.1.0', ageMs: 100 }]);
    fleet.strong('admitted');
    fleet.debited(3);
    fleet.control('sent');
    const { text, families } = await scrape(m);
    const lines = sampleLines(text);
    for (const f of families) {
      const row = rows.get(f.name);
      assert.ok(row, `${f.name} is not in docs/metrics.md: add a row | \`${f.name}\` | type | labels | help |`);
      assert.equal(row.type, f.type.toLowerCase(), `${f.name}: type`);
      const names = f.type === 'HISTOGRAM' ? [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`] : [f.name];
      const ofFamily = lines.filter((l) => names.includes(l.name));
      assert.ok(ofFamily.length > 0, `${f.name}: no samples to read its labels from`);
      const labels = new Set(ofFamily.flatMap((l) => Object.keys(l.labels)).filter((l) => l !== 'le'));
      assert.deepEqual([...row.labels].sort(), [...labels].sort(), `${f.name}: labels`);
      assert.equal(row.help, f.help, `${f.name}: the meaning in docs/metrics.md must be the HELP text`);
    }
    const stale = [...rows.keys()].filter((name) => !families.some((f) => f.name === name));
    assert.deepEqual(stale, [], 'docs/metrics.md lists metrics that do not exist');
  });

  it('names every process and Node.js metric registered by default', async () => {
    const m = new ProxyMetrics();
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    const missing = names.filter((n) => !docs.includes(`\`${n}\``));
    assert.deepEqual(missing, []);
  });
});

describe('mergeExpositions (a worker pool primary: the workers\' metrics and its own)', () => {
  it('writes a family both hold once, with the samples of both, summing a series both hold', async () => {
    const workers = new ProxyMetrics({ defaultMetrics: false });
    workers.internalError('http2_session', 'ECONNRESET');
    workers.internalError('health_check', 'TypeError');
    workers.reload(true);
    const primary = new Registry();
    const own = internalErrorsCounter(primary);
    own.inc({ component: 'dns_responder', cause: 'TypeError' });
    own.inc({ component: 'health_check', cause: 'TypeError' }, 2);
    const merged = mergeExpositions(await workers.metricsText(), await primary.metrics());
    assert.equal(merged.match(/^# TYPE meridian_internal_errors_total counter$/gm)?.length, 1);
    const families = parse(merged);
    const errors = families.find((f) => f.name === 'meridian_internal_errors_total');
    assert.deepEqual(
      errors?.metrics.map((m) => [m.labels?.['component'], m.labels?.['cause'], m.value]),
      [
        ['http2_session', 'ECONNRESET', '1'],
        ['health_check', 'TypeError', '3'],
        ['dns_responder', 'TypeError', '1'],
      ],
    );
    assert.equal(families.find((f) => f.name === 'meridian_config_reloads_total')?.metrics.length, 2, 'families of one side pass through');
  });
});
