/**
 * The DNS responder's per-answer counters. An answer costs a few microseconds, and
 * prom-client's `inc(labels)` (a label hash built and looked up per call) was a visible
 * share of it under dnsperf; so answers are tallied in plain nested maps keyed by the
 * (interned) label values and added to the prom-client counters when the registry is
 * read (the counters' collect hook). One tally per registry, shared by every global
 * layer that registry serves, so a layer replaced on reload keeps counting into it.
 */
import { Counter, type Registry } from 'prom-client';

type Tally = Map<string, Map<string, Map<string, number>>>;

export class DnsMetrics {
  readonly #queries: Counter<'transport' | 'rcode'>;
  readonly #decisions: Counter<'hostname' | 'region' | 'reason'>;
  readonly #rrl: Counter<'action'>;
  #dropped = 0;
  #slipped = 0;
  readonly #queryTally: Tally = new Map();
  readonly #decisionTally: Tally = new Map();

  private constructor(registry: Registry) {
    const flushQueries = (): void => flush(this.#queryTally, (a, b, _c, n) => this.#queries.inc({ transport: a, rcode: b }, n));
    const flushDecisions = (): void => flush(this.#decisionTally, (a, b, c, n) => this.#decisions.inc({ hostname: a, region: b, reason: c }, n));
    this.#queries = new Counter({
      name: 'meridian_dns_queries_total',
      help: 'DNS messages handled, by transport (udp, tcp) and response code (NOERROR, NXDOMAIN, REFUSED, FORMERR, ...; "dropped" when not answered).',
      labelNames: ['transport', 'rcode'] as const,
      registers: [registry],
      collect: flushQueries,
    });
    this.#decisions = new Counter({
      name: 'meridian_dns_steering_decisions_total',
      help: 'A and AAAA answers for steered hostnames, by hostname, region answered and reason (nearest, lowest_rtt, weighted, primary, default, failover, spillover, fail_open).',
      labelNames: ['hostname', 'region', 'reason'] as const,
      registers: [registry],
      collect: flushDecisions,
    });
    this.#rrl = new Counter({
      name: 'meridian_dns_rrl_responses_total',
      help: 'UDP answers held back by response rate limiting, by action: "dropped" (nothing sent) or "slipped" (sent empty with TC=1 so the client retries over TCP).',
      labelNames: ['action'] as const,
      registers: [registry],
      collect: () => {
        this.#rrl.inc({ action: 'dropped' }, this.#dropped);
        this.#rrl.inc({ action: 'slipped' }, this.#slipped);
        this.#dropped = 0;
        this.#slipped = 0;
      },
    });
  }

  static #byRegistry = new WeakMap<Registry, DnsMetrics>();

  static for(registry: Registry): DnsMetrics {
    let m = DnsMetrics.#byRegistry.get(registry);
    if (m === undefined) DnsMetrics.#byRegistry.set(registry, (m = new DnsMetrics(registry)));
    return m;
  }

  query(transport: string, rcode: string): void {
    bump(this.#queryTally, transport, rcode, '');
  }

  rateLimited(action: 'drop' | 'slip'): void {
    if (action === 'drop') this.#dropped++;
    else this.#slipped++;
  }

  decision(hostname: string, region: string, reason: string): void {
    bump(this.#decisionTally, hostname, region, reason);
  }
}

function bump(t: Tally, a: string, b: string, c: string): void {
  let m1 = t.get(a);
  if (m1 === undefined) t.set(a, (m1 = new Map()));
  let m2 = m1.get(b);
  if (m2 === undefined) m1.set(b, (m2 = new Map()));
  m2.set(c, (m2.get(c) ?? 0) + 1);
}

/** Hand the counts over and zero them (the keys stay: no allocation on the next answers). */
function flush(t: Tally, add: (a: string, b: string, c: string, n: number) => void): void {
  for (const [a, m1] of t) {
    for (const [b, m2] of m1) {
      for (const [c, n] of m2) {
        if (n > 0) add(a, b, c, n);
        m2.set(c, 0);
      }
    }
  }
}
