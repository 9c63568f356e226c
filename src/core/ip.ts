/**
 * IP addresses as bytes, parsed without node:net (src/core does no I/O and imports
 * nothing from outside). Enough for prefix matching and subnet keys: dotted-quad IPv4,
 * RFC 4291 IPv6 text (with `::` and an embedded dotted quad), no zone ids.
 *
 * An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a dual-stack socket reports for
 * an IPv4 peer) is the IPv4 address: it matches IPv4 tables and keys IPv4 subnets.
 */
export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

/** A network: the address with every bit past `prefixLength` zeroed. */
export interface IpNetwork extends IpAddress {
  readonly prefixLength: number;
}

const V4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!V4_PART.test(p)) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseV6(s: string): Uint8Array | undefined {
  if (s.length > 45 || s.length < 2) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  const words: number[] = [];
  const all = [...head, ...tail];
  // An embedded IPv4 address may only be the last group.
  let v4: Uint8Array | undefined;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    v4 = parseV4(last);
    if (v4 === undefined) return undefined;
    if (tail.length > 0) tail.pop();
    else head.pop();
  }
  const toWords = (gs: string[]): number[] | undefined => {
    const ws: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      ws.push(parseInt(g, 16));
    }
    return ws;
  };
  const hw = toWords(head);
  const tw = toWords(tail);
  if (hw === undefined || tw === undefined) return undefined;
  const total = 8 - (v4 === undefined ? 0 : 2);
  if (halves.length === 2) {
    // `::` stands for at least one group of zeros.
    if (hw.length + tw.length >= total) return undefined;
    words.push(...hw, ...new Array<number>(total - hw.length - tw.length).fill(0), ...tw);
  } else {
    if (hw.length !== total) return undefined;
    words.push(...hw);
  }
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  if (v4 !== undefined) out.set(v4, 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Parse an IP address (v4 or v6, no brackets, no zone); IPv4-mapped v6 becomes v4. */
export function parseIp(s: string): IpAddress | undefined {
  if (s.includes(':')) {
    const bytes = parseV6(s);
    if (bytes === undefined) return undefined;
    return isV4Mapped(bytes) ? { family: 4, bytes: bytes.slice(12) } : { family: 6, bytes };
  }
  const bytes = parseV4(s);
  return bytes === undefined ? undefined : { family: 4, bytes };
}

/** Zero every bit past `prefixLength` (a copy). */
export function maskBytes(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const full = prefixLength >> 3;
  out.set(bytes.subarray(0, full));
  const rest = prefixLength & 7;
  if (rest !== 0 && full < bytes.length) out[full] = (bytes[full] as number) & (0xff << (8 - rest));
  return out;
}

/** Whether any bit past `prefixLength` is set (RFC 7871 wants those zero in a client subnet). */
export function hasHostBits(bytes: Uint8Array, prefixLength: number): boolean {
  const masked = maskBytes(bytes, prefixLength);
  return masked.some((b, i) => b !== bytes[i]);
}

/** The network of `ip` at `prefixLength` bits. */
export function networkOf(ip: IpAddress, prefixLength: number): IpNetwork {
  const bits = Math.max(0, Math.min(prefixLength, ip.family === 4 ? 32 : 128));
  return { family: ip.family, bytes: maskBytes(ip.bytes, bits), prefixLength: bits };
}

/**
 * Parse `addr/len` (or a bare address, a /32 or /128). Host bits past the prefix are
 * an error unless `allowHostBits` (then they are zeroed): `10.0.0.1/8` is usually a typo.
 */
export function parseCidr(s: string, opts: { allowHostBits?: boolean } = {}): IpNetwork | string {
  const [addr = '', bits, extra] = s.split('/');
  if (extra !== undefined) return `expected an address and one prefix length, got "${s}"`;
  const ip = addr.includes(':') ? parseV6Strict(addr) : parseIp(addr);
  if (ip === undefined) return `not an IP address: "${addr}"`;
  const max = ip.family === 4 ? 32 : 128;
  if (bits === undefined) return { ...ip, prefixLength: max };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `prefix length must be 0-${max}, got "${bits}"`;
  const prefixLength = Number(bits);
  if (opts.allowHostBits !== true && hasHostBits(ip.bytes, prefixLength)) {
    return `has bits set past /${prefixLength}: did you mean ${formatIp(networkOf(ip, prefixLength))}/${prefixLength}?`;
  }
  return networkOf(ip, prefixLength);
}

/** A CIDR written as IPv6 stays IPv6 (`::ffff:0:0/96` is a v6 network). */
function parseV6Strict(s: string): IpAddress | undefined {
  const bytes = parseV6(s);
  return bytes === undefined ? undefined : { family: 6, bytes };
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as `::`). */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i] as number) << 8) | (b[i + 1] as number));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** `network/len` text of a network. */
export function formatNetwork(n: IpNetwork): string {
  return `${formatIp(n)}/${n.prefixLength}`;
}
