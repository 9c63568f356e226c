import type { LatencyEwma } from './latency-ewma.js';

/** The balancing policies `src/core` implements; the names are the config's `policy` values. */
export const POLICY_NAMES = ['round_robin', 'random', 'least_request', 'peak_ewma', 'ring_hash', 'maglev', 'prequal', 'predictive'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Where an endpoint runs, for locality-aware routing (see locality.ts and cluster.ts). */
export interface Locality {
  readonly region?: string;
  readonly zone?: string;
  /** 0 is preferred; higher levels take traffic as lower ones lose health. Default 0. */
  readonly priority?: number;
  /** Locality-weighted balancing inside a priority level: share = weight x health. */
  readonly weight?: number;
  /** Spillover: above this rate, the excess goes to the next locality (waterfall). */
  readonly maxRequestsPerSecond?: number;
  /** Spillover: with this many requests in flight on its endpoints, new ones go to the next locality. */
  readonly maxInFlight?: number;
  /** Its endpoints are other regions' load balancers: never chosen for a request that already crossed regions. */
  readonly remote?: boolean;
}

/** One backend as configured: immutable. `id` is stable across reloads and keys all state. */
export interface Endpoint {
  readonly id: string;
  /** host:port (or any label the mechanism understands); hashed by ring_hash and maglev. */
  readonly address: string;
  /** Positive integer; relative share of traffic. */
  readonly weight: number;
  readonly locality?: Locality;
}

/**
 * The live state of one endpoint, owned by its cluster and kept across snapshot swaps
 * (reloads, health flips), so in-flight counts and latency history survive a rebuild.
 * Balancers read it; only the cluster writes it.
 */
export interface Host {
  readonly endpoint: Endpoint;
  /** Requests started and not yet ended on this host. */
  readonly active: number;
  /** Latency estimate fed by every completed request, whatever the policy. */
  readonly latency: LatencyEwma;
}

/** How a request to a host ended, as reported by the mechanism. */
export interface Outcome {
  /** HTTP status, when a response arrived. */
  readonly status?: number;
  /** Set when no (complete) response arrived. */
  readonly error?: 'connect' | 'reset' | 'timeout' | 'protocol';
  /** Time from dispatch to the end of the response (or of the failure). */
  readonly latencyMs: number;
}

export function isServerFailure(o: Outcome): boolean {
  return o.error !== undefined || (o.status !== undefined && o.status >= 500);
}

/** Envoy's "gateway error": the upstream was unreachable or answered 502/503/504. */
export function isGatewayFailure(o: Outcome): boolean {
  return o.error !== undefined || o.status === 502 || o.status === 503 || o.status === 504;
}

/** What a pick may depend on. */
export interface PickContext {
  /** 32-bit hash of the request's hash key (see hash-key.ts); hash policies pick randomly without one. */
  readonly hash?: number;
  /** 0 for the first try; retries pass 1, 2, ... so hash policies can move on deterministically. */
  readonly attempt?: number;
  /** The request already crossed from another region: remote localities are not eligible (no loops). */
  readonly localOnly?: boolean;
  /** Its class (route, method and body size: see request-class.ts), 0 to REQUEST_CLASSES - 1; learning policies use it. */
  readonly requestClass?: number;
}

/**
 * A load-balancing policy over an immutable set of eligible hosts.
 *
 * Contract (checked for every implementation by test/core/balancer-contract.test.ts):
 * - `pick` returns one of the hosts of the last `update`, or `undefined` when that set is empty;
 * - over many picks on idle hosts, shares follow the weights;
 * - `update` builds any table off to the side and swaps it in whole, so a pick never sees
 *   half-built state. It is called on membership, health or weight change only, never per pick.
 * - `pick` is O(1) or O(log n) in the number of hosts (round_robin: O(distinct weights), see there).
 */
export interface Balancer {
  readonly policy: PolicyName;
  /** Replace the eligible set; `weights[i]` (> 0) is `hosts[i]`'s effective weight. */
  update(hosts: readonly Host[], weights: readonly number[]): void;
  pick(ctx: PickContext): Host | undefined;
  /** Called after the host's `active` count was incremented; `ctx` is the request's pick context when the mechanism has it. */
  onStart?(host: Host, ctx?: PickContext): void;
  /** Called after the host's `active` count was decremented and its latency recorded. */
  onEnd?(host: Host, outcome: Outcome): void;
  /** Probing policies (prequal): the hosts to probe alongside the request just picked. */
  probeTargets?(): readonly Host[];
  /** Probing policies: a probe's reply reached the load balancer. */
  onProbe?(host: Host, reply: ProbeReply): void;
  /** Counters and state of the adaptive policies, for metrics and the simulator's report. */
  stats?(): BalancerStats;
}

/** A server's answer to a Prequal probe. */
export interface ProbeReply {
  /** Requests in flight at the server when it answered. */
  readonly rif: number;
  /** Latency the server expects for a request arriving at that RIF, ms. */
  readonly latencyMs: number;
}

/** What an adaptive balancer reports (each field only where the policy has it). */
export interface BalancerStats {
  readonly probesRequested?: number;
  readonly probeReplies?: number;
  readonly poolSize?: number;
  readonly poolPicks?: number;
  readonly randomPicks?: number;
  /** predictive: the model is out of force and picks follow peak EWMA. */
  readonly fallback?: boolean;
  /** predictive: picks the model made, and those it left to peak EWMA because it could not tell the candidates apart. */
  readonly modelPicks?: number;
  readonly baselinePicks?: number;
  /** predictive: request classes whose service time it has learned (their weights in use). */
  readonly requestClasses?: number;
  readonly driftEvents?: number;
  readonly recoveries?: number;
  /** predictive: prediction error over the responses seen so far (the model's and peak EWMA's, on the same requests). */
  readonly maeMs?: number;
  readonly p90AbsErrorMs?: number;
  readonly baselineMaeMs?: number;
  readonly samples?: number;
}
