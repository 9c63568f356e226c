/**
 * Caps on client connections: one per listener (`listeners[].max_connections`) and one
 * for the whole process (`max_connections`), checked as each connection is accepted.
 *
 * Over a cap, the new connection is closed at once, before a byte is read: Envoy's
 * behaviour for its listener connection limit and its overload manager's
 * `global_downstream_max_connections` (`downstream_cx_overflow`). A client learns at
 * once (a closed connection, not a hang in the kernel's backlog) and may retry; the
 * connections already open keep being served. Idle keep-alive connections are not closed
 * to make room: they are bounded by `timeouts.idle` and silent ones by
 * `timeouts.request_headers`, and closing them would let a flood of new connections push
 * every established client out.
 *
 * Every accepted connection is counted until its socket closes, whatever the protocol
 * does with it (HTTP/1.1 keep-alive, an HTTP/2 session, an upgraded tunnel, a tcp
 * listener's splice).
 */
import type { Socket } from 'node:net';

export type RefusalReason = 'listener_limit' | 'process_limit';

export class ConnectionLimits {
  #max: number;
  #open = 0;
  readonly #listeners = new Map<string, ListenerConnections>();
  readonly #onRefused: (listener: string, reason: RefusalReason) => void;

  constructor(max: number, onRefused: (listener: string, reason: RefusalReason) => void = () => {}) {
    this.#max = max;
    this.#onRefused = onRefused;
  }

  /** Open connections in the process. */
  get open(): number {
    return this.#open;
  }

  /** A new cap (reload); connections already open above it stay. */
  setMax(max: number): void {
    this.#max = max;
  }

  /**
   * The connections of the listener named `name` with cap `max` (undefined: the process
   * cap alone). A listener that is re-created under the same name (moved by a reload)
   * shares its count.
   */
  listener(name: string, max: number | undefined): ListenerConnections {
    let l = this.#listeners.get(name);
    if (l === undefined) {
      l = new ListenerConnections(name, this);
      this.#listeners.set(name, l);
    }
    l.max = max;
    return l;
  }

  /** Open connections by listener: those named in `current`, and any other still holding some. */
  openByListener(current: Iterable<string>): [string, number][] {
    const names = new Set(current);
    for (const [name, l] of this.#listeners) if (!names.has(name) && l.open === 0) this.#listeners.delete(name);
    return [...this.#listeners].map(([name, l]) => [name, l.open]);
  }

  /** @internal: a listener asks whether the process has room, and counts. */
  take(listener: string): boolean {
    if (this.#open >= this.#max) {
      this.#onRefused(listener, 'process_limit');
      return false;
    }
    this.#open++;
    return true;
  }

  /** @internal */
  release(): void {
    this.#open--;
  }

  /** @internal */
  refused(listener: string, reason: RefusalReason): void {
    this.#onRefused(listener, reason);
  }
}

export class ListenerConnections {
  /** undefined: no cap of its own. */
  max: number | undefined;
  readonly #name: string;
  readonly #process: ConnectionLimits;
  #open = 0;

  constructor(name: string, process: ConnectionLimits) {
    this.#name = name;
    this.#process = process;
  }

  get open(): number {
    return this.#open;
  }

  /** Count `socket` in until it closes, or destroy it at once when a cap is reached: false then. */
  readonly admit = (socket: Socket): boolean => {
    if (this.max !== undefined && this.#open >= this.max) {
      this.#process.refused(this.#name, 'listener_limit');
      socket.destroy();
      return false;
    }
    if (!this.#process.take(this.#name)) {
      socket.destroy();
      return false;
    }
    this.#open++;
    socket.once('close', () => {
      this.#open--;
      this.#process.release();
    });
    return true;
  };
}
