/**
 * What a run measures of overload control: requests and refusals per priority class,
 * how fast refusals were answered, hedges, and per time bucket the regions' concurrency
 * limit, queue and refusals by class. Kept apart from the engine's own totals so a run
 * without overload control reports what it always did.
 */
import type { OverloadGate } from '../core/overload-gate.js';
import { PRIORITIES, PRIORITY_RANK, type Priority } from '../core/priority.js';
import { newHistogram, percentileMs, recordMs, round } from './stats.js';

export interface ClassResult {
  readonly requests: number;
  readonly completed: number;
  /** Refused by the load balancer as overloaded (503, reason overloaded). */
  readonly refused: number;
}

export interface OverloadBucket {
  readonly t_s: number;
  /** Sum of the regions' concurrency limits at the bucket's end. */
  readonly limit: number;
  readonly queued: number;
  /** Per class (critical, default, sheddable): refused and admitted in the bucket. */
  readonly refused: readonly number[];
  readonly admitted: readonly number[];
}

export interface OverloadResult {
  readonly classes: Readonly<Record<Priority, ClassResult>>;
  /** Time from arrival to the refusal, at the load balancer. */
  readonly refusal_ms: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly timeseries: readonly OverloadBucket[];
}

function bump(a: Float64Array, i: number): void {
  a[i] = (a[i] as number) + 1;
}

export class OverloadStats {
  readonly #requests = new Float64Array(3);
  readonly #completed = new Float64Array(3);
  readonly #refused = new Float64Array(3);
  readonly #refusalHist = newHistogram();
  #refusalMaxMs = 0;
  readonly #bucketRefused = new Float64Array(3);
  readonly #bucketAdmitted = new Float64Array(3);
  readonly #buckets: OverloadBucket[] = [];

  arrived(p: Priority, measured: boolean): void {
    if (measured) bump(this.#requests, PRIORITY_RANK[p]);
  }

  admitted(p: Priority): void {
    bump(this.#bucketAdmitted, PRIORITY_RANK[p]);
  }

  completed(p: Priority, measured: boolean): void {
    if (measured) bump(this.#completed, PRIORITY_RANK[p]);
  }

  refused(p: Priority, waitedMs: number, measured: boolean): void {
    const r = PRIORITY_RANK[p];
    bump(this.#bucketRefused, r);
    if (!measured) return;
    bump(this.#refused, r);
    recordMs(this.#refusalHist, Math.max(waitedMs, 0.001));
    if (waitedMs > this.#refusalMaxMs) this.#refusalMaxMs = waitedMs;
  }

  closeBucket(tS: number, gates: readonly OverloadGate[]): void {
    let limit = 0;
    let queued = 0;
    for (const g of gates) {
      limit += g.limiter.limit;
      queued += g.queue.length;
    }
    this.#buckets.push({ t_s: tS, limit, queued, refused: Array.from(this.#bucketRefused), admitted: Array.from(this.#bucketAdmitted) });
    this.#bucketRefused.fill(0);
    this.#bucketAdmitted.fill(0);
  }

  result(): OverloadResult {
    const classes = {} as Record<Priority, ClassResult>;
    PRIORITIES.forEach((p, i) => (classes[p] = { requests: this.#requests[i] as number, completed: this.#completed[i] as number, refused: this.#refused[i] as number }));
    const h = this.#refusalHist;
    return {
      classes,
      refusal_ms: { p50: round(percentileMs(h, 50)), p99: round(percentileMs(h, 99)), max: round(this.#refusalMaxMs) },
      timeseries: this.#buckets,
    };
  }
}
