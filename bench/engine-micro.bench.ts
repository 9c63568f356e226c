/**
 * The engine's per-request pieces in isolation, in ns per call: parsing a request head and
 * a response head, building the head sent upstream, and the request's header object. The proxy benchmarks see changes
 * of 1-2% of a request's CPU only through the noise of wrk, nginx and the kernel; these
 * see them directly. Each build named runs in a fresh process, in turn, several times.
 *
 *   git worktree add /tmp/base <rev> && (cd /tmp/base && npm install && npm run build)
 *   npm run build && node dist/bench/engine-micro.bench.js /tmp/base/dist dist [--runs 3]
 *
 * With no build named it measures its own (`dist`).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './stats.js';

/** Heads as wrk, nginx and a browser send them. */
const WRK_REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n';
const NGINX_RESPONSE =
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 06:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 615\r\n' +
  'Last-Modified: Tue, 01 Dec 2026 06:00:00 GMT\r\nConnection: keep-alive\r\nETag: "abc-267"\r\nAccept-Ranges: bytes\r\n\r\n' +
  'x'.repeat(615);
const BROWSER_REQUEST =
  'GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n' +
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n' +
  'Connection: keep-alive\r\nCookie: a=1; b=2; session=abcdef0123456789\r\nUpgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n\r\n';

const CALLS = 200_000;

/** ns per call of `f`: the median of 7 rounds after one to warm up. */
function nsPerCall(f: () => unknown): number {
  let sink = 0;
  const round = (): number => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) sink += f() === undefined ? 0 : 1;
    return Number(process.hrtime.bigint() - t) / CALLS;
  };
  round();
  const rounds = Array.from({ length: 7 }, round);
  if (sink < 0) console.log(sink);
  return median(rounds);
}

/** In a child: measure the build at `dist` and print its results as JSON. */
async function measure(dist: string): Promise<Record<string, number>> {
  const load = (m: string) => import(pathToFileURL(path.join(dist, m)).href);
  const { HeadParser } = await load('src/http1/head-parser.js');
  const headers = await load('src/proxy/headers.js');
  const writer = await load('src/http1/request-writer.js');
  const { incomingHeaders } = await load('src/http1/incoming-headers.js');
  const limits = { maxHeadBytes: 64 * 1024, maxFields: 100 };
  const requests = new HeadParser(true, limits);
  const responses = new HeadParser(false, limits);
  const parse = (p: { reset(): void; execute(b: Buffer, off: number): number; head: { raw: string[] } }, text: string) => {
    const b = Buffer.from(text, 'latin1');
    return () => {
      p.reset();
      return p.execute(b, 0);
    };
  };
  const out: Record<string, number> = {
    'parse: wrk request': nsPerCall(parse(requests, WRK_REQUEST)),
    'parse: nginx response': nsPerCall(parse(responses, NGINX_RESPONSE)),
    'parse: browser request': nsPerCall(parse(requests, BROWSER_REQUEST)),
  };
  const fwd = { clientIp: '127.0.0.1', forwardedFor: '127.0.0.1', proto: 'http', host: 'example.com', fromTrustedPeer: false };
  for (const [name, text] of [
    ['wrk', WRK_REQUEST],
    ['browser', BROWSER_REQUEST],
  ] as const) {
    requests.reset();
    requests.execute(Buffer.from(text, 'latin1'), 0);
    const raw: string[] = requests.head.raw;
    // The header object the exchange reads anyway (routing, admission): made once, outside the timing.
    const object = incomingHeaders(raw);
    // The head sent upstream, as each build makes it from the client's fields.
    out[`upstream head: ${name}`] = nsPerCall(() => {
      const fields = headers.upstreamRequestFields?.(raw, 'example.com', fwd, 'rid', undefined);
      if (fields !== undefined) return writer.requestHead('GET', '/', fields, 0, 0);
      return writer.requestHead('GET', '/', headers.upstreamRequestHeaders(object, fwd, 'rid', undefined), 0, 0);
    });
    out[`header object: ${name}`] = nsPerCall(() => incomingHeaders(raw));
  }
  return out;
}

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await measure(process.argv[3] as string)));
} else {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string', default: '3' } } });
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const dists = positionals.length > 0 ? positionals.map((d) => path.resolve(d)) : [here];
  const results = new Map<string, Record<string, number[]>>(dists.map((d) => [d, {}]));
  for (let run = 0; run < Number(values.runs); run++) {
    for (const dist of dists) {
      const one = JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dist], { encoding: 'utf8' })) as Record<string, number>;
      const all = results.get(dist) as Record<string, number[]>;
      for (const [k, v] of Object.entries(one)) (all[k] ??= []).push(v);
    }
  }
  console.log(`Node ${process.version}; ns per call, median of ${values.runs} processes (each the median of 7 rounds of ${CALLS})`);
  const keys = Object.keys(results.get(dists[0] as string) as object);
  console.log(['', ...dists.map((d) => path.relative(process.cwd(), d) || '.')].map((s, i) => (i === 0 ? s.padEnd(26) : s.padStart(16))).join(''));
  for (const k of keys) console.log([k.padEnd(26), ...dists.map((d) => median((results.get(d) as Record<string, number[]>)[k] as number[]).toFixed(0).padStart(16))].join(''));
}
