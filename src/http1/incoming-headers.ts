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
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const had = h[name];
    if (had === undefined) h[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (had as string[]).push(value);
    else if (FIRST_WINS.has(name)) continue;
    else h[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return h;
}
