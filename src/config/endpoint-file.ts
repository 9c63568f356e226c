/**
 * The endpoint file a cluster's `discovery.file` watches (as Prometheus' file_sd): a YAML
 * or JSON list of endpoints, each `{ address, id?, weight?, locality?: { region?, zone?,
 * priority? } }`. Parsed and validated here, at the boundary, with the path of every bad
 * field, so a broken file is refused with its reasons and the running list stays.
 */
import { parseDocument } from 'yaml';
import { z } from 'zod';
import type { Endpoint } from '../core/types.js';
import { checkUniqueIds } from './checks.js';
import { hostPort, integer } from './fields.js';
import { configErrorMap, formatIssues } from './issues.js';

const fileEndpointSchema = z.strictObject({
  address: hostPort(),
  /** Default: the address. */
  id: z.string().min(1).optional(),
  weight: integer(1, 10_000).default(1),
  locality: z
    .strictObject({
      region: z.string().min(1).optional(),
      zone: z.string().min(1).optional(),
      priority: integer(0).default(0),
    })
    .optional(),
});

export const endpointFileSchema = z.array(fileEndpointSchema).superRefine((list, ctx) => checkUniqueIds(list, ctx));

export type EndpointFileResult = { readonly ok: true; readonly endpoints: Endpoint[] } | { readonly ok: false; readonly error: string };

/** Text of an endpoint file → endpoints, or every reason it is refused (one line each, prefixed with `filename`). */
export function parseEndpointFile(text: string, format: 'yaml' | 'json', filename: string): EndpointFileResult {
  let data: unknown;
  if (format === 'json') {
    try {
      data = JSON.parse(text);
    } catch (e) {
      return { ok: false, error: `${filename}: ${(e as Error).message}` };
    }
  } else {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
    if (doc.errors.length > 0) return { ok: false, error: `${filename}: ${doc.errors.map((e) => e.message).join('; ')}` };
    data = doc.toJS({ maxAliasCount: 100 });
  }
  // An empty file is an empty list (a generator truncating it first), not an error: on_empty decides.
  if (data === null || data === undefined) return { ok: true, endpoints: [] };
  const r = endpointFileSchema.safeParse(data, { error: configErrorMap });
  if (!r.success) return { ok: false, error: formatIssues(r.error.issues, endpointFileSchema).map((l) => `${filename}: ${l}`).join('\n') };
  return {
    ok: true,
    endpoints: r.data.map((e) => ({
      id: e.id ?? e.address,
      address: e.address,
      weight: e.weight,
      ...(e.locality === undefined
        ? {}
        : {
            locality: {
              priority: e.locality.priority,
              ...(e.locality.region === undefined ? {} : { region: e.locality.region }),
              ...(e.locality.zone === undefined ? {} : { zone: e.locality.zone }),
            },
          }),
    })),
  };
}
