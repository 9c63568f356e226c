import { AdmissionQueue, type AdmissionQueueOptions, type QueueEntry } from './admission-queue.js';
import { GradientLimiter, type GradientOptions } from './adaptive-concurrency.js';
import type { Priority } from './priority.js';
import type { Rng } from './rng.js';

/** A request waiting at the gate: told once whether it got a slot. */
export interface GateWaiter {
  readonly priority: Priority;
  /** It holds a slot now (give it back with `release`). */
  gateOpened(nowMs: number): void;
  /** Refused: the queue timed it out or pushed it out for a more critical one. */
  gateRefused(): void;
}

export type GateVerdict = 'admitted' | 'queued' | 'refused';

export type OverloadOptions = GradientOptions & AdmissionQueueOptions;

/**
 * A cluster's adaptive concurrency: the gradient limit on requests in flight, the short
 * queue in front of it, and the priority classes. A request under the limit goes at
 * once; over it, it waits in the queue (CoDel timeout, adaptive LIFO, most critical
 * first) or, if sheddable while the queue is overloaded, is refused at once.
 *
 * The gate decides; the mechanism arms one timer per queued waiter (at `deadlineMs` of
 * its entry, or at `nextDeadlineMs()`) and calls `expire` when it fires.
 */
export class OverloadGate {
  readonly limiter: GradientLimiter;
  readonly queue: AdmissionQueue<GateWaiter>;
  /** Refusals, by class, since the start: `critical`, `default`, `sheddable`. */
  readonly refused = { critical: 0, default: 0, sheddable: 0 };
  readonly #out: GateWaiter[] = [];

  constructor(options: OverloadOptions, rng: Rng) {
    this.limiter = new GradientLimiter(options, rng);
    this.queue = new AdmissionQueue(options);
  }

  /** Over the limit with a standing queue: no time for optional extra work (hedges). */
  get overloaded(): boolean {
    return this.queue.overloaded && this.queue.length > 0;
  }

  /**
   * A request arrives: `admitted` (it holds a slot), `queued` (`waiter` will be told;
   * the entry is in `lastEntry`), or `refused`.
   */
  enter(waiter: GateWaiter, nowMs: number): GateVerdict {
    const q = this.queue;
    // Overloaded, sheddable work is shed whole, even into a slot free this instant: the
    // next critical request may need it.
    if (waiter.priority === 'sheddable' && q.overloaded) return this.#refuse(waiter);
    if (q.length === 0 && this.limiter.hasRoom(nowMs)) {
      this.limiter.acquire();
      q.observeStanding(0, nowMs);
      return 'admitted';
    }
    const out = this.#out;
    const entry = q.push(waiter, waiter.priority, nowMs, out);
    this.#refuseAll();
    if (entry === undefined) return this.#refuse(waiter);
    this.lastEntry = entry;
    return 'queued';
  }

  /** The entry of the waiter last queued, for the mechanism's timer and `leave`. */
  lastEntry: QueueEntry<GateWaiter> | undefined = undefined;

  /** A queued waiter went away (its client did): it gives up its place, and is not told. */
  leave(entry: QueueEntry<GateWaiter>): void {
    this.queue.remove(entry);
  }

  /** A slot is given back; `rttMs` as GradientLimiter.release. Waiters that now fit are admitted. */
  release(rttMs: number | undefined, nowMs: number): void {
    this.limiter.release(rttMs, nowMs);
    this.#drain(nowMs);
  }

  /** A waiter's timer fired: refuse those whose time is up, and admit any that now fit. */
  expire(nowMs: number): void {
    this.queue.expire(nowMs, this.#out);
    this.#refuseAll();
    this.#drain(nowMs);
  }

  #drain(nowMs: number): void {
    const q = this.queue;
    const lim = this.limiter;
    while (q.length > 0 && lim.hasRoom(nowMs)) {
      const e = q.shift(nowMs, this.#out);
      if (e === undefined) break;
      const w = e.item as GateWaiter;
      e.item = undefined;
      lim.acquire();
      q.observeStanding(q.oldestWaitMs(nowMs), nowMs);
      w.gateOpened(nowMs);
    }
    this.#refuseAll();
  }

  #refuse(w: GateWaiter): 'refused' {
    this.refused[w.priority]++;
    return 'refused';
  }

  #refuseAll(): void {
    if (this.#out.length === 0) return;
    // Taken out first: a refused waiter's answer may come back here (its request ending).
    for (const w of this.#out.splice(0)) {
      this.refused[w.priority]++;
      w.gateRefused();
    }
  }
}
