import type { Readable, Writable } from 'node:stream';

/*
 * Writes held to the end of the event-loop turn. A write to a loopback (or LAN) peer that
 * sleeps in epoll costs a wake-up, and in a VM a wake-up of another CPU is an
 * inter-processor interrupt: the single most expensive thing a proxy did per request here
 * (a fifth of all its CPU, in the kernel's sock_def_readable). Corked until the turn's
 * check phase, a turn's writes leave together after every event of the poll batch is
 * handled: the peer that the first write wakes is mostly already running for the next
 * ones, and a socket written twice in a turn (an answer and the one pipelined after it, a
 * head and its body) takes one syscall. The cost is at most one turn of delay, which a
 * busy proxy spends anyway, and an idle one does not have (its turns are one event long).
 */

let pending: Writable[] = [];
let armed = false;

/** Hold `s`'s writes until this turn's check phase (a socket already corked, by anyone, is left alone). */
export function corkForTurn(s: Writable): void {
  if (s.writableCorked > 0) return;
  s.cork();
  pending.push(s);
  if (!armed) {
    armed = true;
    setImmediate(flush);
  }
}

function flush(): void {
  const now = pending;
  pending = [];
  armed = false;
  // A socket ended or destroyed since has flushed (end) or dropped (destroy) its writes itself.
  for (const s of now) if (s.writableCorked > 0) s.uncork();
}

/**
 * `src.pipe(dst)` with `dst`'s writes held to the end of the turn like the engine's own:
 * the tunnels (TCP listeners, upgrades) pass bytes on as they come, and each chunk to a
 * sleeping peer would cost it a wake-up. Backpressure is pipe's: a corked write still
 * counts against the destination's buffer, so pipe pauses the source as before.
 */
export function pipeForTurn(src: Readable, dst: Writable): void {
  // Before pipe's own 'data' listener, so its write finds the destination corked.
  src.on('data', () => corkForTurn(dst));
  src.pipe(dst);
}
