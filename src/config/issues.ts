/**
 * Turning zod issues into the lines a user reads: `path: message`, the path in
 * JavaScript form (`clusters[1].health_check.interval`), the message in words.
 *
 * Field types in fields.ts word their own messages; `configErrorMap` words zod's
 * built-in checks (types, enums, sizes); `formatIssues` renders paths and splits
 * unknown keys into one line each, at the key's own path, with a "did you mean".
 */
import { z } from 'zod';
import { describeValue, didYouMean, listValues } from './describe.js';
import { ConfigSchema } from './schema.js';

const ARTICLE: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

function sizeText(origin: string, n: number | bigint, low: boolean, inclusive: boolean | undefined): string {
  if (origin === 'array' || origin === 'set') {
    if (low && n === 1) return 'must not be empty';
    return `must have ${low ? 'at least' : 'at most'} ${n} item${n === 1 ? '' : 's'}`;
  }
  if (origin === 'string') {
    if (low && n === 1) return 'must not be empty';
    return `must be ${low ? 'at least' : 'at most'} ${n} characters long`;
  }
  return `must be ${low ? '>' : '<'}${inclusive === false ? '' : '='} ${n}`;
}

/** Messages for zod's own issue kinds; pass as `{ error: configErrorMap }` when parsing. */
export const configErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required';
      return `expected ${ARTICLE[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
    case 'invalid_value':
      return iss.values.length === 1
        ? `expected ${JSON.stringify(iss.values[0])}, got ${describeValue(iss.input)}`
        : `expected one of ${listValues(iss.values)}; got ${describeValue(iss.input)}`;
    case 'too_small':
      return `${sizeText(iss.origin, iss.minimum, true, iss.inclusive)}${iss.origin === 'number' ? `, got ${describeValue(iss.input)}` : ''}`;
    case 'too_big':
      return `${sizeText(iss.origin, iss.maximum, false, iss.inclusive)}${iss.origin === 'number' ? `, got ${describeValue(iss.input)}` : ''}`;
    case 'unrecognized_keys':
      return `unknown key${iss.keys.length === 1 ? '' : 's'} ${iss.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_union':
      // A discriminated union (e.g. a service time's `dist`) whose tag matches no option.
      if (iss.discriminator !== undefined && 'options' in iss && Array.isArray(iss.options)) {
        const tag = iss.input !== null && typeof iss.input === 'object' ? (iss.input as Record<string, unknown>)[iss.discriminator] : undefined;
        return `expected one of ${listValues(iss.options as readonly unknown[])}; got ${describeValue(tag)}`;
      }
      return undefined;
    case 'invalid_format':
      return `invalid ${iss.format}: ${describeValue(iss.input)}`;
    default:
      return undefined;
  }
};

/** `['clusters', 1, 'health_check']` → `clusters[1].health_check`; the root is `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_$][\w$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out === '' ? '(root)' : out;
}

/** The keys a strict object at `path` allows, found by walking the schema; for "did you mean". */
export function allowedKeysAt(root: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: z.ZodType | undefined = root;
  const unwrap = (s: z.ZodType): z.ZodType => {
    let cur = s;
    for (;;) {
      if (cur instanceof z.ZodOptional || cur instanceof z.ZodDefault || cur instanceof z.ZodPrefault || cur instanceof z.ZodNullable) {
        cur = cur.unwrap() as z.ZodType;
      } else if (cur instanceof z.ZodPipe) {
        cur = cur.in as z.ZodType;
      } else {
        return cur;
      }
    }
  };
  for (const seg of path) {
    if (node === undefined) return [];
    const s = unwrap(node);
    if (s instanceof z.ZodObject && typeof seg === 'string') node = s.shape[seg] as z.ZodType | undefined;
    else if (s instanceof z.ZodArray && typeof seg === 'number') node = s.element as z.ZodType;
    else return [];
  }
  const s = node === undefined ? undefined : unwrap(node);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/**
 * One line per problem, `path: message`, in the order zod found them (schema order),
 * duplicates dropped. `schema` is used only to suggest keys for unknown ones.
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType = ConfigSchema): string[] {
  const lines: string[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(schema, iss.path);
      for (const key of iss.keys) {
        lines.push(`${formatPath([...iss.path, key])}: unknown key${didYouMean(key, allowed)}`);
      }
    } else {
      lines.push(`${formatPath(iss.path)}: ${iss.message}`);
    }
  }
  return [...new Set(lines)];
}
