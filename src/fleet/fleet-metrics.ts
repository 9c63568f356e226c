/**
 * The fleet's metrics, on the registry Meridian serves (as the DNS layer's are): Redis
 * reachability, the live nodes, global limit decisions, shared control. docs/metrics.md
 * lists each.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface NodeSeen {
  readonly node: string;
  readonly region: string;
  readonly version: string;
  readonly ageMs: number;
}

export class FleetMetrics {
  readonly #up: Gauge;
  readonly #outages: Counter;
  readonly #errors: Counter<'op'>;
  readonly #nodes: Gauge<'node' | 'region' | 'version'>;
  readonly #strong: Counter<'result'>;
  readonly #debits: Counter;
  readonly #control: Counter<'outcome'>;
  readonly #byResult: Record<StrongResult, Counter.Internal>;
  #isUp = false;
  #live: () => readonly NodeSeen[] = () => [];

  constructor(registry: Registry) {
    this.#up = new Gauge({
      name: 'meridian_fleet_redis_up',
      help: "1 while this node's connection to the fleet's Redis is ready, else 0.",
      registers: [registry],
      collect: () => this.#up.set(this.#isUp ? 1 : 0),
    });
    this.#outages = new Counter({ name: 'meridian_fleet_redis_outages_total', help: 'Times the connection to Redis was lost (each outage counted once, however long).', registers: [registry] });
    this.#errors = new Counter({
      name: 'meridian_fleet_redis_errors_total',
      help: 'Redis calls that failed or timed out, by operation (limit, tally, heartbeat, control, health).',
      labelNames: ['op'] as const,
      registers: [registry],
    });
    this.#nodes = new Gauge({
      name: 'meridian_fleet_node_last_seen_seconds',
      help: "Seconds since each live fleet node's last heartbeat (this node included), by node, region and version.",
      labelNames: ['node', 'region', 'version'] as const,
      registers: [registry],
      collect: () => {
        this.#nodes.reset();
        for (const n of this.#live()) this.#nodes.set({ node: n.node, region: n.region, version: n.version }, n.ageMs / 1000);
      },
    });
    this.#strong = new Counter({
      name: 'meridian_fleet_strong_limit_decisions_total',
      help: 'consistency: strong rate limit decisions asked of Redis, by result: admitted, limited, or unavailable (no answer in command_timeout: on_unavailable decides).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.#byResult = {
      admitted: this.#strong.labels('admitted'),
      limited: this.#strong.labels('limited'),
      unavailable: this.#strong.labels('unavailable'),
    };
    this.#debits = new Counter({
      name: 'meridian_fleet_local_limit_debits_total',
      help: "Tokens consistency: local limits took from this node's buckets for requests other nodes admitted.",
      registers: [registry],
    });
    this.#control = new Counter({
      name: 'meridian_fleet_control_changes_total',
      help: 'Shared control changes (drain, weight, region override), by outcome: sent (made here), applied (from the fleet), stale (older than one applied: ignored).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
  }

  setUp(up: boolean): void {
    if (this.#isUp && !up) this.#outages.inc();
    this.#isUp = up;
  }

  setLiveSource(live: () => readonly NodeSeen[]): void {
    this.#live = live;
  }

  error(op: 'limit' | 'tally' | 'heartbeat' | 'control' | 'health'): void {
    this.#errors.inc({ op });
  }

  strong(result: StrongResult): void {
    this.#byResult[result].inc();
  }

  debited(n: number): void {
    if (n > 0) this.#debits.inc(n);
  }

  control(outcome: 'sent' | 'applied' | 'stale'): void {
    this.#control.inc({ outcome });
  }
}

export type StrongResult = 'admitted' | 'limited' | 'unavailable';
