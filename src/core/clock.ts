/**
 * Time is an argument in `src/core`: every decision that depends on time reads an
 * injected `Clock`. The proxy passes a wall clock, the simulator a virtual one, and
 * tests a `ManualClock` they advance by hand (never sleep).
 */
export interface Clock {
  /** Milliseconds on a monotonic timeline; only differences are meaningful. */
  nowMs(): number;
}

/** A clock that moves only when told to: for tests and the simulator. */
export class ManualClock implements Clock {
  #nowMs: number;

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`clock cannot move backwards (advance by ${ms})`);
    this.#nowMs += ms;
  }

  set(ms: number): void {
    if (ms < this.#nowMs) throw new RangeError(`clock cannot move backwards (${this.#nowMs} -> ${ms})`);
    this.#nowMs = ms;
  }
}
