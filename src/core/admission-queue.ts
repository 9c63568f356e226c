import { PRIORITY_RANK, type Priority } from './priority.js';

export interface AdmissionQueueOptions {
  /** Waiters held at most, all classes together. Default 100. */
  readonly maxLength?: number;
  /** The queueing delay a standing queue may keep: the queue timeout while overloaded. Default 5 ms. */
  readonly targetMs?: number;
  /** CoDel's interval: how long the queue must stand to call it overload; also the queue timeout otherwise. Default 100 ms. */
  readonly intervalMs?: number;
  /** `adaptive`: newest first while overloaded (Facebook's adaptive LIFO); `fifo`: always oldest first. Default adaptive. */
  readonly order?: 'adaptive' | 'fifo';
}

/** One waiter's place; `item` undefined once it left (answered, gone). */
export interface QueueEntry<T> {
  item: T | undefined;
  readonly rank: number;
  readonly enqueuedMs: number;
  readonly deadlineMs: number;
}

/**
 * The short queue in front of a concurrency limit, run as Facebook runs theirs: CoDel's
 * overload test and timeouts, and adaptive LIFO. Overloaded means that in the last interval
 * the queue stood throughout (at no admission was it left empty: Facebook's "the queue has
 * not been empty for the last interval"; CoDel's smallest sojourn above a target of zero,
 * since under overload the timeout is the target and no sojourn can exceed it), or it had
 * to refuse a waiter (timed out, or full). The second keeps the verdict steady at low
 * rates, where a queue held to the short timeout empties now and then between arrivals
 * although most of them are refused.
 * While overloaded a waiter may wait `targetMs` instead of `intervalMs`, so a standing
 * queue drains into fast refusals rather than latency, and the newest waiter is served
 * first (its client is still there; the oldest are about to time out anyway). One queue
 * per priority class: a slot goes to the most critical class waiting, and a full queue
 * makes room by refusing a waiter of a lower class than the one arriving.
 */
export class AdmissionQueue<T> {
  readonly maxLength: number;
  readonly targetMs: number;
  readonly intervalMs: number;
  readonly #lifo: boolean;
  /** Per class, in order of arrival; `#heads` is the index of the first live-or-not entry. */
  readonly #lanes: QueueEntry<T>[][] = [[], [], []];
  readonly #heads = [0, 0, 0];
  #length = 0;
  #overloaded = false;
  #intervalEndMs = -Infinity;
  #minDelayMs = 0;
  /** A waiter timed out or was pushed out in the current interval. */
  #dropped = false;

  constructor(options: AdmissionQueueOptions = {}) {
    this.maxLength = options.maxLength ?? 100;
    this.targetMs = options.targetMs ?? 5;
    this.intervalMs = options.intervalMs ?? 100;
    this.#lifo = (options.order ?? 'adaptive') === 'adaptive';
  }

  /** Waiters held. */
  get length(): number {
    return this.#length;
  }

  /** CoDel's verdict at the last interval's end. */
  get overloaded(): boolean {
    return this.#overloaded;
  }

  /**
   * How long a waiter of class `rank` queued now may wait: the interval, or while
   * overloaded the target; critical waiters keep the interval, so that a limit cut (which
   * frees no slot until enough requests end) refuses the others and not them.
   */
  timeoutMs(rank = 1): number {
    return this.#overloaded && rank > 0 ? this.targetMs : this.intervalMs;
  }

  /**
   * Every admission passes here with the standing queue it leaves behind (how long the
   * oldest waiter still queued has waited; 0 when none is): CoDel's test, once per
   * interval, of the smallest seen in it.
   */
  observeStanding(delayMs: number, nowMs: number): void {
    if (nowMs >= this.#intervalEndMs) {
      this.#overloaded = this.#minDelayMs > 0 || this.#dropped;
      this.#intervalEndMs = nowMs + this.intervalMs;
      this.#minDelayMs = delayMs;
      this.#dropped = false;
    } else if (delayMs < this.#minDelayMs) {
      this.#minDelayMs = delayMs;
    }
  }

  /**
   * Queue `item`; when full, the newest waiter of the lowest class below `priority` is
   * pushed out and returned in `evicted` (the caller refuses it); with none, the new
   * waiter is refused (undefined).
   */
  push(item: T, priority: Priority, nowMs: number, evicted: T[]): QueueEntry<T> | undefined {
    const rank = PRIORITY_RANK[priority];
    if (this.#length >= this.maxLength) {
      this.#dropped = true;
      const out = this.#evictBelow(rank);
      if (out === undefined) return undefined;
      evicted.push(out);
    }
    const entry: QueueEntry<T> = { item, rank, enqueuedMs: nowMs, deadlineMs: nowMs + this.timeoutMs(rank) };
    (this.#lanes[rank] as QueueEntry<T>[]).push(entry);
    this.#length++;
    return entry;
  }

  /** The waiter left (gone, timed out): its place is dropped. */
  remove(entry: QueueEntry<T>): void {
    if (entry.item === undefined) return;
    entry.item = undefined;
    this.#length--;
  }

  /**
   * The next waiter to admit: the most critical class first; within it the newest while
   * overloaded (adaptive LIFO), else the oldest. Waiters past their deadline are put in
   * `expired` on the way (the caller refuses them).
   */
  shift(nowMs: number, expired: T[]): QueueEntry<T> | undefined {
    for (let rank = 0; rank < 3; rank++) {
      for (;;) {
        const e = this.#lifo && this.#overloaded ? this.#popBack(rank) : this.#popFront(rank);
        if (e === undefined) break;
        if (e.item === undefined) continue;
        this.#length--;
        if (nowMs > e.deadlineMs) {
          this.#dropped = true;
          expired.push(e.item);
          e.item = undefined;
          continue;
        }
        return e;
      }
    }
    return undefined;
  }

  /** Refuse (into `expired`) every waiter whose deadline has passed, oldest first in each class. */
  expire(nowMs: number, expired: T[]): void {
    for (let rank = 0; rank < 3; rank++) {
      const lane = this.#lanes[rank] as QueueEntry<T>[];
      for (;;) {
        const e = lane[this.#heads[rank] as number];
        if (e === undefined || (e.item !== undefined && e.deadlineMs > nowMs)) break;
        this.#popFront(rank);
        if (e.item === undefined) continue;
        this.#length--;
        this.#dropped = true;
        expired.push(e.item);
        e.item = undefined;
      }
    }
  }

  /**
   * How long the oldest waiter has waited (0: none): the standing queue CoDel looks at.
   * With LIFO the waiter served has barely waited; the ones left behind have.
   */
  oldestWaitMs(nowMs: number): number {
    let oldest = nowMs;
    for (let rank = 0; rank < 3; rank++) {
      const lane = this.#lanes[rank] as QueueEntry<T>[];
      for (let i = this.#heads[rank] as number; i < lane.length; i++) {
        const e = lane[i] as QueueEntry<T>;
        if (e.item === undefined) continue;
        if (e.enqueuedMs < oldest) oldest = e.enqueuedMs;
        break;
      }
    }
    return nowMs - oldest;
  }

  /** The earliest deadline of a waiter at the front of a class (Infinity: none waiting). */
  nextDeadlineMs(): number {
    let at = Infinity;
    for (let rank = 0; rank < 3; rank++) {
      const lane = this.#lanes[rank] as QueueEntry<T>[];
      for (let i = this.#heads[rank] as number; i < lane.length; i++) {
        const e = lane[i] as QueueEntry<T>;
        if (e.item === undefined) continue;
        if (e.deadlineMs < at) at = e.deadlineMs;
        break;
      }
    }
    return at;
  }

  #evictBelow(rank: number): T | undefined {
    for (let r = 2; r > rank; r--) {
      for (;;) {
        const e = this.#popBack(r);
        if (e === undefined) break;
        if (e.item === undefined) continue;
        const out = e.item;
        e.item = undefined;
        this.#length--;
        return out;
      }
    }
    return undefined;
  }

  #popFront(rank: number): QueueEntry<T> | undefined {
    const lane = this.#lanes[rank] as QueueEntry<T>[];
    const h = this.#heads[rank] as number;
    if (h >= lane.length) return undefined;
    const e = lane[h] as QueueEntry<T>;
    // Compact now and then, so the array does not grow with every waiter ever queued.
    if (h + 1 >= lane.length) {
      lane.length = 0;
      this.#heads[rank] = 0;
    } else if (h > 256 && h * 2 > lane.length) {
      lane.splice(0, h + 1);
      this.#heads[rank] = 0;
    } else {
      this.#heads[rank] = h + 1;
    }
    return e;
  }

  #popBack(rank: number): QueueEntry<T> | undefined {
    const lane = this.#lanes[rank] as QueueEntry<T>[];
    const h = this.#heads[rank] as number;
    if (h >= lane.length) return undefined;
    const e = lane.pop() as QueueEntry<T>;
    if (lane.length <= h) {
      lane.length = 0;
      this.#heads[rank] = 0;
    }
    return e;
  }
}
