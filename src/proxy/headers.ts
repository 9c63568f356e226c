import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { HOPS_HEADER } from '../shared/hops.js';
import { lowerName } from '../http1/incoming-headers.js';
import { RequestFields } from '../http1/request-writer.js';

/** RFC 9110 §7.6.1: headers about one connection, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings']);

const NAMES_NONE = /^\s*(keep-alive|close)\s*$/i;

/** Headers named in a Connection header are hop-by-hop too. */
function connectionListed(headers: IncomingHttpHeaders): Set<string> | undefined {
  const c = headers.connection;
  // The usual values name no header: skip the split on the hot path.
  if (c === undefined || NAMES_NONE.test(c)) return undefined;
  const names = c
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '' && s !== 'close' && s !== 'keep-alive');
  return names.length === 0 ? undefined : new Set(names);
}

export interface ForwardedInfo {
  /** The client as Meridian sees it: the peer, or the first untrusted hop from X-Forwarded-For. */
  readonly clientIp: string;
  /** The X-Forwarded-For to send upstream. */
  readonly forwardedFor: string;
  readonly proto: string;
  readonly host: string | undefined;
  readonly fromTrustedPeer: boolean;
}

/**
 * The headers sent upstream: hop-by-hop ones dropped, X-Forwarded-* set, x-request-id
 * kept or generated. `te: trailers` survives, since it asks the upstream for trailers
 * end to end (gRPC needs it). `via`: this node's name when the upstream is another
 * region's Meridian, appended to the hops header.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, fwd: ForwardedInfo, requestId: string, via?: string): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not HTTP/1.1 headers.
    if (HOP_BY_HOP.has(name) || listed?.has(name) || name.charCodeAt(0) === 58) continue;
    out[name] = headers[name];
  }
  // An h2 request names its host in :authority; HTTP/1.1 upstreams need a Host header.
  const authority = headers[':authority'];
  if (out['host'] === undefined && typeof authority === 'string') out['host'] = authority;
  if (headers.te !== undefined && /\btrailers\b/i.test(String(headers.te))) out['te'] = 'trailers';
  out['x-forwarded-for'] = fwd.forwardedFor;
  out['x-forwarded-proto'] = fwd.proto;
  if (fwd.host !== undefined) out['x-forwarded-host'] = fwd.host;
  out['x-request-id'] = requestId;
  if (via !== undefined) {
    const hops = headers[HOPS_HEADER];
    out[HOPS_HEADER] = hops === undefined ? via : `${String(hops)}, ${via}`;
  }
  return out;
}

/** What upstreamRequestFields does with a field. */
const enum Sent {
  AsIs,
  Dropped,
  Host,
  Connection,
  Te,
  ContentLength,
  Hops,
  ForwardedHost,
}

/** The names upstreamRequestFields acts on, by length: the first match decides. */
const SENT_BY_LENGTH: (readonly (readonly [string, Sent])[])[] = [];
for (const [name, sent] of [
  ['host', Sent.Host],
  ['connection', Sent.Connection],
  ['te', Sent.Te],
  ['content-length', Sent.ContentLength],
  [HOPS_HEADER, Sent.Hops],
  ['x-forwarded-host', Sent.ForwardedHost],
  ...[...HOP_BY_HOP, 'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-request-id'].map((n) => [n, Sent.Dropped] as const),
] as const) {
  ((SENT_BY_LENGTH[name.length] ??= []) as (readonly [string, Sent])[]).push([name, sent]);
}

/** By length, the first letters (a bit each, a-z) of the names SENT_BY_LENGTH holds. */
const SENT_FIRST = new Uint32Array(64);
for (const [length, candidates] of SENT_BY_LENGTH.entries()) for (const [name] of candidates ?? []) SENT_FIRST[length]! |= 1 << (name.charCodeAt(0) - 97);

/**
 * A name whose length and first letter match none of SENT_BY_LENGTH's is passed on
 * without a look (most of a browser's are); the others go through the cache of lower-case
 * names.
 */
function sentAs(name: string): Sent {
  const first = (name.charCodeAt(0) | 0x20) - 97;
  if (first < 0 || first > 25 || (SENT_FIRST[name.length & 63]! & (1 << first)) === 0) return Sent.AsIs;
  const candidates = SENT_BY_LENGTH[name.length];
  if (candidates === undefined) return Sent.AsIs;
  const lower = lowerName(name);
  for (const [candidate, sent] of candidates) if (candidate === lower) return sent;
  return Sent.AsIs;
}

/**
 * upstreamRequestHeaders's rules (and requestHead's, and the exchange's for Expect) applied
 * to an HTTP/1.x request's fields as the client sent them, straight to the text of the
 * head for an HTTP/1.1 upstream: one pass, no header object. Only names whose length could
 * make them one this rewrites are lower-cased at all. Names go on as sent and repeated
 * fields as separate lines, as nginx and HAProxy pass them (the object path lower-cases
 * names and joins repeats, or keeps the first of a field that cannot be a list). `host` is
 * the one the request names (its Host, or an absolute-form target's authority), in Host's
 * place. Values are the HTTP/1.1 parser's (or node:http's), which hold no CR or LF.
 * Undefined when the client's Connection names fields to drop: the object path handles
 * that rare case.
 */
export function upstreamRequestFields(raw: readonly string[], host: string, fwd: ForwardedInfo, requestId: string, via: string | undefined): RequestFields | undefined {
  let text = '';
  let contentLength = -1;
  let trailers = false;
  let hops: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    switch (sentAs(name)) {
      case Sent.AsIs:
        break;
      case Sent.Dropped:
        continue;
      case Sent.Host:
        text += `${name}: ${host}\r\n`;
        continue;
      case Sent.Connection:
        if (!NAMES_NONE.test(value)) return undefined;
        continue;
      case Sent.Te:
        trailers ||= /\btrailers\b/i.test(value);
        continue;
      case Sent.ContentLength:
        contentLength = Number(value);
        continue;
      case Sent.Hops:
        if (via === undefined) break;
        hops = hops === undefined ? value : `${hops}, ${value}`;
        continue;
      case Sent.ForwardedHost:
        if (fwd.host === undefined) break;
        continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  if (trailers) text += 'te: trailers\r\n';
  text += `x-forwarded-for: ${fwd.forwardedFor}\r\nx-forwarded-proto: ${fwd.proto}\r\n`;
  if (fwd.host !== undefined) text += `x-forwarded-host: ${fwd.host}\r\n`;
  text += `x-request-id: ${requestId}\r\n`;
  if (via !== undefined) text += `${HOPS_HEADER}: ${hops === undefined ? via : `${hops}, ${via}`}\r\n`;
  return new RequestFields(text, contentLength);
}

/** The response headers sent downstream: hop-by-hop dropped, `trailer` kept when trailers follow. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders, requestId: string | undefined): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if ((HOP_BY_HOP.has(name) && name !== 'trailer') || listed?.has(name)) continue;
    out[name] = headers[name];
  }
  if (requestId !== undefined && out['x-request-id'] === undefined) out['x-request-id'] = requestId;
  return out;
}

/**
 * The upstream's raw response headers ([name, value, ...], as the engine's parser gives them) as the flat
 * list sent downstream: hop-by-hop dropped, `trailer` kept, x-request-id added if absent.
 * A flat list goes to writeHead as it is: no header object is built on the hot path, and
 * repeated fields (set-cookie) stay separate lines.
 */
export function downstreamResponseList(raw: readonly (Buffer | string)[], requestId: string | undefined): string[] {
  const out: string[] = [];
  let connection: string | undefined;
  let hasRequestId = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = latin1(raw[i] as Buffer | string);
    const value = latin1(raw[i + 1] as Buffer | string);
    const lower = name.toLowerCase();
    if (lower === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
    else if (HOP_BY_HOP.has(lower) && lower !== 'trailer') continue;
    else {
      if (lower === 'x-request-id') hasRequestId = true;
      out.push(lower, value);
    }
  }
  if (connection !== undefined) {
    const listed = connectionListed({ connection });
    if (listed !== undefined) {
      let j = 0;
      for (let i = 0; i < out.length; i += 2) {
        if (listed.has(out[i] as string)) continue;
        out[j++] = out[i] as string;
        out[j++] = out[i + 1] as string;
      }
      out.length = j;
      hasRequestId &&= !listed.has('x-request-id');
    }
  }
  if (requestId !== undefined && !hasRequestId) out.push('x-request-id', requestId);
  return out;
}

/** Lengths of the names downstreamResponseFields must look at (hop-by-hop ones, and those it notes): only these are lower-cased. */
const NOTED_LENGTH = new Uint8Array(64);
for (const name of [...HOP_BY_HOP, 'date', 'content-length', 'x-request-id']) NOTED_LENGTH[name.length] = 1;

/** An HTTP/1.1 upstream's response fields, serialised for an HTTP/1.1 client (see downstreamResponseFields). */
export interface ResponseFields {
  /** `name: value\r\n` for each field passed on, and x-request-id when Meridian adds it. */
  readonly text: string;
  readonly contentLength: boolean;
  readonly date: boolean;
}

/**
 * downstreamResponseList's rules, straight to the text of the head for an HTTP/1.1 client:
 * one pass, no list, no header object. Only names whose length could make them hop-by-hop
 * (HOP_BY_HOP, the one list of them) or a field the head notes are lower-cased and
 * compared at all. Names go on as the upstream sent them, as nginx passes them (the list
 * path lower-cases them for HTTP/2). Values are the HTTP/1.1 parser's, which refuses CR,
 * LF and every other control byte in them. Undefined when the upstream's Connection names
 * fields to drop: the list path handles that rare case.
 */
export function downstreamResponseFields(raw: readonly string[], requestId: string | undefined): ResponseFields | undefined {
  let text = '';
  let contentLength = false;
  let date = false;
  let hasRequestId = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (NOTED_LENGTH[name.length] === 1) {
      const lower = name.toLowerCase();
      if (lower === 'connection') {
        if (!NAMES_NONE.test(value)) return undefined;
        continue;
      }
      // downstreamResponseList's rule: hop-by-hop fields stay behind, but for `trailer` (trailers follow).
      if (HOP_BY_HOP.has(lower) && lower !== 'trailer') continue;
      if (lower === 'date') date = true;
      else if (lower === 'content-length') contentLength = true;
      else if (lower === 'x-request-id') hasRequestId = true;
    }
    text += `${name}: ${value}\r\n`;
  }
  if (requestId !== undefined && !hasRequestId) text += `x-request-id: ${requestId}\r\n`;
  return { text, contentLength, date };
}

function latin1(x: Buffer | string): string {
  return typeof x === 'string' ? x : x.toString('latin1');
}

/** A flat [name, value, ...] list as node's header object: repeated fields joined, set-cookie kept as a list. */
export function headerObject(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = (list[i] as string).toLowerCase();
    const value = list[i + 1] as string;
    const prev = out[name];
    if (prev === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = `${prev}, ${value}`;
  }
  return out;
}

/** A request id: the client's if it sent a sane one, else a new UUID. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && given.length > 0 && given.length <= 200 && /^[\x21-\x7e]+$/.test(given) ? given : randomUUID();
}

/** The request's host: Host for HTTP/1.1, :authority for HTTP/2. */
export function hostHeaderOf(headers: IncomingHttpHeaders): string | undefined {
  const h = headers.host ?? headers[':authority'];
  return typeof h === 'string' ? h : undefined;
}
