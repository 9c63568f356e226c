/**
 * A 10x spike through a real Meridian (issue 14, docs/overload.md): `meridian backend`
 * processes of known capacity (`--concurrency` workers each, latency `--latency`), their
 * pool's capacity measured first (closed loop, straight at the backends), then the demo's
 * open-loop load generator at `--base` x capacity, `--multiply` x that for `--spike`, and
 * back. Each mode is a Meridian process of its own, run in turn (interleaved over
 * `--runs`):
 *
 *   adaptive  clusters[].adaptive_concurrency: {} and nothing sized by hand
 *   static    circuit_breaker.max_requests sized by hand (2 x the pool's workers)
 *   none      neither (the default breaker of 1,024)
 *
 * Reported per mode and phase (before, spike, after): goodput (200s answered within the
 * cluster's 1 s request timeout, per second, and as a share of the measured capacity), the
 * p99 of those 200s, refusals (503) per second with their p99 latency, other failures,
 * and Meridian's peak resident memory (VmRSS, read from /proc each second).
 *
 *   npm run bench:spike
 *   node dist/bench/spike.bench.js --spike 30s --runs 3 --json
 *
 * The load generator is the demo's (src/demo/load.ts: open loop, 128 connections per
 * origin): a proxy that holds requests until they time out also holds the generator's
 * connections, and its requests then wait in the generator's own queue, as a real client's
 * would. What is reported is what that client sees.
 *
 * Every process started here is stopped at the end, on error and on SIGINT/SIGTERM.
 * Latencies are the load generator's (the same machine): on a shared machine, compare the
 * modes within one run, not figures across runs.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { parseDuration } from '../src/config/index.js';
import { LoadGenerator } from '../src/demo/load.js';
import { freePorts, ProcessGroup, sleep, waitReady, type Proc } from './proxy/procs.js';
import { median } from './stats.js';

const USAGE = `usage: node dist/bench/spike.bench.js [options]
  --backends N       meridian backend processes (default 2)
  --concurrency C    workers per backend (default 4)
  --latency SPEC     backend latency (default exp:20ms): capacity = N x C / mean
  --base F           load before and after the spike, x measured capacity (default 0.5)
  --multiply M       the spike, x the base load (default 10)
  --before D         (default 10s)   --spike D (default 20s)   --after D (default 10s)
  --modes LIST       adaptive,static,none (default adaptive,none)
  --runs R           rounds over the modes; medians reported (default 1)
  --json             one JSON object instead of the table`;

const MODES = ['adaptive', 'static', 'none'] as const;
type Mode = (typeof MODES)[number];
const PHASES = ['before', 'spike', 'after'] as const;
type Phase = (typeof PHASES)[number];
/** The cluster's request timeout: an answer after it is a failure, not goodput. */
const TIMEOUT_MS = 1000;

interface Options {
  readonly backends: number;
  readonly concurrency: number;
  readonly latency: string;
  readonly base: number;
  readonly multiply: number;
  readonly beforeMs: number;
  readonly spikeMs: number;
  readonly afterMs: number;
  readonly modes: readonly Mode[];
  readonly runs: number;
  readonly json: boolean;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      backends: { type: 'string' },
      concurrency: { type: 'string' },
      latency: { type: 'string' },
      base: { type: 'string' },
      multiply: { type: 'string' },
      before: { type: 'string' },
      spike: { type: 'string' },
      after: { type: 'string' },
      modes: { type: 'string' },
      runs: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  const num = (name: string, v: string | undefined, def: number, min: number): number => {
    const n = v === undefined ? def : Number(v);
    if (!(n >= min) || !Number.isFinite(n)) throw new Error(`--${name} must be a number >= ${min}, got '${v}'`);
    return n;
  };
  const dur = (name: string, v: string | undefined, def: string): number => {
    const ms = parseDuration(v ?? def);
    if (ms === undefined || ms <= 0) throw new Error(`--${name} must be a duration such as 10s, got '${v}'`);
    return ms;
  };
  const modes = (values.modes ?? 'adaptive,none').split(',');
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode '${m}' (adaptive, static, none)`);
  return {
    backends: Math.floor(num('backends', values.backends, 2, 1)),
    concurrency: Math.floor(num('concurrency', values.concurrency, 4, 1)),
    latency: values.latency ?? 'exp:20ms',
    base: num('base', values.base, 0.5, 0.01),
    multiply: num('multiply', values.multiply, 10, 1),
    beforeMs: dur('before', values.before, '10s'),
    spikeMs: dur('spike', values.spike, '20s'),
    afterMs: dur('after', values.after, '10s'),
    modes: modes as Mode[],
    runs: Math.floor(num('runs', values.runs, 1, 1)),
    json: values.json === true,
  };
}

/**
 * Closed loop straight at the backends, far more clients than workers: what the pool
 * completes per second, counted after a second's warm-up (connections opened, JIT warm).
 */
async function measureCapacity(ports: readonly number[], clients: number, ms: number): Promise<number> {
  const pools = ports.map((p) => new Pool(`http://127.0.0.1:${p}`, { connections: clients }));
  let done = 0;
  const from = performance.now() + 1000;
  const end = from + ms;
  let i = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const pool = pools[i++ % pools.length] as Pool;
      const res = await pool.request({ path: '/', method: 'GET' });
      await res.body.dump();
      const now = performance.now();
      if (res.statusCode === 200 && now >= from && now < end) done++;
    }
  };
  await Promise.all(Array.from({ length: clients * ports.length }, loop));
  await Promise.all(pools.map((p) => p.close()));
  return (done * 1000) / ms;
}

function configFor(mode: Mode, o: Options, listen: number, admin: number, backendPorts: readonly number[]): unknown {
  return {
    admin: { address: '127.0.0.1', port: admin },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: listen, routes: [{ cluster: 'pool' }] }],
    clusters: [
      {
        name: 'pool',
        policy: 'least_request',
        endpoints: backendPorts.map((p, i) => ({ id: `b${i}`, address: `127.0.0.1:${p}` })),
        timeouts: { request: `${TIMEOUT_MS}ms` },
        ...(mode === 'adaptive' ? { adaptive_concurrency: {} } : {}),
        ...(mode === 'static' ? { circuit_breaker: { max_requests: 2 * o.backends * o.concurrency } } : {}),
      },
    ],
  };
}

interface PhaseStats {
  ok: number[];
  refused: number[];
  other: number;
  seconds: number;
}

interface PhaseResult {
  readonly goodput_per_s: number;
  readonly refusal_p50_ms: number;
  readonly goodput_share: number;
  readonly admitted_p99_ms: number;
  readonly refused_per_s: number;
  readonly refusal_p99_ms: number;
  readonly other_failures: number;
}

/** One second of a run: requests answered 200 in time, refused, and the p99 of the 200s. */
interface Second {
  readonly t: number;
  readonly ok: number;
  readonly refused: number;
  readonly p99_ms: number;
}

interface RunResult {
  readonly mode: Mode;
  readonly seconds: readonly Second[];
  readonly phases: Record<Phase, PhaseResult>;
  readonly peak_rss_mb: number;
  readonly dropped_by_client_cap: number;
}

const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return 0;
  const s = xs.sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] as number;
};
const p99 = (xs: number[]): number => quantile(xs, 0.99);

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function runMode(mode: Mode, o: Options, capacity: number, proc: Proc, port: number): Promise<RunResult> {
  const stats: Record<Phase, PhaseStats> = {
    before: { ok: [], refused: [], other: 0, seconds: o.beforeMs / 1000 },
    spike: { ok: [], refused: [], other: 0, seconds: o.spikeMs / 1000 },
    after: { ok: [], refused: [], other: 0, seconds: o.afterMs / 1000 },
  };
  let phase: Phase = 'before';
  const base = capacity * o.base;
  const seconds: Second[] = [];
  let second = { ok: [] as number[], refused: 0 };
  const t0 = performance.now();
  const gen = new LoadGenerator({
    clients: [{ geo: 'bench', weight: 1, host: '127.0.0.1', port }],
    rate: base,
    maxInFlight: 20_000,
    onResult: (r) => {
      const s = stats[phase];
      if (r.status === 200 && r.ms <= TIMEOUT_MS) {
        s.ok.push(r.ms);
        second.ok.push(r.ms);
      } else if (r.status === 503) {
        s.refused.push(r.ms);
        second.refused++;
      } else s.other++;
    },
  });
  let peak = rssMb(proc.pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(proc.pid));
    seconds.push({ t: Math.round((performance.now() - t0) / 1000), ok: second.ok.length, refused: second.refused, p99_ms: Math.round(p99(second.ok)) });
    second = { ok: [], refused: 0 };
  }, 1000);
  let dropped: number;
  try {
    gen.start();
    await sleep(o.beforeMs);
    phase = 'spike';
    gen.rate = base * o.multiply;
    await sleep(o.spikeMs);
    phase = 'after';
    gen.rate = base;
    await sleep(o.afterMs);
    dropped = gen.takeDropped();
  } finally {
    clearInterval(sampler);
    await gen.stop();
  }
  const phases = {} as Record<Phase, PhaseResult>;
  for (const ph of PHASES) {
    const s = stats[ph];
    const goodput = s.ok.length / s.seconds;
    phases[ph] = {
      goodput_per_s: Math.round(goodput),
      goodput_share: Math.round((goodput / capacity) * 1000) / 1000,
      admitted_p99_ms: Math.round(p99(s.ok) * 10) / 10,
      refused_per_s: Math.round(s.refused.length / s.seconds),
      refusal_p50_ms: Math.round(quantile(s.refused, 0.5) * 10) / 10,
      refusal_p99_ms: Math.round(p99(s.refused) * 10) / 10,
      other_failures: s.other,
    };
  }
  return { mode, seconds, phases, peak_rss_mb: Math.round(peak), dropped_by_client_cap: dropped };
}

async function main(): Promise<number> {
  let o: Options | 'help';
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`spike.bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const opts: Options = o;
  const bin = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
  if (!existsSync(bin)) {
    process.stderr.write(`spike.bench: ${bin} not found; build first: npm run build\n`);
    return 2;
  }
  const log = (s: string): void => void process.stderr.write(`spike.bench: ${s}\n`);
  const group = new ProcessGroup();
  const onSignal = (): void => void group.stopAll(1000).finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => group.killAllSync());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-spike-'));
  try {
    const backendPorts = await freePorts(opts.backends);
    const backends = backendPorts.map((p, i) =>
      group.spawn(`b${i}`, process.execPath, [bin, 'backend', '--port', String(p), '--name', `b${i}`, '--latency', opts.latency, '--concurrency', String(opts.concurrency)]),
    );
    await Promise.all(backends.map((b, i) => waitReady(backendPorts[i] as number, b)));
    const capacity = await measureCapacity(backendPorts, 4 * opts.concurrency, 5000);
    log(`pool of ${opts.backends} x ${opts.concurrency} workers (${opts.latency}): measured capacity ${Math.round(capacity)} req/s; base ${Math.round(capacity * opts.base)}, spike ${Math.round(capacity * opts.base * opts.multiply)} req/s`);
    const results: RunResult[] = [];
    for (let run = 0; run < opts.runs; run++) {
      for (const mode of opts.modes) {
        const [listen, admin] = (await freePorts(2)) as [number, number];
        const conf = path.join(dir, `${mode}.json`);
        writeFileSync(conf, JSON.stringify(configFor(mode, opts, listen, admin, backendPorts)));
        const m = group.spawn(`meridian-${mode}`, process.execPath, [bin, 'start', '-c', conf]);
        await waitReady(listen, m);
        log(`run ${run + 1}/${opts.runs}: ${mode}`);
        results.push(await runMode(mode, opts, capacity, m, listen));
        await group.stop(m);
      }
    }
    const summary = opts.modes.map((mode) => {
      const mine = results.filter((r) => r.mode === mode);
      const med = (f: (r: RunResult) => number): number => median(mine.map(f));
      const phases = {} as Record<Phase, PhaseResult>;
      for (const ph of PHASES) {
        phases[ph] = {
          goodput_per_s: med((r) => r.phases[ph].goodput_per_s),
          goodput_share: med((r) => r.phases[ph].goodput_share),
          admitted_p99_ms: med((r) => r.phases[ph].admitted_p99_ms),
          refused_per_s: med((r) => r.phases[ph].refused_per_s),
          refusal_p50_ms: med((r) => r.phases[ph].refusal_p50_ms),
          refusal_p99_ms: med((r) => r.phases[ph].refusal_p99_ms),
          other_failures: med((r) => r.phases[ph].other_failures),
        };
      }
      // The last run's seconds: a series is not something to take a median of.
      const last = mine[mine.length - 1] as RunResult;
      return { mode, phases, peak_rss_mb: med((r) => r.peak_rss_mb), dropped_by_client_cap: med((r) => r.dropped_by_client_cap), seconds: last.seconds };
    });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ capacity_per_s: Math.round(capacity), options: opts, results: summary }, null, 2)}\n`);
    } else {
      const rows = [['mode', 'phase', 'goodput/s', 'of capacity', 'admitted p99 ms', 'refused/s', 'refusal p50 / p99 ms', 'other failures', 'peak RSS MB']];
      for (const r of summary) {
        for (const ph of PHASES) {
          const p = r.phases[ph];
          rows.push([r.mode, ph, String(p.goodput_per_s), `${Math.round(p.goodput_share * 100)}%`, String(p.admitted_p99_ms), String(p.refused_per_s), `${p.refusal_p50_ms} / ${p.refusal_p99_ms}`, String(p.other_failures), ph === 'before' ? String(r.peak_rss_mb) : '']);
        }
      }
      const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((row) => (row[c] as string).length)));
      for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padStart(widths[c] as number)).join('  ')}\n`);
      process.stdout.write(`capacity ${Math.round(capacity)} req/s (measured); medians of ${opts.runs} run(s) per mode\n`);
      // Goodput per second over the run, one bar per mode and second: the chart of the spike.
      const scale = 40 / Math.max(1, capacity * 1.2);
      process.stdout.write(`\ngoodput per second (# = ${Math.round(1 / scale)} req/s; the spike from ${opts.beforeMs / 1000} s to ${(opts.beforeMs + opts.spikeMs) / 1000} s)\n`);
      for (const r of summary) {
        process.stdout.write(`${r.mode}\n`);
        for (const sec of r.seconds) process.stdout.write(`${String(sec.t).padStart(4)} s ${'#'.repeat(Math.round(sec.ok * scale)).padEnd(42)} ${String(sec.ok).padStart(5)} ok, p99 ${String(sec.p99_ms).padStart(4)} ms, ${sec.refused} refused\n`);
      }
    }
    return 0;
  } finally {
    await group.stopAll(2000);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`spike.bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
