/**
 * Whether the DNS responder's native UDP engine (native/udp-batch, built by npm run
 * build) loads on this machine, and its API: a platform fact config validation and the
 * DNS server both read, as dgram's reusePort is. src/global/udp-batch.ts drives it.
 */
import { createRequire } from 'node:module';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/** The addon's API (native/udp-batch/udp_batch.c has the batch layout). */
export interface UdpBatchAddon {
  readonly META: number;
  readonly MAX_BATCH: number;
  /** [fd, port]; throws an Error with code EADDRINUSE / EACCES / EUDPBATCH. */
  bind(address: string, port: number, reusePort: boolean): [number, number];
  steerByPrefix(fd: number, sockets: number): void;
  /**
   * Read `fd` on the event loop, a batch per readable turn; `buf` is valid during the call
   * only (the next batch reuses it). The fd belongs to the receiver from here on.
   */
  receive(fd: number, batch: number, onBatch: (buf: Buffer, count: number) => void): object;
  /** Stop reading and close the fd, before it returns. */
  stop(handle: object): void;
  sendBatch(fd: number, buf: Buffer, count: number): number;
  /** A socket bound but never handed to receive(). */
  closeFd(fd: number): void;
}

/** Where the addon is: MERIDIAN_UDP_BATCH_ADDON, else what npm run build made (dist/native). */
export function udpBatchPath(): string {
  return process.env['MERIDIAN_UDP_BATCH_ADDON'] ?? fileURLToPath(new URL('../../native/udp_batch.node', import.meta.url));
}

export type UdpBatchLoad = { readonly addon: UdpBatchAddon } | { readonly reason: string };

const loaded = new Map<string, UdpBatchLoad>();

/** The addon, or why it cannot be used here (loaded once per path). */
export function loadUdpBatch(path: string = udpBatchPath()): UdpBatchLoad {
  let r = loaded.get(path);
  if (r === undefined) {
    if (process.platform !== 'linux') r = { reason: `recvmmsg and reuseport steering are Linux's; this is ${process.platform}` };
    else {
      try {
        r = { addon: createRequire(import.meta.url)(path) as UdpBatchAddon };
      } catch (e) {
        r = { reason: `${path} did not load (${(e as Error).message.split('\n')[0]}); npm run build makes it when a C compiler is present` };
      }
    }
    loaded.set(path, r);
  }
  return r;
}
