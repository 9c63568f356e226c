/*
 * The header object of a request as node:http builds it (IncomingMessage#_addHeaderLine),
 * so the exchange code reads the same object whichever server parsed the request: names
 * in lower case; a repeat of a field that cannot be a list is dropped (the first wins);
 * set-cookie collects an array; cookie joins with "; "; any other repeat joins with ", ".
 */

const FIRST_WINS = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

export type IncomingHeaders = Record<string, string | string[] | undefined>;

/*
 * Field names lower-cased, by the name as sent. A request's names are fresh strings cut
 * from its head: each toLowerCase() made another string, which the header object's keyed
 * store then had to look up in V8's string table. From here the object gets the same
 * (internalised) string every time. Seeded with the usual names in their usual
 * spellings; others are added as met up to a bound, so that a client sending endless new
 * names cannot grow it. Keys and values are copies: a name cut from a head is a slice of
 * the whole head's string, which a cache entry would otherwise keep alive.
 */
const LOWER = new Map<string, string>();
const LOWER_MAX = 1024;

function own(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/** How many names the cache holds (never more than its bound). */
export function cachedNames(): number {
  return LOWER.size;
}

/** `name` lower-cased (a field name: ASCII, as the parser admits them). */
export function lowerName(name: string): string {
  let lower = LOWER.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (LOWER.size < LOWER_MAX) {
      lower = own(lower);
      LOWER.set(own(name), lower);
    }
  }
  return lower;
}

for (const name of [
  'Host', 'User-Agent', 'Accept', 'Accept-Encoding', 'Accept-Language', 'Accept-Charset', 'Connection', 'Keep-Alive',
  'Content-Length', 'Content-Type', 'Content-Encoding', 'Transfer-Encoding', 'Cookie', 'Referer', 'Origin',
  'Authorization', 'Cache-Control', 'Pragma', 'If-None-Match', 'If-Modified-Since', 'Range', 'Expect', 'Upgrade', 'TE',
  'Via', 'Forwarded', 'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Real-IP', 'X-Request-ID',
  'X-Request-Id', 'Upgrade-Insecure-Requests', 'DNT', 'Sec-Fetch-Site', 'Sec-Fetch-Mode', 'Sec-Fetch-Dest',
  'Sec-Fetch-User', 'Sec-CH-UA', 'Sec-CH-UA-Mobile', 'Sec-CH-UA-Platform', 'Traceparent', 'Tracestate',
  'Priority', 'Date', 'Server', 'Location', 'Set-Cookie', 'ETag', 'Last-Modified', 'Vary', 'Age', 'Expires',
]) {
  lowerName(name);
  lowerName(name.toLowerCase());
}

/**
 * The headers' object: nothing inherited (a field named `__proto__`, `constructor` or
 * `toString` is just a field, absent unless sent), as with Object.create(null), but made
 * by a constructor: V8 makes Object.create(null) objects dictionaries from the start
 * (a hash-table insert per field, no enumeration cache), while these keep fast
 * properties and shared shapes for the few fields a request has.
 */
function HeaderFields(): void {}
HeaderFields.prototype = Object.create(null) as object;
const makeFields = HeaderFields as unknown as new () => IncomingHeaders;

/** `raw` is [name, value, ...] as sent. */
export function incomingHeaders(raw: readonly string[]): IncomingHeaders {
  const h = new makeFields();
  for (let i = 0; i < raw.length; i += 2) {
    const name = lowerName(raw[i] as string);
    const value = raw[i + 1] as string;
    const had = h[name];
    if (had === undefined) h[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (had as string[]).push(value);
    else if (FIRST_WINS.has(name)) continue;
    else h[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return h;
}
