/*
 * The time of the read being handled. A proxied request read the clock a dozen times (its
 * start, admission, the pick, its try's start, the answer's latency, the balancer's
 * latency sample, its total, the pool's idle deadline), each a vDSO call of 50-100 ns in
 * a VM: 1.5-2% of a request's CPU. Nearly all of them happen while one read's bytes are
 * handled, so the engine's read callbacks read the clock once and hold the value for that
 * synchronous handling (nginx likewise reads the time once per event-loop iteration).
 *
 * Held only while a read is being handled, so no caller ever sees a time older than the
 * read it is handling; anywhere else (timers, h2 and TLS streams, promises) `nowMs` reads
 * the clock. A read handled inside another one (a paused response resumed in a callback)
 * ends the hold: the rest of the outer read reads the clock again, never a stale value.
 */

let heldMs = -1;

/** performance.now(), or the time of the read being handled. */
export function nowMs(): number {
  return heldMs >= 0 ? heldMs : performance.now();
}

/** A read's handling starts: `nowMs` gives this time until `releaseReadTime` (call it in a `finally`). */
export function holdReadTime(): void {
  heldMs = performance.now();
}

export function releaseReadTime(): void {
  heldMs = -1;
}

/** `handle.call(self, b)` with the read's time held: the read callbacks of both sides of the engine. */
export function handleRead<T>(handle: (this: T, b: Buffer) => void, self: T, b: Buffer): void {
  holdReadTime();
  try {
    handle.call(self, b);
  } finally {
    releaseReadTime();
  }
}
