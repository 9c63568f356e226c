/**
 * Reading a config file: bytes → YAML/JSON data → validated Config. Each stage fails
 * differently, and callers act on the difference (the CLI exits 2 for read/parse
 * and 1 for invalid; a reload keeps the running config in every case), hence the
 * three `kind`s.
 */
import { readFile } from 'node:fs/promises';
import { isCollection, isPair, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { Config } from './schema.js';
import { validateConfig } from './validate.js';

export type LoadResult =
  | { readonly ok: true; readonly config: Config }
  /** `message` is one or more lines, `FILE:LINE:COL: what` where a position is known. */
  | { readonly ok: false; readonly kind: 'read' | 'parse'; readonly message: string }
  /** Every problem, one `path: message` per entry. */
  | { readonly ok: false; readonly kind: 'invalid'; readonly errors: string[] };

export type ConfigFormat = 'yaml' | 'json';

export interface ParseOptions {
  /** Used in messages, and to choose the format when `format` is not given. */
  readonly filename: string;
  readonly format?: ConfigFormat;
  /** See ValidateOptions.env. Absent: the environment is not consulted. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** JSON for `*.json`, YAML for anything else. */
export function formatOf(filename: string): ConfigFormat {
  return filename.toLowerCase().endsWith('.json') ? 'json' : 'yaml';
}

type Parsed = { ok: true; data: unknown } | { ok: false; message: string };

/**
 * Lists and mappings nested deeper than this are refused before anything walks them (the
 * YAML composer, the validator and the error messages all recurse, and run out of stack
 * near 1,000 levels). A real config nests about eight; serde_json's recursion limit is the same 128.
 */
export const MAX_NESTING = 128;

const tooDeep = `nested more than ${MAX_NESTING} levels deep (lists and mappings inside one another); a Meridian config nests about 8`;

function parseYaml(text: string, filename: string): Parsed {
  const lineCounter = new LineCounter();
  // uniqueKeys (the default) makes a repeated key an error, not a silent overwrite;
  // merge enables `<<: *defaults`, the usual way to share blocks between clusters.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${filename}:${line}:${col}`;
  };
  // The composer turns its own stack overflow into this error; say what the file did.
  const exhausted = doc.errors.find((e) => e.code === 'RESOURCE_EXHAUSTION');
  if (exhausted !== undefined) return { ok: false, message: `${at(exhausted.pos[0])}: ${tooDeep}` };
  if (doc.errors.length > 0) return { ok: false, message: doc.errors.map((e) => `${at(e.pos[0])}: ${e.message}`).join('\n') };
  const deep = deepYamlNode(doc.contents);
  if (deep !== undefined) return { ok: false, message: `${at(deep)}: ${tooDeep}` };
  try {
    return { ok: true, data: doc.toJS({ maxAliasCount: 100 }) };
  } catch (e) {
    // Unresolved aliases and alias bombs surface here, without a position.
    return { ok: false, message: `${filename}: ${(e as Error).message}` };
  }
}

/**
 * The offset of the first YAML collection nested deeper than MAX_NESTING, walked without
 * recursion. Aliases are not followed: each repeats a subtree walked where its anchor is.
 */
function deepYamlNode(root: unknown): number | undefined {
  const stack: { node: unknown; depth: number }[] = [{ node: root, depth: 0 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { node, depth } = top;
    if (isPair(node)) {
      stack.push({ node: node.key, depth }, { node: node.value, depth });
    } else if (isCollection(node)) {
      if (depth + 1 > MAX_NESTING) return (node as YamlNode).range?.[0] ?? 0;
      for (const item of node.items) stack.push({ node: item, depth: depth + 1 });
    }
  }
  return undefined;
}

/** The offset of the first `[` or `{` nested deeper than MAX_NESTING in JSON text (strings skipped). */
function deepJsonOffset(text: string): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_NESTING) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

function parseJson(text: string, filename: string): Parsed {
  const body = text.replace(/^\uFEFF/, '');
  const deep = deepJsonOffset(body);
  if (deep !== undefined) {
    const { line, col } = lineCol(body, deep);
    return { ok: false, message: `${filename}:${line}:${col}: ${tooDeep}` };
  }
  try {
    const data: unknown = JSON.parse(body);
    // JSON.parse keeps the last of two equal keys without a word; YAML is a superset
    // of JSON, so let the YAML parser find duplicates (with their position).
    const lineCounter = new LineCounter();
    const dup = parseDocument(body, { lineCounter, prettyErrors: false }).errors.find((e) => e.code === 'DUPLICATE_KEY');
    if (dup !== undefined) {
      const { line, col } = lineCounter.linePos(dup.pos[0]);
      return { ok: false, message: `${filename}:${line}:${col}: ${dup.message}` };
    }
    return { ok: true, data };
  } catch (e) {
    const message = (e as Error).message;
    const at = /at position (\d+)/.exec(message);
    if (at === null) return { ok: false, message: `${filename}: ${message}` };
    const { line, col } = lineCol(body, Number(at[1]));
    return { ok: false, message: `${filename}:${line}:${col}: ${message.replace(/ in JSON at position \d+.*$/, '')}` };
  }
}

/** Offset → 1-based line and column. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, col: offset - before.lastIndexOf('\n') };
}

/** Parse and validate config text. Pure: no file or environment access unless given. */
export function parseConfigText(text: string, opts: ParseOptions): LoadResult {
  const format = opts.format ?? formatOf(opts.filename);
  const parsed = format === 'json' ? parseJson(text, opts.filename) : parseYaml(text, opts.filename);
  if (!parsed.ok) return { ok: false, kind: 'parse', message: parsed.message };
  if (parsed.data === null || parsed.data === undefined) {
    return { ok: false, kind: 'invalid', errors: ['(root): the file is empty; a config needs "listeners" and "clusters"'] };
  }
  const v = validateConfig(parsed.data, opts.env === undefined ? {} : { env: opts.env });
  return v.ok ? { ok: true, config: v.config } : { ok: false, kind: 'invalid', errors: v.errors };
}

/**
 * Read, parse and validate a config file. `env` defaults to process.env (this is the
 * I/O boundary); pass `{}` to ignore the environment.
 */
export async function loadConfigFile(
  path: string,
  opts: { format?: ConfigFormat; env?: Readonly<Record<string, string | undefined>> } = {},
): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return { ok: false, kind: 'read', message: cannotRead(path, e) };
  }
  return parseConfigText(text, {
    filename: path,
    env: opts.env ?? process.env,
    ...(opts.format === undefined ? {} : { format: opts.format }),
  });
}

/** `cannot read FILE: no such file`: the reason in words, not Node's `ENOENT: ..., open 'FILE'`. */
export function cannotRead(path: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
  return `cannot read ${path}: ${why}`;
}
