/**
 * The DNS responder's fast path reader: the header, the one question and the EDNS OPT
 * record (with its Client Subnet option) read straight from the bytes, nothing decoded
 * into objects. Hand-written byte code on purpose: under dnsperf, dns-packet's general
 * decode (an object per header, question, record and option, names built label by
 * label) was most of the cost of an answer. It stays small by reading only the common
 * shape of a query and declining everything else, which then goes through dns-packet
 * (dns-responder.ts): `readQuery` returns false for anything it is not sure of, and the
 * fuzz test (test/global/dns-fast-path.test.ts) checks that whenever it accepts, the
 * answer is byte for byte the general path's.
 *
 * Accepted: a query (QR 0, opcode QUERY) with QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT
 * 0 or 1; the question name without compression pointers; class IN; when ARCOUNT is 1,
 * an OPT record owned by the root, EDNS version 0, options tiling its RDATA exactly,
 * options NSID, COOKIE, PADDING (ignored, as the general path does) and at most one
 * Client Subnet option, that one valid (RFC 7871 7.1.2: family 1 or 2,
 * source within the family, address bytes = ceil(source / 8), no bits past the
 * source); the message ending where the last record ends.
 */

/** What readQuery found; one object reused for every query (no allocation per query). */
export interface WireQuery {
  id: number;
  /** The RD bit, in place (0 or 0x0100). */
  rd: number;
  /** Offset just past the question (its name, type and class). */
  questionEnd: number;
  qtype: number;
  /** The question name as wire labels, lowercased, without the final root byte (a Map key). */
  key: string;
  /** An OPT record came with the query. */
  edns: boolean;
  /** The client's EDNS UDP payload size (0 without EDNS). */
  udpPayloadSize: number;
  /** ECS family (1 IPv4, 2 IPv6); 0 = no Client Subnet option. */
  ecsFamily: number;
  ecsSourcePrefix: number;
  /** Offset and length of the ECS address bytes in the message. */
  ecsAddressAt: number;
  ecsAddressLength: number;
}

export function newWireQuery(): WireQuery {
  return { id: 0, rd: 0, questionEnd: 0, qtype: 0, key: '', edns: false, udpPayloadSize: 0, ecsFamily: 0, ecsSourcePrefix: 0, ecsAddressAt: 0, ecsAddressLength: 0 };
}

const TYPE_OPT = 41;
const CLASS_IN = 1;
const OPTION_ECS = 8;
const OPTION_NSID = 3;
const OPTION_COOKIE = 10;
const OPTION_PADDING = 12;

/** Read `msg` into `q`; false = not the common shape, leave it to the general decoder. */
export function readQuery(msg: Buffer, q: WireQuery): boolean {
  const len = msg.length;
  if (len < 17) return false;
  // Byte 2: QR (0x80), opcode (0x78) must be 0; AA/TC/RD are whatever; byte 3 ignored as the general path does.
  if (((msg[2] as number) & 0xf8) !== 0) return false;
  if (msg[4] !== 0 || msg[5] !== 1 || msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0 || msg[10] !== 0) return false;
  const arcount = msg[11] as number;
  if (arcount > 1) return false;

  let o = 12;
  let upper = false;
  for (;;) {
    const l = msg[o] as number;
    if (l === 0) break;
    // A pointer (0xc0) or the reserved label types: the general decoder's business.
    if (l > 63 || o + 1 + l >= len) return false;
    for (let i = o + 1; i <= o + l; i++) {
      const c = msg[i] as number;
      if (c >= 0x41 && c <= 0x5a) upper = true;
      // Outside ASCII, dns-packet decodes labels as UTF-8 (lossy); never a configured name anyway.
      else if (c > 0x7e || c < 0x21 || c === 0x2e || c === 0x5c) return false;
    }
    o += 1 + l;
  }
  if (o - 12 > 254 || o + 5 > len) return false;
  const key = msg.toString('latin1', 12, o);
  o += 1;
  const qtype = ((msg[o] as number) << 8) | (msg[o + 1] as number);
  if (msg[o + 2] !== 0 || msg[o + 3] !== CLASS_IN) return false;
  o += 4;

  q.ecsFamily = 0;
  q.edns = false;
  q.udpPayloadSize = 0;
  if (arcount === 1) {
    // OPT: root name (one 0 byte), type, payload size, extended rcode, version, flags, rdlength.
    if (o + 11 > len || msg[o] !== 0 || msg[o + 1] !== 0 || msg[o + 2] !== TYPE_OPT || msg[o + 6] !== 0) return false;
    const rdlen = ((msg[o + 9] as number) << 8) | (msg[o + 10] as number);
    q.udpPayloadSize = ((msg[o + 3] as number) << 8) | (msg[o + 4] as number);
    o += 11;
    const end = o + rdlen;
    if (end !== len) return false;
    while (o < end) {
      if (o + 4 > end) return false;
      const code = ((msg[o] as number) << 8) | (msg[o + 1] as number);
      const olen = ((msg[o + 2] as number) << 8) | (msg[o + 3] as number);
      o += 4;
      if (o + olen > end) return false;
      if (code === OPTION_ECS) {
        if (!readEcs(msg, o, olen, q)) return false;
      } else if (code !== OPTION_NSID && code !== OPTION_COOKIE && code !== OPTION_PADDING) {
        // Others (KEEP-ALIVE, KEY-TAG, unknown) dns-packet parses further, and may refuse: its call.
        return false;
      }
      o += olen;
    }
    q.edns = true;
  } else if (o !== len) {
    return false;
  }
  q.id = ((msg[0] as number) << 8) | (msg[1] as number);
  q.rd = ((msg[2] as number) & 0x01) << 8;
  q.questionEnd = 12 + (key.length + 1) + 4;
  q.qtype = qtype;
  q.key = upper ? key.toLowerCase() : key;
  return true;
}

function readEcs(msg: Buffer, at: number, olen: number, q: WireQuery): boolean {
  // A second ECS option: the general path's decision (it reads the first).
  if (q.ecsFamily !== 0 || olen < 4) return false;
  const family = ((msg[at] as number) << 8) | (msg[at + 1] as number);
  const source = msg[at + 2] as number;
  const max = family === 1 ? 32 : family === 2 ? 128 : -1;
  if (max < 0 || source > max || olen - 4 !== (source + 7) >> 3) return false;
  const bits = source & 7;
  if (bits !== 0 && ((msg[at + 4 + (source >> 3)] as number) & (0xff >> bits)) !== 0) return false;
  q.ecsFamily = family;
  q.ecsSourcePrefix = source;
  q.ecsAddressAt = at + 4;
  q.ecsAddressLength = olen - 4;
  return true;
}

/**
 * An empty TC=1 copy of an answer: its header and question, no records (what response
 * rate limiting slips instead of the answer; RFC 1035 4.2.1 says retry over TCP).
 */
export function truncatedCopy(response: Buffer): Buffer {
  let end = 12;
  if (response.length > 12 && response[4] === 0 && response[5] === 1) {
    let o = 12;
    for (;;) {
      const l = response[o];
      if (l === undefined || l > 63) {
        o = -1;
        break;
      }
      o += 1 + l;
      if (l === 0) break;
    }
    if (o > 0 && o + 4 <= response.length) end = o + 4;
  }
  const out = Buffer.alloc(end);
  response.copy(out, 0, 0, end);
  out[2] = (out[2] as number) | 0x02;
  out.fill(0, 4, 12);
  out[5] = end > 12 ? 1 : 0;
  return out;
}
