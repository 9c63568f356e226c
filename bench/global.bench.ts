/**
 * The global layer's costs, side by side with their baselines:
 *
 * 1. A pick through a Cluster with localities (3 regions x 100 endpoints: priority
 *    levels, a remote locality, a capacity to check) against the same 300 endpoints as
 *    one flat cluster — what locality-aware routing adds per request.
 * 2. The DNS responder's answers per second over UDP from one client socket keeping
 *    `--inflight` queries outstanding, ECS geo steering on every query. The client runs in
 *    the same process (one event loop for both), so the figure is a lower bound.
 *
 *   npm run build && node dist/bench/global.bench.js [--quick] [--json]
 *
 * Medians of 5 runs; the machine is shared, so read ratios rather than absolutes.
 */
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { encode } from 'dns-packet';
import pino from 'pino';
import { validateConfig } from '../src/config/index.js';
import { Cluster, ManualClock, SeededRng, type Endpoint } from '../src/core/index.js';
import { GlobalLayer } from '../src/global/global-layer.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'boolean' }, inflight: { type: 'string', default: '32' } } });
const RUNS = 5;
const PICKS = values.quick ? 200_000 : 2_000_000;
const DNS_MS = values.quick ? 500 : 2000;

function endpoints(localities: boolean): Endpoint[] {
  const regions = ['us-east', 'eu-west', 'ap-south'];
  return regions.flatMap((region, r) =>
    Array.from({ length: 100 }, (_, i) => ({
      id: `${region}-${i}`,
      address: `10.${r}.${i >> 8}.${i & 255}:80`,
      weight: 1,
      ...(localities ? { locality: { region, priority: r, remote: r === 2, ...(r === 0 ? { maxInFlight: 10_000 } : {}) } } : {}),
    })),
  );
}

/** ns per pick + onStart + onEnd. */
function pickCost(localities: boolean): number {
  const clock = new ManualClock(0);
  const cluster = new Cluster('bench', endpoints(localities), { policy: 'least_request', clock, rng: new SeededRng(1) });
  const outcome = { status: 200, latencyMs: 1 };
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      const h = cluster.pick();
      if (h === undefined) throw new Error('no host');
      cluster.onStart(h);
      cluster.onEnd(h, outcome);
    }
  };
  loop(PICKS / 10); // warm up the JIT
  const t0 = performance.now();
  loop(PICKS);
  return ((performance.now() - t0) * 1e6) / PICKS;
}

async function dnsQps(inflight: number): Promise<number> {
  const r = validateConfig({
    global: {
      dns: { address: '127.0.0.1', port: 0, zone: 'bench.test' },
      regions: [
        { name: 'us-east', location: { lat: 39, lon: -77.5 }, addresses: ['192.0.2.1'] },
        { name: 'eu-west', location: { lat: 53.3, lon: -6.3 }, addresses: ['192.0.2.2'] },
        { name: 'ap-south', location: { lat: 19.1, lon: 72.9 }, addresses: ['192.0.2.3'] },
      ],
      geo: { cidrs: [{ cidr: '198.51.100.0/24', location: { lat: 51.5, lon: -0.1 } }] },
      hostnames: [{ name: 'www.bench.test', policy: 'geo' }],
    },
  });
  if (!r.ok || r.config.global === undefined) throw new Error(`bench config: ${r.ok ? 'no global' : r.errors.join('; ')}`);
  const layer = new GlobalLayer(r.config.global, { log: pino({ level: 'silent' }) });
  await layer.start();
  const port = layer.ports().dns;
  const query = encode({
    type: 'query',
    id: 1,
    flags: 1 << 8,
    questions: [{ type: 'A', name: 'www.bench.test' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: '198.51.100.0' }] } as never],
  });
  const sock = createSocket('udp4');
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
  let answered = 0;
  let sent = 0;
  let stop = false;
  const send = () => {
    sent++;
    sock.send(query, port, '127.0.0.1');
  };
  sock.on('message', () => {
    answered++;
    if (!stop) send();
  });
  const t0 = performance.now();
  for (let i = 0; i < inflight; i++) send();
  // Each reply sends the next query; a datagram lost under load shrinks the window, so top it up.
  const topUp = setInterval(() => {
    for (let i = inflight - (sent - answered); i > 0; i--) send();
  }, 50);
  await new Promise((r2) => setTimeout(r2, DNS_MS));
  stop = true;
  const counted = answered;
  const elapsed = performance.now() - t0;
  clearInterval(topUp);
  await new Promise((r2) => setTimeout(r2, 100)); // let the last replies land before closing
  sock.close();
  await layer.close();
  return (counted / elapsed) * 1000;
}

async function main(): Promise<void> {
  const flat: number[] = [];
  const local: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    flat.push(pickCost(false));
    local.push(pickCost(true));
  }
  const inflight = Number(values.inflight);
  const qps: number[] = [];
  for (let i = 0; i < RUNS; i++) qps.push(await dnsQps(inflight));
  const result = {
    pick_ns: { flat: median(flat), localities: median(local), ratio: median(local) / median(flat) },
    dns: { answers_per_s: median(qps), inflight, runs: qps.map(Math.round) },
  };
  if (values.json) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(`Pick + onStart + onEnd, least_request, 300 endpoints (medians of ${RUNS})`);
  console.log(`  one flat cluster:                          ${result.pick_ns.flat.toFixed(1)} ns`);
  console.log(`  3 localities (priorities, remote, capped): ${result.pick_ns.localities.toFixed(1)} ns  (${result.pick_ns.ratio.toFixed(2)}x)`);
  console.log(`DNS responder, UDP, one client socket in the same process, ${inflight} queries in flight, ECS geo steering (medians of ${RUNS} x ${DNS_MS} ms)`);
  console.log(`  ${Math.round(result.dns.answers_per_s).toLocaleString('en-US')} answers/s  (runs: ${result.dns.runs.join(', ')})`);
}

await main();
