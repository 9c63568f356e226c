/**
 * What a fleet's Redis-backed rate limits cost one node, measured side by side in one run.
 *
 *   node dist/bench/fleet.bench.js                 3 rounds (~1 min)
 *   node dist/bench/fleet.bench.js --rounds 5 --duration 3s --connections 32
 *   node dist/bench/fleet.bench.js --json
 *
 * One Meridian process (`meridian start`) with `sync:` to a redis-server started here,
 * in front of one sample backend, with four routes that differ only in their rate limit,
 * each set far above the offered load so that every request is admitted and only the
 * decision's cost shows: `none`; `local` (scope: local, today's bucket); `global-local`
 * (scope: global, consistency: local); `global-strong` (scope: global, consistency:
 * strong: one Redis call per request). Latency is measured from this process (Node,
 * keep-alive); throughput with wrk when installed (else from this process).
 *
 * - Latency: one connection, requests one after the other; p50 and p99 per route, and
 *   what each adds over `none`.
 * - Throughput: `--connections` concurrent loops for `--duration`; req/s per route and
 *   its ratio to `none` in the same round.
 * Rounds interleave the routes, each round starting with the next one, so machine noise
 * spreads over all of them; each figure is the median over rounds (ratios: of each round's
 * ratio to `none`). Nothing
 * is asserted. Needs redis-server (apt-get install -y redis-server) and a build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSampleBackend } from '../src/backend/sample-backend.js';
import { parseDuration } from '../src/config/duration.js';
import { freePorts } from './proxy/procs.js';
import { median } from './stats.js';

const ROUTES = ['none', 'local', 'global-local', 'global-strong'] as const;
type Route = (typeof ROUTES)[number];

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '2s' },
    connections: { type: 'string', default: '32' },
    requests: { type: 'string', default: '1500' },
    json: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds);
const DURATION_MS = parseDuration(args.duration) ?? 2000;
const CONNECTIONS = Number(args.connections);
const LATENCY_REQUESTS = Number(args.requests);

const children: ChildProcess[] = [];
const stopAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

function redisServer(): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin']) {
    const p = path.join(dir, 'redis-server');
    if (dir !== '' && existsSync(p)) return p;
  }
  return undefined;
}

function startProcess(cmd: string, argv: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}): ${out}`)));
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

function get(port: number, p: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function latency(port: number, route: Route): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < LATENCY_REQUESTS; i++) {
    const t = performance.now();
    const status = await get(port, `/${route}`);
    if (status !== 200) throw new Error(`/${route}: ${status}`);
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(ms.length * 0.5)] as number, p99: ms[Math.floor(ms.length * 0.99)] as number };
}

/** wrk's path, if installed: a C load generator leaves the machine's CPU to Meridian. */
const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => existsSync(p));

async function throughput(port: number, route: Route, durationMs = DURATION_MS): Promise<number> {
  if (WRK !== undefined) {
    // Not spawnSync: the sample backend runs in this process and must keep answering.
    const child = spawn(WRK, ['-t1', `-c${CONNECTIONS}`, `-d${Math.max(1, Math.round(durationMs / 1000))}s`, `http://127.0.0.1:${port}/${route}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => child.on('exit', r));
    if (/Non-2xx/.test(out)) throw new Error(`/${route}: non-2xx answers under wrk: ${out}`);
    return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  }
  let n = 0;
  const end = performance.now() + durationMs;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        if ((await get(port, `/${route}`)) === 200) n++;
      }
    }),
  );
  return (n * 1000) / (performance.now() - start);
}

async function main(): Promise<void> {
  const redisBin = redisServer();
  if (redisBin === undefined) {
    console.log('fleet bench skipped: redis-server not found (apt-get install -y redis-server)');
    return;
  }
  const [redisPort, web, admin] = (await freePorts(3)) as [number, number, number];
  await startProcess(redisBin, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/);
  const backend = await startSampleBackend({ name: 'b' });
  const dir = mkdtempSync(path.join(tmpdir(), 'meridian-fleet-bench-'));
  const huge = { requests_per_second: 1e9, burst: 1e9 };
  const limits: Record<Route, unknown> = {
    none: undefined,
    local: huge,
    'global-local': { ...huge, scope: 'global', consistency: 'local' },
    'global-strong': { ...huge, scope: 'global', consistency: 'strong' },
  };
  writeFileSync(
    path.join(dir, 'meridian.json'),
    JSON.stringify({
      admin: { address: '127.0.0.1', port: admin },
      access_log: { enabled: false },
      sync: { redis: `redis://127.0.0.1:${redisPort}`, node: 'bench', key_prefix: `bench${process.pid}` },
      listeners: [
        {
          name: 'web',
          address: '127.0.0.1',
          port: web,
          routes: ROUTES.map((r) => ({ match: { path: { exact: `/${r}` } }, cluster: 'c', ...(limits[r] === undefined ? {} : { rate_limit: limits[r] }) })),
        },
      ],
      clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${backend.port}` }] }],
    }),
  );
  try {
    await startProcess(process.execPath, ['dist/src/cli/bin.js', 'start', '-c', path.join(dir, 'meridian.json')], /meridian is running/);
    // Warm up every route (JIT, the Redis script cache), and open the loader's connections
    // and Meridian's upstream pool, so the first measured run does not pay for them.
    for (const r of ROUTES) for (let i = 0; i < 300; i++) await get(web, `/${r}`);
    for (const r of ROUTES) await throughput(web, r, 500);
    const lat: Record<Route, { p50: number[]; p99: number[] }> = Object.fromEntries(ROUTES.map((r) => [r, { p50: [], p99: [] }])) as never;
    const rps: Record<Route, number[]> = Object.fromEntries(ROUTES.map((r) => [r, []])) as never;
    const ratio: Record<Route, number[]> = Object.fromEntries(ROUTES.map((r) => [r, []])) as never;
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts with a different route, so no route always runs first.
      const order = ROUTES.map((_, i) => ROUTES[(i + round) % ROUTES.length] as Route);
      for (const r of order) {
        const l = await latency(web, r);
        lat[r].p50.push(l.p50);
        lat[r].p99.push(l.p99);
      }
      const thisRound = {} as Record<Route, number>;
      for (const r of order) rps[r].push((thisRound[r] = await throughput(web, r)));
      for (const r of ROUTES) ratio[r].push(thisRound[r] / thisRound.none);
    }
    const rows = ROUTES.map((r) => ({
      route: r,
      p50_ms: median(lat[r].p50),
      p99_ms: median(lat[r].p99),
      added_p50_ms: median(lat[r].p50.map((v, i) => v - (lat.none.p50[i] as number))),
      added_p99_ms: median(lat[r].p99.map((v, i) => v - (lat.none.p99[i] as number))),
      req_per_s: median(rps[r]),
      ratio_to_none: median(ratio[r]),
    }));
    if (args.json) {
      console.log(JSON.stringify({ rounds: ROUNDS, durationMs: DURATION_MS, connections: CONNECTIONS, latencyRequests: LATENCY_REQUESTS, rows }));
      return;
    }
    console.log(`fleet bench: one node, redis-server on loopback; medians of ${ROUNDS} interleaved rounds`);
    console.log(`latency: 1 connection, ${LATENCY_REQUESTS} requests per route per round; throughput (${WRK === undefined ? 'node loader' : 'wrk'}): ${CONNECTIONS} connections for ${DURATION_MS} ms\n`);
    console.log('route          p50 ms  p99 ms  +p50 ms  +p99 ms   req/s  ratio');
    for (const x of rows) {
      console.log(
        `${x.route.padEnd(14)} ${x.p50_ms.toFixed(2).padStart(6)} ${x.p99_ms.toFixed(2).padStart(7)} ${x.added_p50_ms.toFixed(2).padStart(8)} ${x.added_p99_ms.toFixed(2).padStart(8)} ${x.req_per_s.toFixed(0).padStart(7)}  ${x.ratio_to_none.toFixed(2)}`,
      );
    }
  } finally {
    stopAll();
    await backend.close();
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
