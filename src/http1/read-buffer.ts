import { Socket } from 'node:net';

/**
 * One read buffer for every plain connection, upstream and client (net's `onread`): a
 * read is handled in its callback, synchronously, before the next one can land, so no
 * connection's bytes are overwritten while in use; whatever must outlive the callback (a
 * line split across reads, the rest of a paused read, body bytes handed on) is copied.
 * This spares each read a 64 KiB allocation, a Buffer object and a trip through the
 * stream's push and 'data'.
 */
export const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** `b`, from a read, as it may be kept past that read: a copy when it lies in READ_BUFFER (`shared`). */
export function keepRead(b: Buffer, shared: boolean): Buffer {
  return shared ? Buffer.from(b) : b;
}

/** A read into READ_BUFFER: its first `n` bytes are this read's, until the callback returns. */
export type OnRead = (n: number, buf: Buffer) => boolean;

/**
 * net takes `onread` only for sockets it connects, not for those a server accepts. The
 * option sets two symbol-keyed fields that net's read path consults on every socket
 * (`kBuffer`, `kBufferCb`) and points the handle at the buffer (`useUserBuffer`); found
 * here on a probe socket made with the option, so nothing depends on their names. Where
 * a Node differs (a field not found, no `useUserBuffer`), `readAccepted` says no and the
 * caller reads 'data' as before. Tested on Node 20 and 24 by test/http1/server.test.ts.
 */
const FIELDS = ((): { readonly buffer: symbol; readonly callback: symbol } | undefined => {
  const buffer = Buffer.alloc(1);
  const callback = (): boolean => true;
  // `onread` is a Socket constructor option too (net's connect passes its options on); @types/node 20 lists it for connect only.
  const probe = new Socket({ onread: { buffer, callback } } as ConstructorParameters<typeof Socket>[0]);
  const own = probe as unknown as Record<symbol, unknown>;
  let kBuffer: symbol | undefined;
  let kBufferCb: symbol | undefined;
  for (const s of Object.getOwnPropertySymbols(probe)) {
    if (own[s] === buffer) kBuffer = s;
    else if (own[s] === callback) kBufferCb = s;
  }
  probe.destroy();
  return kBuffer !== undefined && kBufferCb !== undefined ? { buffer: kBuffer, callback: kBufferCb } : undefined;
})();

interface UserBufferHandle {
  useUserBuffer(buf: Uint8Array): void;
}

/**
 * Have an accepted plain-TCP socket read into READ_BUFFER and call `onRead`, as `onread`
 * would have. False (nothing changed) for a TLS socket, a socket with bytes already
 * buffered (an h2c sniff put some back), or a Node whose internals differ. The socket is
 * set flowing, so that its FIN still ends in 'end'; `pause()` and `resume()` stop and start
 * the reads, as net does for `onread` sockets.
 */
export function readAccepted(socket: Socket, onRead: OnRead): boolean {
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (FIELDS === undefined || typeof handle?.useUserBuffer !== 'function' || (socket as { encrypted?: boolean }).encrypted === true || socket.readableLength > 0) return false;
  const own = socket as unknown as Record<symbol, unknown>;
  own[FIELDS.buffer] = READ_BUFFER;
  own[FIELDS.callback] = onRead;
  handle.useUserBuffer(READ_BUFFER);
  socket.resume();
  return true;
}

/**
 * Give a socket set up by `readAccepted` back to stream reads (an upgrade's new owner
 * reads 'data'): each read is copied out and pushed, and a full stream stops the reads
 * until it is read from, as for any socket.
 */
export function readAsStream(socket: Socket): void {
  const own = socket as unknown as Record<symbol, unknown>;
  if (FIELDS === undefined || own[FIELDS.buffer] !== READ_BUFFER) return;
  own[FIELDS.callback] = (n: number, buf: Buffer): boolean => socket.push(Buffer.from(buf.subarray(0, n)));
}
