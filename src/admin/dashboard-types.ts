/**
 * What the dashboard page receives (server-sent events, one `DemoSnapshot` a second) and
 * what its controls ask for. Self-contained on purpose: the page (ui/dashboard.ts) is
 * compiled for the browser against these types too, so nothing here imports Node code.
 */

/** An endpoint's state as the core reports it, or `down` for a backend whose process the demo killed. */
export type EndpointStatus = 'draining' | 'unhealthy' | 'ejected' | 'slow_start' | 'healthy';

/** One endpoint of a region's cluster: a local backend, or another region's Meridian (`remote`). */
export interface EndpointSnapshot {
  readonly id: string;
  readonly address: string;
  /** Another region's Meridian, reached through its peer listener. */
  readonly remote: boolean;
  /** For a remote endpoint: the region it leads to. */
  readonly toRegion?: string;
  readonly status: EndpointStatus;
  readonly weight: number;
  readonly effectiveWeight: number;
  /** Requests in flight on it now. */
  readonly active: number;
  readonly latencyEwmaMs: number;
  /** Requests per second that ended on it, over the last interval. */
  readonly rps: number;
  /** Upstream latency, ms (null: no request in the interval). */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Fraction 0..1 of its requests answered 5xx (or failed) in the interval. */
  readonly errorRate: number;
  /** Local backends only: whether its process is running (false after "kill"). */
  readonly alive?: boolean;
  /** Local backends only: its injected latency (`exp:10ms`, ...). */
  readonly latency?: string;
  /** Local backends only: slowed by the "slow" control. */
  readonly slowed?: boolean;
  /** Found by the cluster's discovery source (DNS or a watched file); absent: listed in the config. */
  readonly source?: 'dns' | 'file';
}

export interface LocalitySnapshot {
  readonly region: string;
  readonly priority: number;
  readonly remote: boolean;
  readonly hosts: number;
  readonly healthy: number;
  /** Fraction 0..1 of the cluster's traffic it should take now. */
  readonly share: number;
}

export interface RegionSnapshot {
  readonly name: string;
  /** The region's Meridian node name. */
  readonly node: string;
  /** Its clients' listener address (what DNS answers for it). */
  readonly address: string;
  /** Whether DNS steering answers with it (false while "region down" holds it out). */
  readonly dnsUp: boolean;
  /** false after "region down" (every backend of the region killed). */
  readonly up: boolean;
  readonly policy: string;
  readonly cluster: string;
  /** Where its clients connect, and its own admin server. */
  readonly listenerPort: number;
  readonly adminPort: number;
  /** Client requests per second at this region's Meridian (not counting requests other regions failed over to it). */
  readonly rps: number;
  /** Client-facing latency, ms (null: no request in the interval). */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Fraction 0..1 of client requests answered 5xx. */
  readonly errorRate: number;
  /** Per second: retries, requests shed by the circuit breaker (503 circuit_open), rate-limited (429). */
  readonly retries: number;
  readonly shed: number;
  readonly rateLimited: number;
  /** Per second: requests other regions sent here (failover in), and client requests this region sent on to another region. */
  readonly peerInRps: number;
  readonly failoverOutRps: number;
  readonly inPanic: boolean;
  /** The cluster's adaptive concurrency limit and the requests queued over it; absent when it has none. */
  readonly concurrency?: { readonly limit: number; readonly queued: number };
  readonly endpoints: readonly EndpointSnapshot[];
  readonly localities: readonly LocalitySnapshot[];
  /** prequal / predictive: the balancer's own state, summed over the cluster's localities. */
  readonly adaptive?: AdaptiveSnapshot;
}

export interface AdaptiveSnapshot {
  /** prequal: probe replies per second over the interval, and replies in the pool now. */
  readonly probeRepliesPerS?: number;
  readonly poolSize?: number;
  /** predictive: whether picks follow the peak-EWMA fallback now, switches so far, and the model's and peak EWMA's mean absolute error, ms. */
  readonly fallback?: boolean;
  readonly driftEvents?: number;
  readonly maeMs?: number;
  readonly baselineMaeMs?: number;
}

/** A flow of traffic now: clients of a geography to a region, or a region failing over to another. */
export interface FlowSnapshot {
  readonly kind: 'client' | 'failover';
  readonly from: string;
  readonly to: string;
  readonly rps: number;
}

export interface GeoSnapshot {
  readonly name: string;
  /** The region whose Meridian its clients send to now (as DNS steers them). */
  readonly region: string;
  readonly rps: number;
  /** Client-measured latency, ms. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly errorRate: number;
}

export interface LoadSnapshot {
  readonly running: boolean;
  /** Requests per second the generator aims at now (the spike included). */
  readonly rate: number;
  readonly baseRate: number;
  /** Epoch ms when the spike ends, or null. */
  readonly spikeUntil: number | null;
  readonly inFlight: number;
  /** Requests per second not sent because the generator's in-flight cap was reached. */
  readonly dropped: number;
}

/**
 * Something that changed, for the dashboard's Activity panel: a control that succeeded through
 * the admin API (from the page, curl or anything else), or a change the demo saw between two
 * snapshots (health, DNS steering, policy, panic).
 */
export interface ActivityEvent {
  /** Epoch ms. */
  readonly t: number;
  readonly source: 'admin API' | 'health' | 'DNS' | 'policy' | 'panic';
  readonly text: string;
}

export interface DemoSnapshot {
  /** Epoch ms at the end of the interval. */
  readonly t: number;
  readonly intervalMs: number;
  readonly regions: readonly RegionSnapshot[];
  readonly geos: readonly GeoSnapshot[];
  readonly flows: readonly FlowSnapshot[];
  readonly load: LoadSnapshot;
  /** Whether the DNS responder runs (the global layer), and where. */
  readonly dns: { readonly port: number; readonly name: string } | null;
  /** What changed since the previous snapshot, oldest first. */
  readonly events: readonly ActivityEvent[];
}

/** The first event of the stream: recent history, so the charts do not start empty. */
export interface DemoHello {
  readonly history: readonly DemoSnapshot[];
  readonly policies: readonly string[];
}

/** The balancing policies a cluster can be switched to. */
export const POLICIES = ['round_robin', 'random', 'least_request', 'peak_ewma', 'ring_hash', 'maglev', 'prequal', 'predictive'] as const;
