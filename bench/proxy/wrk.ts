/** Parsing the text wrk 4.x prints with `--latency`. */

export interface WrkResult {
  readonly requestsPerSec: number;
  /** Total requests completed in the run. */
  readonly requests: number;
  /** Latency percentiles in milliseconds, from the `Latency Distribution` block. */
  readonly p50Ms: number;
  readonly p75Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** `Non-2xx or 3xx responses: N` (absent from wrk's output when 0). */
  readonly non2xx: number;
  /** `Socket errors: connect A, read B, write C, timeout D` (absent when all 0). */
  readonly socketErrors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number };
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** `1.23ms`, `850.00us`, `2.01s` -> milliseconds. */
export function parseWrkDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (m === null) throw new Error(`wrk output: cannot read the duration "${text}"`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

function percentile(out: string, p: number): number {
  const m = new RegExp(`^\\s+${p}%\\s+(\\S+)\\s*$`, 'm').exec(out);
  if (m === null) throw new Error(`wrk output: no ${p}% line (was --latency passed?)`);
  return parseWrkDuration(m[1] as string);
}

export function parseWrk(out: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  if (rps === null) throw new Error('wrk output: no "Requests/sec:" line');
  const total = /^\s+(\d+) requests in /m.exec(out);
  const lat = /^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requestsPerSec: Number(rps[1]),
    requests: total === null ? 0 : Number(total[1]),
    p50Ms: percentile(out, 50),
    p75Ms: percentile(out, 75),
    p90Ms: percentile(out, 90),
    p99Ms: percentile(out, 99),
    meanMs: lat === null ? Number.NaN : parseWrkDuration(lat[1] as string),
    maxMs: lat === null ? Number.NaN : parseWrkDuration(lat[3] as string),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors:
      sock === null
        ? { connect: 0, read: 0, write: 0, timeout: 0 }
        : { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) },
  };
}

/** Every socket error of a run, summed. */
export function socketErrorCount(r: WrkResult): number {
  const s = r.socketErrors;
  return s.connect + s.read + s.write + s.timeout;
}
