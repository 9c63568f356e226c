/**
 * Service discovery's decisions, apart from its I/O: what an answer from a source (DNS,
 * a watched file) does to a cluster's discovered endpoint set.
 *
 * - A failed answer keeps the last good set; so does an empty one unless `onEmpty` is
 *   'clear' (Envoy's STRICT_DNS keeps hosts on a failure and clears them on an empty
 *   answer; we keep on both by default, since "no endpoints" is rarely what anyone wants).
 * - A change within `minChangeIntervalMs` of the last applied one waits for the interval
 *   to end (damping a flapping source); the newest answer is the one applied then.
 * - A change that removes more than `maxRemovalPercent` of the current endpoints is held
 *   (a source that suddenly lost most of its records is more likely broken than right),
 *   and logged once per distinct set. A broken source rarely says the same wrong thing for
 *   long, while a real scale-in stays: so a held set is applied by the first answer that
 *   comes `holdForMs` or more after the source first gave it, if every answer since was that
 *   same set. Another set restarts the hold; a failed or empty answer (a source in trouble)
 *   restarts it too. `holdForMs: Infinity` holds until accept() (an operator's word).
 *
 * The caller resolves, reports every answer to `offer()`, applies what it is told to,
 * and calls `reconsider()` when a damped change's `untilMs` comes.
 */
import type { Clock } from './clock.js';
import type { Endpoint } from './types.js';

export type OnEmpty = 'keep' | 'clear';

export interface DiscoveryOptions {
  readonly onEmpty: OnEmpty;
  /** 0 = every change applies at once. */
  readonly minChangeIntervalMs: number;
  /** 100 = no guard. */
  readonly maxRemovalPercent: number;
  /** How long the source must keep giving a held set before it is applied; Infinity = never. */
  readonly holdForMs: number;
}

/** One answer of a source: endpoints (maybe none), or why there is no answer. */
export type Answer = { readonly ok: true; readonly endpoints: readonly Endpoint[] } | { readonly ok: false; readonly error: string };

export type Decision =
  /**
   * Apply `endpoints` now. `first`: the first set of this source (nothing applied before).
   * `heldForMs`: a held removal applied because the source kept giving it this long.
   */
  | { readonly action: 'apply'; readonly endpoints: readonly Endpoint[]; readonly added: number; readonly removed: number; readonly changed: number; readonly first: boolean; readonly recovered: boolean; readonly heldForMs?: number }
  /** The answer matches what is applied. */
  | { readonly action: 'unchanged'; readonly recovered: boolean }
  /** Failed or (with onEmpty 'keep') empty: the last good set stays. `firstOfOutage`: log it. */
  | { readonly action: 'keep'; readonly reason: 'failed' | 'empty'; readonly error: string; readonly firstOfOutage: boolean }
  /** A change waiting for the minimum interval; call reconsider() at `untilMs`. */
  | { readonly action: 'damped'; readonly untilMs: number }
  /** A change removing too many endpoints; `firstForSet`: log it. An answer from `untilMs` on giving the same set applies it (Infinity: none will). */
  | { readonly action: 'held'; readonly removing: number; readonly of: number; readonly firstForSet: boolean; readonly untilMs: number };

/** What changes between two endpoint lists, by id. */
export function diffEndpoints(before: readonly Endpoint[], after: readonly Endpoint[]): { added: number; removed: number; changed: number } {
  const old = new Map(before.map((e) => [e.id, e]));
  const ids = new Set<string>();
  let added = 0;
  let changed = 0;
  for (const e of after) {
    ids.add(e.id);
    const o = old.get(e.id);
    if (o === undefined) added++;
    else if (!sameEndpoint(o, e)) changed++;
  }
  let removed = 0;
  for (const id of old.keys()) if (!ids.has(id)) removed++;
  return { added, removed, changed };
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  const la = a.locality;
  const lb = b.locality;
  return (
    a.address === b.address &&
    a.weight === b.weight &&
    la?.priority === lb?.priority &&
    la?.region === lb?.region &&
    la?.zone === lb?.zone &&
    la?.weight === lb?.weight
  );
}

export class DiscoveredSet {
  readonly #o: DiscoveryOptions;
  readonly #clock: Clock;
  #current: readonly Endpoint[] | undefined;
  #lastAppliedMs: number | undefined;
  /** The newest answer not applied yet (damped or held). */
  #pending: readonly Endpoint[] | undefined;
  #inOutage = false;
  #heldKey: string | undefined;
  /** When the source first gave the held set, with nothing else in between; undefined after a failed or empty answer. */
  #heldSinceMs: number | undefined;

  constructor(options: DiscoveryOptions, clock: Clock) {
    if (!(options.maxRemovalPercent >= 0 && options.maxRemovalPercent <= 100)) throw new RangeError(`maxRemovalPercent must be 0..100, got ${options.maxRemovalPercent}`);
    if (!(options.holdForMs >= 0)) throw new RangeError(`holdForMs must be >= 0, got ${options.holdForMs}`);
    this.#o = options;
    this.#clock = clock;
  }

  /** The set last applied; undefined until the source first answered with one. */
  get current(): readonly Endpoint[] | undefined {
    return this.#current;
  }

  offer(answer: Answer): Decision {
    if (!answer.ok || (answer.endpoints.length === 0 && this.#o.onEmpty === 'keep')) {
      const firstOfOutage = !this.#inOutage;
      this.#inOutage = true;
      this.#heldSinceMs = undefined;
      return answer.ok
        ? { action: 'keep', reason: 'empty', error: 'the source returned no endpoints', firstOfOutage }
        : { action: 'keep', reason: 'failed', error: answer.error, firstOfOutage };
    }
    const recovered = this.#inOutage;
    this.#inOutage = false;
    return this.#consider(answer.endpoints, recovered);
  }

  /** Apply the change waiting (held or damped) now, past the removal guard and damping: an operator accepted it. */
  accept(): Decision {
    const pending = this.#pending;
    const current = this.#current;
    if (pending === undefined || current === undefined) return { action: 'unchanged', recovered: false };
    return this.#apply(pending, this.#clock.nowMs(), diffEndpoints(current, pending), false, false);
  }

  /** Re-decide the newest answer not yet applied (when a damped change's time has come). */
  reconsider(): Decision {
    const pending = this.#pending;
    if (pending === undefined) return { action: 'unchanged', recovered: false };
    return this.#consider(pending, false);
  }

  #consider(next: readonly Endpoint[], recovered: boolean): Decision {
    const current = this.#current;
    const now = this.#clock.nowMs();
    if (current === undefined) return this.#apply(next, now, { added: next.length, removed: 0, changed: 0 }, true, recovered);
    const diff = diffEndpoints(current, next);
    if (diff.added === 0 && diff.removed === 0 && diff.changed === 0) {
      this.#pending = undefined;
      this.#heldKey = undefined;
      this.#heldSinceMs = undefined;
      return { action: 'unchanged', recovered };
    }
    this.#pending = next;
    // Clearing on an empty answer is what `onEmpty: clear` asks for: no guard against it.
    const clearing = next.length === 0;
    let heldForMs: number | undefined;
    if (!clearing && current.length > 0 && (100 * diff.removed) / current.length > this.#o.maxRemovalPercent) {
      // Weights and localities are part of the set (re-weighted is another answer); the order is not.
      const key = JSON.stringify([...next].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
      const firstForSet = this.#heldKey !== key;
      this.#heldKey = key;
      if (firstForSet || this.#heldSinceMs === undefined) this.#heldSinceMs = now;
      const untilMs = this.#heldSinceMs + this.#o.holdForMs;
      if (now < untilMs || firstForSet) return { action: 'held', removing: diff.removed, of: current.length, firstForSet, untilMs };
      heldForMs = now - this.#heldSinceMs;
    } else {
      this.#heldKey = undefined;
      this.#heldSinceMs = undefined;
    }
    // A hold that has run out may still wait for damping: it stays run out until applied.
    const untilMs = (this.#lastAppliedMs ?? -Infinity) + this.#o.minChangeIntervalMs;
    if (now < untilMs) return { action: 'damped', untilMs };
    return this.#apply(next, now, diff, false, recovered, heldForMs);
  }

  #apply(next: readonly Endpoint[], now: number, diff: { added: number; removed: number; changed: number }, first: boolean, recovered: boolean, heldForMs?: number): Decision {
    this.#current = next;
    this.#pending = undefined;
    this.#heldKey = undefined;
    this.#heldSinceMs = undefined;
    this.#lastAppliedMs = now;
    return { action: 'apply', endpoints: next, ...diff, first, recovered, ...(heldForMs === undefined ? {} : { heldForMs }) };
  }
}

export interface RefreshOptions {
  /** 'ttl': follow the records' TTL; a number: a fixed interval in ms. */
  readonly refresh: 'ttl' | number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
}

/**
 * When to ask the source again. After an answer: its TTL clamped to [minTtl, maxTtl]
 * (or the fixed interval). After `failures` failures in a row: minTtl doubled per failure,
 * up to maxTtl (a resolver that is down is not asked at full rate; the fixed interval is
 * kept when one is set, as Envoy's dns_refresh_rate without a failure rate).
 */
export function nextRefreshMs(o: RefreshOptions, ttlS: number | undefined, failures: number): number {
  if (o.refresh !== 'ttl') return o.refresh;
  if (failures > 0) return Math.min(o.maxTtlMs, o.minTtlMs * 2 ** Math.min(failures - 1, 30));
  const ttlMs = (ttlS ?? 0) * 1000;
  return Math.min(o.maxTtlMs, Math.max(o.minTtlMs, ttlMs));
}

/** An SRV record with the addresses its target resolved to. */
export interface SrvTarget {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly addresses: readonly string[];
}

/** The largest endpoint weight a config accepts; SRV weights (0..65535) are capped to it. */
export const MAX_ENDPOINT_WEIGHT = 10_000;

/** `10.0.0.1:80`, `[::1]:80`: the address, and the id, of a discovered endpoint. */
export function endpointAddress(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * SRV records to endpoints (RFC 2782): the SRV priority becomes the endpoint's priority
 * level (lower is preferred, as in Meridian), the weight its weight, capped at 10000;
 * weight 0 becomes 1 (RFC 2782 gives 0 "a very small chance", and Meridian has no zero
 * weight). Every address of a target is an endpoint `ip:port`. An address reached through
 * two records keeps the better priority, and adds up the weights within it.
 */
export function srvEndpoints(records: readonly SrvTarget[]): Endpoint[] {
  const byId = new Map<string, { priority: number; weight: number }>();
  for (const r of records) {
    const weight = Math.min(MAX_ENDPOINT_WEIGHT, Math.max(1, r.weight));
    for (const ip of r.addresses) {
      const id = endpointAddress(ip, r.port);
      const seen = byId.get(id);
      if (seen === undefined || r.priority < seen.priority) byId.set(id, { priority: r.priority, weight });
      else if (r.priority === seen.priority) seen.weight = Math.min(MAX_ENDPOINT_WEIGHT, seen.weight + weight);
    }
  }
  // Sorted so that the same records in another order are the same set (DNS servers rotate answers).
  return [...byId]
    .sort(([a, x], [b, y]) => x.priority - y.priority || (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, v]) => ({ id, address: id, weight: v.weight, locality: { priority: v.priority } }));
}

/** A/AAAA answers to endpoints on `port`, in a stable order. */
export function addressEndpoints(ips: readonly string[], port: number): Endpoint[] {
  const ids = [...new Set(ips.map((ip) => endpointAddress(ip, port)))].sort();
  return ids.map((id) => ({ id, address: id, weight: 1 }));
}

/**
 * A cluster's configured endpoints plus its discovered ones. A discovered endpoint whose id
 * is already configured is left out (the configured one wins; the caller reports it).
 */
export function mergeEndpoints(configured: readonly Endpoint[], discovered: readonly Endpoint[]): { endpoints: Endpoint[]; shadowed: string[] } {
  const ids = new Set(configured.map((e) => e.id));
  const shadowed: string[] = [];
  const endpoints = [...configured];
  for (const e of discovered) {
    if (ids.has(e.id)) shadowed.push(e.id);
    else endpoints.push(e);
  }
  return { endpoints, shadowed };
}
