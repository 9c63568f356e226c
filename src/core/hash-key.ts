import { murmur3 } from './hash.js';

/** Where a hash policy takes its key from (config `hash.key`). */
export type HashKeySpec =
  | { readonly header: string }
  | { readonly cookie: string }
  | { readonly sourceIp: true }
  | { readonly path: true };

/** The parts of a request a hash key may come from; the mechanism fills it in. */
export interface HashableRequest {
  /** Lower-cased header names; repeated headers joined or as an array. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly sourceIp?: string;
  /** Path without the query string. */
  readonly path?: string;
}

/** The request's hash key, or undefined when it has none (the policy then picks at random). */
export function extractHashKey(spec: HashKeySpec, req: HashableRequest): string | undefined {
  if ('header' in spec) {
    const v = req.headers[spec.header.toLowerCase()];
    return typeof v === 'string' ? v : v?.[0];
  }
  if ('cookie' in spec) {
    const raw = req.headers['cookie'];
    const cookies = typeof raw === 'string' ? [raw] : (raw ?? []);
    for (const header of cookies) {
      for (const pair of header.split(';')) {
        const eq = pair.indexOf('=');
        if (eq > 0 && pair.slice(0, eq).trim() === spec.cookie) return pair.slice(eq + 1).trim();
      }
    }
    return undefined;
  }
  if ('sourceIp' in spec) return req.sourceIp;
  return req.path;
}

/** The 32-bit hash a PickContext carries, or undefined without a key. */
export function hashRequest(spec: HashKeySpec, req: HashableRequest): number | undefined {
  const key = extractHashKey(spec, req);
  return key === undefined || key === '' ? undefined : murmur3(key);
}
