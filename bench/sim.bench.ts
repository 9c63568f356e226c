/**
 * The simulator at scale: 10 million requests through the real balancing code, with the
 * wall time and the peak memory (RSS high-water mark) of the process.
 *
 *   npm run bench                           core benchmarks, then this
 *   node dist/bench/sim.bench.js            this alone (~30-60 s on 2 cores)
 *   node dist/bench/sim.bench.js --quick    1 million requests
 *   node dist/bench/sim.bench.js --json     one JSON object
 *
 * Scenario: 100 servers (1 worker, exponential 0.9 ms mean service) behind least_request,
 * Poisson arrivals at 100,000/s for 100 s of virtual time (utilization 0.9), 1 s buckets,
 * no warm-up. A 1-million-request run goes first: peak RSS after it and after the 10-million
 * run shows whether memory grows with the number of requests (it should not: statistics
 * stream into counters and histograms).
 */
import { parseArgs } from 'node:util';
import { parseScenario, runPolicy } from '../src/sim/index.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'boolean' } } });

function scenario(durationS: number) {
  return parseScenario({
    name: 'sim-bench',
    seed: 1,
    duration: `${durationS}s`,
    bucket: '1s',
    regions: [{ name: 'r', servers: 100, service_time: { dist: 'exponential', mean: '0.9ms' } }],
    clients: [{ name: 'c', rate: '100000/s' }],
    policies: ['least_request'],
  });
}

interface Row {
  readonly requests: number;
  readonly wall_s: number;
  readonly requests_per_s: number;
  readonly peak_rss_mb: number;
  readonly heap_used_mb: number;
  readonly mean_ms: number;
}

function run(durationS: number): Row {
  const start = process.hrtime.bigint();
  const r = runPolicy(scenario(durationS), 'least_request');
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    requests: r.requests,
    wall_s: +wall.toFixed(2),
    requests_per_s: Math.round(r.requests / wall),
    peak_rss_mb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    heap_used_mb: +(process.memoryUsage().heapUsed / 1e6).toFixed(1),
    mean_ms: r.latency_ms.mean,
  };
}

const rows = [run(10)];
if (!values.quick) rows.push(run(100));
if (values.json) {
  console.log(JSON.stringify({ node: process.version, rows }, null, 2));
} else {
  console.log(`simulator scale (node ${process.version}; least_request, 100 servers, load 0.9)`);
  console.log('requests     wall s   requests/s   peak RSS MB   heap used MB   mean ms');
  for (const r of rows) {
    console.log(`${String(r.requests).padStart(10)}  ${r.wall_s.toFixed(2).padStart(7)}  ${String(r.requests_per_s).padStart(11)}  ${r.peak_rss_mb.toFixed(1).padStart(12)}  ${r.heap_used_mb.toFixed(1).padStart(13)}  ${r.mean_ms.toFixed(3).padStart(8)}`);
  }
}
