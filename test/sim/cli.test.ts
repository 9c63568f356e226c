import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runPlan } from '../../src/cli/plan.js';
import { runSimulate } from '../../src/cli/simulate.js';
import { parseScenarioText } from '../../src/sim/index.js';

const dir = mkdtempSync(join(tmpdir(), 'meridian-sim-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(fn: typeof runSimulate | typeof runPlan, ...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await fn(argv, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) }, undefined as never);
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

const SMALL = `name: small
seed: 3
duration: 10s
warmup: 1s
regions: [ { name: r, servers: 4, service_time: { dist: exponential, mean: 10ms } } ]
clients: [ { name: c, rate: 200/s } ]
policies: [random, least_request]
events: [ { at: 5s, kill: r/1 }, { at: 8s, kill: r/2 }, { at: 8s, kill: r/3 } ]
`;

describe('meridian simulate', () => {
  const file = join(dir, 'small.yaml');
  writeFileSync(file, SMALL);

  it('prints one row per policy and writes JSON and a self-contained HTML file', async () => {
    const json = join(dir, 'out.json');
    const html = join(dir, 'out.html');
    const r = await run(runSimulate, file, '--json', json, '--html', html);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^random\s+\d+/m);
    assert.match(r.stdout, /^least_request\s+\d+/m);
    assert.equal(r.stderr, `wrote the JSON to ${json}\nwrote the HTML report to ${html}`);
    const report = JSON.parse(readFileSync(json, 'utf8')) as { bucket_s: number; duration_s: number; results: { policy: string; requests: number; completed: number; failed: number; latency_ms: Record<string, number>; servers: { id: string; utilization: number; completed: number }[]; timeseries: unknown[] }[] };
    assert.deepEqual(report.results.map((x) => x.policy), ['random', 'least_request']);
    for (const x of report.results) {
      assert.deepEqual(Object.keys(x.latency_ms).slice(0, 5), ['mean', 'p50', 'p90', 'p99', 'p999']);
      assert.equal(x.servers.length, 4);
      assert.deepEqual(Object.keys(x.servers[0] ?? {}), ['id', 'utilization', 'completed']);
      assert.equal(x.timeseries.length, Math.round(report.duration_s / report.bucket_s));
    }
    const page = readFileSync(html, 'utf8');
    assert.match(page, /^<!doctype html>/);
    assert.doesNotMatch(page, /<script[^>]+src=|<link[^>]+href=|https?:\/\//, 'nothing loaded from elsewhere');
    assert.match(page, /virtual time \(s\)/);
    assert.match(page, /latency \(ms\)/);
    assert.match(page, /kill r\/1/, 'events marked');
    // A dashed series (shed) has a dashed legend swatch, unlike its solid partner (failed) of the same colour.
    assert.match(page, /<line [^>]*stroke-dasharray="[^"]+"\/><text x="\d+">\w+ shed<\/text>/);
    assert.match(page, /<line (?![^>]*stroke-dasharray)[^>]*\/><text x="\d+">\w+ failed<\/text>/);
    assert.match(page, /kill r\/2 \+1 more/, 'simultaneous events share one label');
  });

  it('creates the folder of an output and names the absolute path it wrote, for a relative OUT', async () => {
    const rel = join('test-artifacts', `sim-${process.pid}`, 'nested', 'report.html');
    try {
      const r = await run(runSimulate, file, '--html', rel, '--policy', 'random');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, `wrote the HTML report to ${join(process.cwd(), rel)}`);
      assert.match(readFileSync(rel, 'utf8'), /^<!doctype html>/);
    } finally {
      rmSync(join('test-artifacts', `sim-${process.pid}`), { recursive: true, force: true });
    }
  });

  it('--json is byte-identical for the same seed', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    await run(runSimulate, file, '--json', a);
    await run(runSimulate, file, '--json', b);
    assert.equal(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
  });

  it('an invalid scenario exits 1 with every problem by path; bad arguments exit 2', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'duration: 5\nregions: []\nclients: [ { name: c, rate: x } ]\n');
    const r = await run(runSimulate, bad);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /duration: expected a duration/);
    assert.match(r.stderr, /regions: must not be empty/);
    assert.match(r.stderr, /clients\[0\]\.rate/);
    assert.equal((await run(runSimulate)).code, 2);
    assert.equal((await run(runSimulate, join(dir, 'missing.yaml'))).code, 2);
    assert.equal((await run(runSimulate, file, '--policy', 'nope')).code, 2);
  });

  it('--until ends a longer run early, at the same arrivals; one not past the warmup exits 2', async () => {
    const full = join(dir, 'full.json');
    const cut = join(dir, 'cut.json');
    await run(runSimulate, file, '--json', full, '--policy', 'random');
    assert.equal((await run(runSimulate, file, '--json', cut, '--policy', 'random', '--until', '4s')).code, 0);
    type Report = { duration_s: number; results: { requests: number; timeseries: { t_s: number; requests: number }[] }[] };
    const [a, b] = [full, cut].map((f) => JSON.parse(readFileSync(f, 'utf8')) as Report) as [Report, Report];
    assert.deepEqual([a.duration_s, b.duration_s], [10, 4]);
    // The same arrivals: the cut run's requests (past the 1 s warmup) are the full run's from 1 s to 4 s.
    const oneToFour = (a.results[0]?.timeseries ?? []).filter((x) => x.t_s >= 1 && x.t_s < 4).reduce((n, x) => n + x.requests, 0);
    assert.equal(b.results[0]?.requests, oneToFour);
    assert.equal((await run(runSimulate, file, '--until', '1s')).code, 2);
    assert.equal((await run(runSimulate, file, '--until', 'soon')).code, 2);
  });

  it('every example scenario is valid', () => {
    const examples = new URL('../../../examples/scenarios/', import.meta.url);
    const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 6);
    for (const f of files) parseScenarioText(readFileSync(new URL(f, examples), 'utf8'));
  });
});

describe('meridian plan', () => {
  it('works the issue example through: 100M users x 10 requests, peak x3', async () => {
    const r = await run(runPlan, '--dau', '100M', '--requests-per-user', '10', '--peak-factor', '3', '--json');
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(r.stdout) as { average_qps: number; peak_qps: number; rps_per_node: number; regions: { nodes: number }[]; peak_bandwidth_gbps: number };
    // 1e9 requests / 86400 s = 11,574/s; x3 = 34,722/s.
    assert.equal(p.average_qps, 11574);
    assert.equal(p.peak_qps, 34722);
    assert.equal(p.rps_per_node, 10_000);
    // 34,722 / (10,000 x 0.7) = 4.96 -> 5, + 1 spare.
    assert.equal(p.regions[0]?.nodes, 6);
    // 34,722 x 10 kB x 8 = 2.78 Gbit/s.
    assert.equal(p.peak_bandwidth_gbps, 2.78);
  });

  it('states the default per-node figure as measured, and refuses bad numbers', async () => {
    const help = await run(runPlan, '--help');
    assert.match(help.stdout, /measured figure \(bench\/proxy\.bench\.ts/);
    assert.equal((await run(runPlan, '--dau', 'lots', '--requests-per-user', '1', '--peak-factor', '2')).code, 2);
  });
});
