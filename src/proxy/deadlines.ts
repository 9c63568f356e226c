import { nowMs } from '../http1/read-time.js';

/*
 * Request and per-try deadlines without a timer per request. setTimeout makes a Timeout
 * object and a closure per request, reads libuv's clock, and clearTimeout unlinks it
 * again: about 1.5% of a proxied request's CPU. Deadlines of one duration expire in the
 * order they were set, so (as in Node's own timer lists) each duration keeps a list in
 * that order and one timer armed for its head; setting a deadline appends a node the
 * owner keeps and reuses, clearing one unlinks it. When the head is cleared early the
 * timer is left alone: it fires, finds the new head not yet due and re-arms for it.
 * A list's timer holds the process open only while the list holds a deadline (unref'd,
 * not cleared, when it empties: one request at a time would otherwise arm and clear a
 * timer per request, as before).
 */

/** What a deadline calls when it expires. */
export interface DeadlineOwner {
  onDeadline(): void;
}

class DeadlineList {
  readonly ms: number;
  head: Deadline | undefined;
  tail: Deadline | undefined;
  timer: NodeJS.Timeout | undefined;

  constructor(ms: number) {
    this.ms = ms;
  }

  append(d: Deadline): void {
    d.prev = this.tail;
    if (this.tail === undefined) this.head = d;
    else this.tail.next = d;
    this.tail = d;
    if (this.timer === undefined) this.#arm(this.ms);
    else if (!this.timer.hasRef()) this.timer.ref();
  }

  remove(d: Deadline): void {
    if (d.prev === undefined) this.head = d.next;
    else d.prev.next = d.next;
    if (d.next === undefined) this.tail = d.prev;
    else d.next.prev = d.prev;
    d.prev = d.next = undefined;
    // Nothing left to wait for: the process may exit. The timer's firing forgets the list.
    if (this.head === undefined) this.timer?.unref();
  }

  readonly #fire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    // Due within the millisecond: libuv's timers count whole milliseconds.
    for (let d = this.head; d !== undefined && d.at <= now + 1; d = this.head) {
      d.clear();
      d.owner.onDeadline();
    }
    const head = this.head;
    if (head !== undefined) {
      if (this.timer === undefined) this.#arm(Math.max(1, Math.ceil(head.at - now)));
    } else if (lists.get(this.ms) === this) {
      // Empty: forgotten (unless a newer list of this duration took its place meanwhile).
      lists.delete(this.ms);
    }
  };

  #arm(ms: number): void {
    this.timer = setTimeout(this.#fire, Math.min(ms, TIMER_MAX_MS));
  }
}

const lists = new Map<number, DeadlineList>();
/** The longest a Node timer waits (longer ones fire at once). */
const TIMER_MAX_MS = 2 ** 31 - 1;

/** One owner's deadline: set, cleared and set again as often as it likes, with no allocation after the first. */
export class Deadline {
  readonly owner: DeadlineOwner;
  /** When it expires (performance.now() ms); meaningful while set. */
  at = 0;
  list: DeadlineList | undefined;
  prev: Deadline | undefined;
  next: Deadline | undefined;

  constructor(owner: DeadlineOwner) {
    this.owner = owner;
  }

  get isSet(): boolean {
    return this.list !== undefined;
  }

  /** Expire `ms` from now (whole milliseconds, as setTimeout takes them), replacing any earlier setting. */
  set(ms: number): void {
    this.clear();
    // As setTimeout: under a millisecond (or NaN) is one; beyond a timer's reach waits in steps.
    const whole = ms >= 1 ? Math.trunc(ms) : 1;
    let list = lists.get(whole);
    if (list === undefined) {
      list = new DeadlineList(whole);
      lists.set(whole, list);
    }
    this.at = nowMs() + whole;
    this.list = list;
    list.append(this);
  }

  clear(): void {
    this.list?.remove(this);
    this.list = undefined;
  }
}
