/**
 * The DNS responder's batched UDP engine: native/udp-batch (each socket read on the event
 * loop with recvmmsg, answers sent with sendmmsg, a reuseport group steered by source
 * prefix) and the JS that answers a whole batch with one Buffer in and one Buffer out.
 * docs/dns-batching.md says why native code here, what it does, and when Meridian falls
 * back to Node's dgram.
 */
import { formatIp } from '../core/ip.js';
import type { UdpBatchAddon } from '../shared/udp-batch-addon.js';

/**
 * Which socket of a prefix-steered group of `sockets` a source address lands on: the
 * twin of the BPF program in udp_batch.c (/24 for IPv4, /56 for IPv6), for tests and
 * for operators reading which prefixes share a queue.
 */
export function socketForSource(bytes: Uint8Array, sockets: number): number {
  const word = (i: number): number => (((bytes[i] as number) << 24) | ((bytes[i + 1] as number) << 16) | ((bytes[i + 2] as number) << 8) | (bytes[i + 3] as number)) >>> 0;
  const x = bytes.length === 4 ? word(0) >>> 8 : (Math.imul(word(0), 0x01000193) ^ (word(4) >>> 8)) >>> 0;
  return ((Math.imul(x, 0x9e3779b1) >>> 0) >>> 16) % sockets;
}

/** Answers one datagram from `remoteAddress`: the bytes to send back (undefined = nothing). */
export type DatagramHandler = (msg: Buffer, remoteAddress: string) => Buffer | undefined;

/**
 * Several reuseport sockets on one port, read by the addon a batch at a time, answered
 * here. Per batch: one Buffer in (the addon's), one reused Buffer out, one sendmmsg; per
 * datagram, the message view and whatever the handler allocates.
 */
export class BatchUdpSockets {
  readonly #addon: UdpBatchAddon;
  readonly #handler: DatagramHandler;
  readonly #fds: number[] = [];
  readonly #receivers: object[] = [];
  readonly #out: Buffer;
  /** Datagrams read per socket, in the group's order (the order the BPF program's index picks). */
  readonly #received: number[] = [];
  #lastKey = -1;
  #lastRemote = '';

  constructor(addon: UdpBatchAddon, handler: DatagramHandler) {
    this.#addon = addon;
    this.#handler = handler;
    this.#out = Buffer.alloc(addon.MAX_BATCH * addon.META + addon.MAX_BATCH * 4096);
  }

  /** Bind one socket on `port` (0 = a free one); returns the port. */
  bind(address: string, port: number, reusePort: boolean): number {
    const [fd, bound] = this.#addon.bind(address, port, reusePort);
    this.#fds.push(fd);
    this.#received.push(0);
    return bound;
  }

  get sockets(): number {
    return this.#fds.length;
  }

  /** Datagrams read so far by each socket. */
  get received(): readonly number[] {
    return this.#received;
  }

  /** Steer the group by source prefix (with more than one socket), then start reading. */
  start(): void {
    if (this.#fds.length > 1) this.#addon.steerByPrefix(this.#fds[0] as number, this.#fds.length);
    for (const [index, fd] of this.#fds.entries()) {
      this.#receivers.push(
        this.#addon.receive(fd, this.#addon.MAX_BATCH, (buf, count) => {
          (this.#received[index] as number) += count;
          this.#answer(fd, buf, count);
        }),
      );
    }
  }

  /** Stop reading and close every socket (the port is free when it returns). */
  close(): void {
    for (const r of this.#receivers) this.#addon.stop(r);
    // Bound but never started: no receiver owns them yet (a started one closes its own).
    if (this.#receivers.length === 0) for (const fd of this.#fds) this.#addon.closeFd(fd);
  }

  #answer(fd: number, buf: Buffer, count: number): void {
    const meta = this.#addon.META;
    const out = this.#out;
    let n = 0;
    let at = this.#addon.MAX_BATCH * meta;
    for (let i = 0; i < count; i++) {
      const m = i * meta;
      const offset = buf.readUInt32LE(m);
      const response = this.#handler(buf.subarray(offset, offset + buf.readUInt16LE(m + 4)), this.#remote(buf, m));
      if (response === undefined) continue;
      if (at + response.length > out.length) continue;
      const o = n * meta;
      out.writeUInt32LE(at, o);
      out.writeUInt16LE(response.length, o + 4);
      buf.copy(out, o + 6, m + 6, m + meta);
      response.copy(out, at);
      at += response.length;
      n++;
    }
    if (n > 0) this.#addon.sendBatch(fd, out, n);
  }

  /** The source address as dgram's rinfo.address would say it (kept while it repeats, as it does under load). */
  #remote(buf: Buffer, m: number): string {
    if (buf[m + 8] === 4) {
      const key = buf.readUInt32BE(m + 16);
      if (key !== this.#lastKey) {
        this.#lastKey = key;
        this.#lastRemote = `${buf[m + 16]}.${buf[m + 17]}.${buf[m + 18]}.${buf[m + 19]}`;
      }
      return this.#lastRemote;
    }
    this.#lastKey = -1;
    // An IPv4 client of a dual-stack socket, written as dgram writes it.
    if (buf.readUInt32BE(m + 16) === 0 && buf.readUInt32BE(m + 20) === 0 && buf.readUInt32BE(m + 24) === 0xffff) return `::ffff:${buf[m + 28]}.${buf[m + 29]}.${buf[m + 30]}.${buf[m + 31]}`;
    return formatIp({ family: 6, bytes: buf.subarray(m + 16, m + 32) });
  }
}
