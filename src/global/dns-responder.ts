/**
 * The authoritative answers of the zone, as DNS messages: bytes in, bytes out, the wire
 * format done by `dns-packet`. No sockets here (dns-server.ts has them) and no steering
 * decision either: `steer` (the global layer, calling src/core) picks the region.
 *
 * What it answers (RFC 1034/1035, 2308, 6891, 7871):
 * - A / AAAA for a configured hostname: the chosen region's addresses of that family,
 *   with the configured TTL; none of that family: NODATA;
 * - SOA and NS at the zone apex (NS names inside the zone get their glue in additionals);
 *   A / AAAA of an in-zone NS name from `ns_addresses`;
 * - NODATA (NOERROR, no answer, the SOA in authority) for a name that exists with no
 *   record of the asked type (empty non-terminals included, RFC 8020);
 * - NXDOMAIN with the SOA for any other name in the zone; REFUSED outside it;
 * - EDNS: the OPT record is answered; Client Subnet (option 8) steers geo and latency
 *   hostnames by the subnet and is echoed back with the scope the answer holds for;
 *   an ECS option with bits set past its source prefix, or a bad family or length, is
 *   FORMERR (RFC 7871 section 7.1.2); an EDNS version other than 0 is BADVERS;
 * - over UDP, an answer larger than 512 bytes (or the client's EDNS payload size, at
 *   most 4096) goes out empty with TC set, so the client retries over TCP;
 * - garbage: too short for a header is dropped; undecodable, several questions, or a
 *   response sent to us: FORMERR or dropped; a non-QUERY opcode: NOTIMP. Nothing throws.
 *
 * Two paths give these answers. The fast path (dns-wire.ts reads the header, question
 * and ECS option from the bytes) serves queries for a configured name from encoded
 * answers cached per (name, type, answered addresses), patched per query: ID, RD, the
 * question as the client cased it, the OPT record and the ECS scope. A cached answer
 * is built once by the general path (dns-packet) and depends on the config only, which
 * a reload replaces with a new responder; the steering decision is made per query
 * (the global layer memoizes it per health version), so a health change shows in the
 * next answer. Everything the fast path does not take, and every answer too big for
 * the exchange (TC), goes through the general path.
 */
import { type Answer, decode, type DecodedPacket, encode, type OptAnswer, type Packet, type Question, type RecordType } from 'dns-packet';
import { hasHostBits, type IpAddress, parseIp } from '../core/ip.js';
import type { SteeringClient, SteeringDecision } from '../core/steering.js';
import type { DnsConfig } from '../config/global-schema.js';
import { newWireQuery, readQuery, type WireQuery } from './dns-wire.js';

const AA = 1 << 10;
const TC = 1 << 9;
const RD = 1 << 8;
export const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODES | 'BADVERS';

/** The largest UDP answer we offer (EDNS), the DNS Flag Day 2020 figure. */
export const EDNS_PAYLOAD_SIZE = 1232;
const MAX_UDP_PAYLOAD = 4096;
/** Cached answers at most (a flood cycling through query types must not grow memory). */
const MAX_CACHED_ANSWERS = 4096;

/** A steering result with the addresses to answer. */
export interface SteeredAnswer {
  readonly decision: SteeringDecision;
  readonly addresses: readonly string[];
}

export type Steer = (hostname: string, client: SteeringClient) => SteeredAnswer;

export interface QueryContext {
  readonly transport: 'udp' | 'tcp';
  /** The peer's address (a resolver, or a stub client). */
  readonly remoteAddress: string;
}

/** What happened to one message, for metrics and logs. */
export interface DnsOutcome {
  /** Bytes to send back; undefined = drop the message. */
  readonly response: Buffer | undefined;
  readonly rcode: Rcode | 'dropped';
  readonly name?: string;
  readonly type?: string;
  readonly truncated: boolean;
  readonly decision?: SteeringDecision;
}

/** An answer as the general path encodes it for a canonical query (ID 0, RD 0, lowercase, no OPT). */
interface CachedAnswer {
  readonly bytes: Buffer;
  readonly rcode: Rcode;
  readonly name: string;
  readonly type: string;
}

/** A configured name (hostname, apex or NS name) and its cached answers by query type. */
interface CachedName {
  readonly name: string;
  readonly wire: string;
  readonly hostname: boolean;
  /** Answers that do not depend on steering, by query type. */
  readonly fixed: Map<number, CachedAnswer>;
  /** Steered answers by query type, then by the answered region's addresses (the config's own array). */
  readonly steered: Map<number, Map<readonly string[], CachedAnswer>>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_ANY = 255;

export class DnsResponder {
  readonly #dns: DnsConfig;
  readonly #hostnames: ReadonlySet<string>;
  readonly #steer: Steer;
  readonly #ttlS: number;
  readonly #onError: (err: unknown, ctx: QueryContext) => void;
  /** Keyed by the lowercase wire name (labels with their length bytes, no root byte). */
  readonly #names = new Map<string, CachedName>();
  #cached = 0;
  readonly #q: WireQuery = newWireQuery();
  #lastRemote = '';
  #lastRemoteIp: IpAddress | undefined;

  /** `onError` hears of every internal error answered SERVFAIL (for the log and metrics). */
  constructor(dns: DnsConfig, hostnames: Iterable<string>, steer: Steer, onError: (err: unknown, ctx: QueryContext) => void = () => {}) {
    this.#dns = dns;
    this.#hostnames = new Set(hostnames);
    this.#steer = steer;
    this.#ttlS = Math.round(dns.ttl / 1000);
    this.#onError = onError;
    const known = new Set([dns.zone, ...this.#hostnames, ...Object.keys(dns.ns_addresses)]);
    for (const name of known) {
      const wire = wireKey(name);
      this.#names.set(wire, { name, wire, hostname: this.#hostnames.has(name), fixed: new Map(), steered: new Map() });
    }
  }

  /** Answer one message. Never throws: an internal error becomes SERVFAIL, and `onError` is told. */
  respond(msg: Buffer, ctx: QueryContext): DnsOutcome {
    return this.respondFast(msg, ctx) ?? this.respondGeneral(msg, ctx);
  }

  /**
   * The fast path alone: the answer, or undefined when it declines (the message is not
   * the common shape, the name is not configured, or the answer needs TC). When it
   * answers, the bytes are the general path's for the same message (the fuzz test's claim).
   */
  respondFast(msg: Buffer, ctx: QueryContext): DnsOutcome | undefined {
    const q = this.#q;
    if (!readQuery(msg, q)) return undefined;
    const entry = this.#names.get(q.key);
    if (entry === undefined) return undefined;
    try {
      let cached: CachedAnswer | undefined;
      let decision: SteeringDecision | undefined;
      if (entry.hostname && (q.qtype === TYPE_A || q.qtype === TYPE_AAAA || q.qtype === TYPE_ANY)) {
        const steered = this.#steer(entry.name, this.#fastClient(msg, q, ctx.remoteAddress));
        decision = steered.decision;
        let byAddresses = entry.steered.get(q.qtype);
        if (byAddresses === undefined) entry.steered.set(q.qtype, (byAddresses = new Map()));
        cached = byAddresses.get(steered.addresses) ?? this.#cache(entry, q.qtype, steered, byAddresses, steered.addresses);
      } else {
        cached = entry.fixed.get(q.qtype) ?? this.#cache(entry, q.qtype, undefined, entry.fixed, q.qtype);
      }
      if (cached === undefined) return undefined;
      const response = patch(cached.bytes, msg, q, ctx, decision?.scopePrefixLength ?? 0);
      if (response === undefined) return undefined;
      return { response, rcode: cached.rcode, name: cached.name, type: cached.type, truncated: false, decision };
    } catch {
      // The general path meets the same error, answers SERVFAIL and reports it once.
      return undefined;
    }
  }

  /** Build (with the general path) and keep the answer for a canonical query; undefined past the cache bound. */
  #cache<K>(entry: CachedName, qtype: number, steered: SteeredAnswer | undefined, into: Map<K, CachedAnswer>, key: K): CachedAnswer | undefined {
    if (this.#cached >= MAX_CACHED_ANSWERS) return undefined;
    // Header (ID 0, no flags, one question), the name, the type, class IN.
    const canonical = Buffer.alloc(12 + entry.wire.length + 5);
    canonical[5] = 1;
    canonical.write(entry.wire, 12, 'latin1');
    canonical.writeUInt16BE(qtype, 12 + entry.wire.length + 1);
    canonical.writeUInt16BE(1, 12 + entry.wire.length + 3);
    const steer: Steer = () => steered as SteeredAnswer;
    const o = this.#answer(decode(canonical), { transport: 'tcp', remoteAddress: '' }, steer);
    if (o.response === undefined) return undefined;
    const cached: CachedAnswer = { bytes: o.response, rcode: o.rcode as Rcode, name: o.name ?? entry.name, type: o.type ?? '' };
    into.set(key, cached);
    this.#cached++;
    return cached;
  }

  /** The client steering sees, as steeringClient() makes it from a decoded query. */
  #fastClient(msg: Buffer, q: WireQuery, remoteAddress: string): SteeringClient {
    if (q.ecsFamily !== 0 && q.ecsSourcePrefix > 0) {
      const bytes = new Uint8Array(q.ecsFamily === 1 ? 4 : 16);
      for (let i = 0; i < q.ecsAddressLength; i++) bytes[i] = msg[q.ecsAddressAt + i] as number;
      // IPv6 goes the general way (an IPv4-mapped subnet steers as IPv4).
      const ip = q.ecsFamily === 1 ? { family: 4 as const, bytes } : parseIp(v6Text(bytes));
      return { ip, prefixLength: q.ecsSourcePrefix };
    }
    if (remoteAddress !== this.#lastRemote) {
      this.#lastRemote = remoteAddress;
      this.#lastRemoteIp = parseIp(remoteAddress);
    }
    const ip = this.#lastRemoteIp;
    if (q.ecsFamily !== 0) return { ip, prefixLength: 0 };
    return { ip, prefixLength: ip === undefined ? 0 : ip.family === 4 ? 32 : 128 };
  }

  /** The general path: dns-packet decodes the message, answers are built and encoded whole. */
  respondGeneral(msg: Buffer, ctx: QueryContext): DnsOutcome {
    if (msg.length < 12) return dropped();
    const id = msg.readUInt16BE(0);
    // A response (QR set) is never answered: two servers must not bounce errors forever.
    if ((msg[2] as number) & 0x80) return dropped();
    let query: DecodedPacket;
    try {
      query = decode(msg);
    } catch {
      return this.#error(id, 'FORMERR', ctx, undefined);
    }
    try {
      return this.#answer(query, ctx);
    } catch (err) {
      this.#onError(err, ctx);
      return this.#error(id, 'SERVFAIL', ctx, query);
    }
  }

  #answer(query: DecodedPacket, ctx: QueryContext, steer: Steer = this.#steer): DnsOutcome {
    const id = query.id ?? 0;
    const opcode = (query as DecodedPacket & { opcode?: string }).opcode;
    if (opcode !== 'QUERY') return this.#error(id, 'NOTIMP', ctx, query);
    const questions = query.questions ?? [];
    if (questions.length !== 1) return this.#error(id, 'FORMERR', ctx, query);
    const opts = (query.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
    if (opts.length > 1) return this.#error(id, 'FORMERR', ctx, query);
    const opt = opts[0];
    if (opt !== undefined && opt.ednsVersion !== 0) return this.#error(id, 'BADVERS', ctx, query);
    const q = questions[0] as Question;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const type = q.type;

    const ecs = opt === undefined ? undefined : clientSubnet(opt);
    if (ecs === 'bad') return this.#error(id, 'FORMERR', ctx, query);
    const client = steeringClient(ecs, ctx.remoteAddress);

    const zone = this.#dns.zone;
    if (!(name === zone || name.endsWith(`.${zone}`)) || (q.class !== undefined && q.class !== 'IN' && q.class !== 'ANY')) {
      return this.#finish(query, ctx, { rcode: 'REFUSED', name, type, authoritative: false, answers: [], authorities: [], additionals: [], ecs, scope: 0 });
    }

    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    let decision: SteeringDecision | undefined;
    const wants = (t: RecordType): boolean => type === t || (type as string) === 'ANY';
    if (name === zone) {
      if (wants('SOA')) answers.push(this.#soa());
      if (wants('NS')) {
        for (const ns of this.#dns.ns) answers.push({ type: 'NS', name: zone, ttl: this.#ttlS, data: ns });
        additionals.push(...this.#glue());
      }
    }
    if (this.#hostnames.has(name) && (wants('A') || wants('AAAA'))) {
      const steered = steer(name, client);
      decision = steered.decision;
      for (const a of steered.addresses) {
        const family = a.includes(':') ? 'AAAA' : 'A';
        if (wants(family)) answers.push({ type: family, name, ttl: this.#ttlS, data: a });
      }
    }
    const glue = this.#dns.ns_addresses[name];
    if (glue !== undefined) {
      for (const a of glue) {
        const family = a.includes(':') ? 'AAAA' : 'A';
        if (wants(family)) answers.push({ type: family, name, ttl: this.#ttlS, data: a });
      }
    }
    const exists = name === zone || this.#nameExists(name);
    const scope = decision?.scopePrefixLength ?? 0;
    if (answers.length > 0) {
      return this.#finish(query, ctx, { rcode: 'NOERROR', name, type, authoritative: true, answers, authorities: [], additionals, ecs, scope, decision });
    }
    // NODATA or NXDOMAIN: the SOA in authority tells resolvers how long to cache the "no".
    return this.#finish(query, ctx, { rcode: exists ? 'NOERROR' : 'NXDOMAIN', name, type, authoritative: true, answers: [], authorities: [this.#soa(true)], additionals: [], ecs, scope, decision });
  }

  /** A configured name, an NS name, or an empty non-terminal above one (RFC 8020). */
  #nameExists(name: string): boolean {
    const names = [...this.#hostnames, ...Object.keys(this.#dns.ns_addresses)];
    return names.some((n) => n === name || n.endsWith(`.${name}`));
  }

  #soa(negative = false): Answer {
    const s = this.#dns.soa;
    const secs = (ms: number): number => Math.round(ms / 1000);
    // RFC 2308: a negative answer's SOA carries min(SOA TTL, SOA MINIMUM).
    const ttl = negative ? Math.min(this.#ttlS, secs(s.minimum)) : this.#ttlS;
    return {
      type: 'SOA',
      name: this.#dns.zone,
      ttl,
      data: { mname: s.mname, rname: s.rname, serial: s.serial, refresh: secs(s.refresh), retry: secs(s.retry), expire: secs(s.expire), minimum: secs(s.minimum) },
    };
  }

  #glue(): Answer[] {
    const out: Answer[] = [];
    for (const ns of this.#dns.ns) {
      for (const a of this.#dns.ns_addresses[ns] ?? []) out.push({ type: a.includes(':') ? 'AAAA' : 'A', name: ns, ttl: this.#ttlS, data: a });
    }
    return out;
  }

  #error(id: number, rcode: Rcode, ctx: QueryContext, query: DecodedPacket | undefined): DnsOutcome {
    const q = query?.questions?.length === 1 ? query.questions[0] : undefined;
    const hasOpt = (query?.additionals ?? []).some((a) => a.type === 'OPT');
    const packet: Packet = {
      type: 'response',
      id,
      flags: (rcode === 'BADVERS' ? 0 : RCODES[rcode]) | ((query?.flags ?? 0) & RD) | opcodeBits(query),
      // FORMERR for an undecodable message: echo nothing we could not read.
      questions: q !== undefined && rcode !== 'FORMERR' ? [q] : [],
      answers: [],
      authorities: [],
      additionals: hasOpt || rcode === 'BADVERS' ? [optRecord(rcode === 'BADVERS' ? 1 : 0, [])] : [],
    };
    return { response: safeEncode(packet, ctx, 512), rcode, name: q?.name, type: q?.type, truncated: false };
  }

  #finish(
    query: DecodedPacket,
    ctx: QueryContext,
    r: {
      rcode: Rcode;
      name: string;
      type: string;
      authoritative: boolean;
      answers: Answer[];
      authorities: Answer[];
      additionals: Answer[];
      ecs: ClientSubnet | undefined;
      scope: number;
      decision?: SteeringDecision | undefined;
    },
  ): DnsOutcome {
    const opt = (query.additionals ?? []).find((a): a is OptAnswer => a.type === 'OPT');
    const options: OptAnswer['options'] = [];
    if (r.ecs !== undefined) {
      // RFC 7871 7.2.1: echo family, source prefix and address; the scope says how much of it the answer depends on.
      options.push({ code: 8, family: r.ecs.family === 4 ? 1 : 2, sourcePrefixLength: r.ecs.sourcePrefixLength, scopePrefixLength: Math.min(r.scope, r.ecs.family === 4 ? 32 : 128), ip: r.ecs.text });
    }
    const additionals = opt === undefined ? r.additionals : [...r.additionals, optRecord(0, options)];
    const packet: Packet = {
      type: 'response',
      id: query.id ?? 0,
      flags: RCODES[r.rcode as keyof typeof RCODES] | (r.authoritative ? AA : 0) | ((query.flags ?? 0) & RD),
      questions: query.questions ?? [],
      answers: r.answers,
      authorities: r.authorities,
      additionals,
    };
    const limit = ctx.transport === 'tcp' ? 65_535 : opt === undefined ? 512 : Math.min(MAX_UDP_PAYLOAD, Math.max(512, opt.udpPayloadSize));
    let response = safeEncode(packet, ctx, 65_535);
    let truncated = false;
    if (response !== undefined && response.length > limit) {
      // Too big for this UDP exchange: send the question alone with TC; the client asks again over TCP.
      truncated = true;
      response = safeEncode({ ...packet, flags: (packet.flags ?? 0) | TC, answers: [], authorities: [], additionals: opt === undefined ? [] : [optRecord(0, options)] }, ctx, limit);
    }
    return { response, rcode: r.rcode, name: r.name, type: r.type, truncated, decision: r.decision };
  }
}

/** A configured name as readQuery keys it: each label after its length byte, no root byte. */
function wireKey(name: string): string {
  return name.split('.').map((l) => String.fromCharCode(l.length) + l).join('');
}

/**
 * The cached answer for this query: its ID, RD bit and question bytes (the client's
 * case) copied in, and when the query had EDNS, our OPT record appended as the last
 * additional, with the ECS option echoed (RFC 7871 7.2.1: family, source prefix and
 * address as sent; the scope of the answer). Undefined when it does not fit the
 * exchange: the general path answers with TC.
 */
function patch(cached: Buffer, msg: Buffer, q: WireQuery, ctx: QueryContext, scope: number): Buffer | undefined {
  const ecsLen = q.ecsFamily === 0 ? 0 : 8 + q.ecsAddressLength;
  const optLen = q.edns ? 11 + ecsLen : 0;
  const total = cached.length + optLen;
  const limit = ctx.transport === 'tcp' ? 65_535 : q.edns ? Math.min(MAX_UDP_PAYLOAD, Math.max(512, q.udpPayloadSize)) : 512;
  if (total > limit) return undefined;
  const out = Buffer.allocUnsafe(total);
  cached.copy(out, 0);
  out[0] = q.id >> 8;
  out[1] = q.id & 0xff;
  out[2] = (out[2] as number) | (q.rd >> 8);
  msg.copy(out, 12, 12, q.questionEnd);
  if (!q.edns) return out;
  const arcount = (((out[10] as number) << 8) | (out[11] as number)) + 1;
  out[10] = arcount >> 8;
  out[11] = arcount & 0xff;
  let o = cached.length;
  // Root name, type OPT (41), our payload size, extended rcode 0, version 0, flags 0, RDLENGTH.
  out[o++] = 0;
  out[o++] = 0;
  out[o++] = 41;
  out[o++] = EDNS_PAYLOAD_SIZE >> 8;
  out[o++] = EDNS_PAYLOAD_SIZE & 0xff;
  out[o++] = 0;
  out[o++] = 0;
  out[o++] = 0;
  out[o++] = 0;
  out[o++] = ecsLen >> 8;
  out[o++] = ecsLen & 0xff;
  if (ecsLen === 0) return out;
  const family = q.ecsFamily;
  out[o++] = 0;
  out[o++] = 8;
  out[o++] = 0;
  out[o++] = 4 + q.ecsAddressLength;
  out[o++] = 0;
  out[o++] = family;
  out[o++] = q.ecsSourcePrefix;
  out[o++] = Math.min(scope, family === 1 ? 32 : 128);
  msg.copy(out, o, q.ecsAddressAt, q.ecsAddressAt + q.ecsAddressLength);
  return out;
}

function dropped(): DnsOutcome {
  return { response: undefined, rcode: 'dropped', truncated: false };
}

function opcodeBits(query: DecodedPacket | undefined): number {
  return (query?.flags ?? 0) & 0x7800;
}

function optRecord(extendedRcode: number, options: OptAnswer['options']): Answer {
  return { type: 'OPT', name: '.', udpPayloadSize: EDNS_PAYLOAD_SIZE, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options } as unknown as Answer;
}

function safeEncode(packet: Packet, _ctx: QueryContext, limit: number): Buffer | undefined {
  try {
    const b = encode(packet);
    return b.length <= limit ? b : undefined;
  } catch {
    return undefined;
  }
}

interface ClientSubnet {
  readonly family: 4 | 6;
  readonly sourcePrefixLength: number;
  readonly ip: IpAddress;
  readonly text: string;
}

/** The EDNS Client Subnet option of a query, validated as RFC 7871 asks; 'bad' = FORMERR. */
function clientSubnet(opt: OptAnswer): ClientSubnet | 'bad' | undefined {
  const o = (opt.options ?? []).find((x) => x.code === 8);
  if (o === undefined) return undefined;
  const data = o.data;
  if (data === undefined || data.length < 4) return 'bad';
  const familyCode = data.readUInt16BE(0);
  const source = data[2] as number;
  const family = familyCode === 1 ? 4 : familyCode === 2 ? 6 : undefined;
  if (family === undefined) return 'bad';
  const max = family === 4 ? 32 : 128;
  if (source > max || data.length - 4 !== Math.ceil(source / 8)) return 'bad';
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  bytes.set(data.subarray(4));
  if (hasHostBits(bytes, source)) return 'bad';
  const text = family === 4 ? Array.from(bytes).join('.') : v6Text(bytes);
  const ip = parseIp(text);
  // An IPv4-mapped v6 subnet keeps its v6 family on the wire; steering sees the v4 address.
  return ip === undefined ? 'bad' : { family, sourcePrefixLength: source, ip, text };
}

function v6Text(b: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push((((b[i] as number) << 8) | (b[i + 1] as number)).toString(16));
  return words.join(':');
}

/** ECS with a non-zero source prefix wins; otherwise the peer's own address. */
function steeringClient(ecs: ClientSubnet | undefined, remoteAddress: string): SteeringClient {
  if (ecs !== undefined && ecs.sourcePrefixLength > 0) return { ip: ecs.ip, prefixLength: ecs.sourcePrefixLength };
  const ip = parseIp(remoteAddress);
  // Source prefix 0: the resolver asks us not to use client addresses; the answer is for everyone.
  if (ecs !== undefined) return { ip, prefixLength: 0 };
  return { ip, prefixLength: ip === undefined ? 0 : ip.family === 4 ? 32 : 128 };
}
