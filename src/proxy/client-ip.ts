import { BlockList, isIPv4 } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { hostHeaderOf, type ForwardedInfo } from './headers.js';
import { unmappedIp } from '../shared/address.js';

/**
 * Who the client is. X-Forwarded-For and friends are believed only from configured
 * trusted proxies (anyone else could forge them): from a trusted peer the chain is
 * appended to and the client is the right-most untrusted address; from anyone else the
 * chain starts afresh with the peer.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, bits] = c.split('/') as [string, string | undefined];
      const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.#list.addAddress(addr, type);
      else this.#list.addSubnet(addr, Number(bits), type);
    }
    this.#empty = cidrs.length === 0;
  }

  trusts(ip: string): boolean {
    if (this.#empty || ip === '') return false;
    const plain = unmappedIp(ip);
    return this.#list.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
  }

  forwarded(peerAddress: string | undefined, headers: IncomingHttpHeaders, encrypted: boolean): ForwardedInfo {
    const peer = unmappedIp(peerAddress ?? '');
    const trusted = this.trusts(peer);
    const xff = headers['x-forwarded-for'];
    const prior = trusted && typeof xff === 'string' && xff.trim() !== '' ? xff : undefined;
    let clientIp = peer;
    if (prior !== undefined) {
      const hops = prior.split(',').map((s) => s.trim());
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = hops[i] as string;
        clientIp = hop;
        if (!this.trusts(hop)) break;
      }
    }
    const proto = trusted && typeof headers['x-forwarded-proto'] === 'string' ? headers['x-forwarded-proto'] : encrypted ? 'https' : 'http';
    const host = trusted && typeof headers['x-forwarded-host'] === 'string' ? headers['x-forwarded-host'] : hostHeaderOf(headers);
    return { clientIp, forwardedFor: prior === undefined ? peer : `${prior}, ${peer}`, proto, host, fromTrustedPeer: trusted };
  }
}

