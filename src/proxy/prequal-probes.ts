/**
 * The mechanism of Prequal's probes in the proxy: a small HTTP client, off the request data
 * path, that asks the hosts a `prequal` cluster names (`Cluster.setProber`) for their
 * requests in flight and recent latency, and hands each reply to the core
 * (`Cluster.recordProbe`). The choice itself is the core's (src/core/prequal.ts).
 *
 * - One keep-alive `http.Agent` per cluster, a few sockets per endpoint: a probe costs a
 *   round trip on a warm connection, not a handshake.
 * - At most `maxOutstanding` probes in flight per cluster; past it a probe is skipped
 *   (counted), so a slow fleet cannot pile probes up behind requests.
 * - An endpoint that answers the probe path with anything but JSON `{ rif, latency_ms }`
 *   does not implement it: for the next minute its probes are answered locally, from this
 *   proxy's own in-flight count and peak-EWMA latency (`localProbeReply`), labelled
 *   `source="local"` in `meridian_prequal_probes_total`.
 * - A probe that fails (refused, reset, timed out) gives no reply: a host that cannot be
 *   reached is not a cold host.
 */
import http from 'node:http';
import type { Clock } from '../core/clock.js';
import type { Cluster, HostState } from '../core/cluster.js';
import { localProbeReply, PREQUAL_PROBE_PATH } from '../core/prequal.js';
import { parseHostPort } from '../shared/address.js';

export interface ProbeCounter {
  probe(cluster: string, source: 'backend' | 'local', result: 'ok' | 'error' | 'skipped'): void;
}

export interface PrequalProberOptions {
  /** A probe not answered by then is abandoned. Default 1 s (the pool's reply age). */
  readonly timeoutMs?: number;
  /** Probes in flight at once, per cluster. Default 64. */
  readonly maxOutstanding?: number;
  /** How long an endpoint without a probe endpoint is answered locally before it is asked again. Default 60 s. */
  readonly localForMs?: number;
}

/** A probe reply is a few dozen bytes: anything longer is not one. */
const MAX_REPLY_BYTES = 1024;

export class PrequalProber {
  readonly #cluster: string;
  readonly #core: Cluster;
  readonly #clock: Clock;
  readonly #count: ProbeCounter | undefined;
  readonly #timeoutMs: number;
  readonly #maxOutstanding: number;
  readonly #localForMs: number;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 4, timeout: 5000 });
  /** Endpoint id -> until when its probes are answered locally. */
  readonly #local = new Map<string, number>();
  #outstanding = 0;
  #closed = false;

  constructor(cluster: string, core: Cluster, clock: Clock, count?: ProbeCounter, options: PrequalProberOptions = {}) {
    this.#cluster = cluster;
    this.#core = core;
    this.#clock = clock;
    this.#count = count;
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#maxOutstanding = options.maxOutstanding ?? 64;
    this.#localForMs = options.localForMs ?? 60_000;
    core.setProber((targets) => {
      for (const t of targets) this.#probe(t);
    });
  }

  /** Stop probing and close the probe connections. */
  close(): void {
    this.#closed = true;
    this.#core.setProber(undefined);
    this.#agent.destroy();
  }

  #probe(host: HostState): void {
    if (this.#closed) return;
    const now = this.#clock.nowMs();
    const until = this.#local.get(host.endpoint.id);
    if (until !== undefined && now < until) return this.#answerLocally(host);
    if (this.#outstanding >= this.#maxOutstanding) return this.#count?.probe(this.#cluster, 'backend', 'skipped');
    const hp = parseHostPort(host.endpoint.address);
    if (typeof hp === 'string') return this.#answerLocally(host);
    this.#outstanding++;
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      this.#outstanding--;
      return true;
    };
    const req = http.request({ host: hp.host, port: hp.port, path: PREQUAL_PROBE_PATH, agent: this.#agent, timeout: this.#timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes <= MAX_REPLY_BYTES) chunks.push(c);
      });
      res.on('end', () => {
        if (!finish()) return;
        const reply = res.statusCode === 200 && bytes <= MAX_REPLY_BYTES ? parseReply(Buffer.concat(chunks).toString('utf8')) : undefined;
        if (reply === undefined) {
          this.#local.set(host.endpoint.id, this.#clock.nowMs() + this.#localForMs);
          return this.#answerLocally(host);
        }
        this.#local.delete(host.endpoint.id);
        this.#core.recordProbe(host, reply);
        this.#count?.probe(this.#cluster, 'backend', 'ok');
      });
      res.on('error', () => {
        if (finish()) this.#count?.probe(this.#cluster, 'backend', 'error');
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      if (finish()) this.#count?.probe(this.#cluster, 'backend', 'error');
    });
    req.end();
  }

  #answerLocally(host: HostState): void {
    this.#core.recordProbe(host, localProbeReply(host, this.#clock.nowMs()));
    this.#count?.probe(this.#cluster, 'local', 'ok');
  }
}

function parseReply(text: string): { rif: number; latencyMs: number } | undefined {
  try {
    const v = JSON.parse(text) as { rif?: unknown; latency_ms?: unknown };
    const { rif, latency_ms: latencyMs } = v;
    if (typeof rif !== 'number' || typeof latencyMs !== 'number' || !(rif >= 0) || !(latencyMs >= 0) || !Number.isFinite(rif) || !Number.isFinite(latencyMs)) return undefined;
    return { rif, latencyMs };
  } catch {
    return undefined;
  }
}
