/**
 * A WAN link on loopback: a TCP relay that delays every chunk by half the round-trip time
 * in each direction, so a request one region's Meridian fails over to another region pays
 * the distance between them. Order is kept: chunks of one direction are delayed equally.
 */
import net from 'node:net';

export interface WanLink {
  readonly port: number;
  readonly rttMs: number;
  /** Where connections go (another region's peer listener); set once it is known. */
  target: number | undefined;
  close(): Promise<void>;
}

export async function startWanLink(rttMs: number, target?: number): Promise<WanLink> {
  const sockets = new Set<net.Socket>();
  const half = rttMs / 2;
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  /** Relay `from` to `to` `half` ms late; an end or error travels with the same delay. */
  const relay = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, half);
    });
    from.on('end', () => setTimeout(() => to.end(), half));
    from.on('error', () => setTimeout(() => to.destroy(), half));
    from.on('close', () => setTimeout(() => to.destroy(), half + 1));
  };
  const link: WanLink = {
    port: 0,
    rttMs,
    target,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
  const server = net.createServer((client) => {
    track(client);
    if (link.target === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(link.target, '127.0.0.1');
    track(upstream);
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  (link as { port: number }).port = (server.address() as net.AddressInfo).port;
  return link;
}
