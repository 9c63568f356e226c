/**
 * Building blocks for the config schema: each field type validates, says what was
 * wrong in words, and converts to the value the rest of Meridian wants (durations to
 * milliseconds, percentages to fractions, addresses to host + port).
 *
 * Every issue raised here is non-aborting on purpose: zod skips the cross-field
 * checks of an enclosing object once an aborting issue exists (its own `z.int()` is
 * one), and the brief is to report every error in one go. Hence `integer()` below.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isHostName, parseHostPort } from '../shared/address.js';
import { describeValue, listValues } from './describe.js';
import { formatDuration, parseDuration } from './duration.js';

/**
 * Whether this Node's net and dgram sockets take `reusePort` (SO_REUSEPORT; added in
 * 23.1.0, backported to 22.12.0). Older ones ignore the option, so it is checked here.
 */
export const REUSE_PORT = hasReusePort(process.versions.node);

/** Whether Node `version` (`24.1.0`, or `v24.1.0`) has `reusePort`. */
export function hasReusePort(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** Run a refinement even when other fields of the same object are invalid. */
export const ALWAYS = { when: () => true } as const;

/** Context passed to refinements; only `addIssue` is used. */
export type Ctx = z.core.$RefinementCtx<unknown>;

export function fail(ctx: Ctx, message: string, path: PropertyKey[] = []): void {
  ctx.addIssue({ code: 'custom', message, path, input: undefined });
}

// ---- numbers ---------------------------------------------------------------------

function rangeText(min: number, max: number): string {
  if (max === Number.MAX_SAFE_INTEGER) return `>= ${min}`;
  return `between ${min} and ${max}`;
}

/** A whole number in [min, max]. */
export function integer(min = 0, max = Number.MAX_SAFE_INTEGER) {
  return z.number().superRefine((n, ctx) => {
    if (!Number.isInteger(n)) fail(ctx, `expected a whole number, got ${n}`);
    else if (n < min || n > max) fail(ctx, `must be ${rangeText(min, max)}, got ${n}`);
  });
}

/** A finite number in [min, max] (or (min, max] when `exclusiveMin`). */
export function decimal(min: number, max = Infinity, opts: { exclusiveMin?: boolean } = {}) {
  return z.number().superRefine((n, ctx) => {
    const lowOk = opts.exclusiveMin === true ? n > min : n >= min;
    if (lowOk && n <= max) return;
    const low = `${opts.exclusiveMin === true ? '>' : '>='} ${min}`;
    fail(ctx, `must be ${max === Infinity ? low : `${low} and <= ${max}`}, got ${n}`);
  });
}

/** A number 0..100 meaning a percentage (for `*_percent` and `panic_threshold`). */
export const percentNumber = () => decimal(0, 100);

// ---- durations -------------------------------------------------------------------

/**
 * Node's timers overflow above 2^31-1 ms (about 24.8 days) and then fire at once, so a
 * timeout of "30d" would behave like "1ms". 596h is the largest whole hour below it.
 */
export const MAX_DURATION_MS = 596 * 3_600_000;

/**
 * A duration string → milliseconds. Zero is refused unless `allowZero` (a 0s interval spins).
 * `maxMs` defaults to what a Node timer can wait; the simulator's virtual time lifts it.
 */
export function duration(opts: { allowZero?: boolean; maxMs?: number } = {}) {
  const maxMs = opts.maxMs ?? MAX_DURATION_MS;
  return z.unknown().transform((v, ctx): number => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      fail(ctx, v === undefined ? 'required' : `expected a duration like "2s", got ${describeValue(v)}`);
      return z.NEVER;
    }
    if (ms === 0 && opts.allowZero !== true) fail(ctx, 'must be longer than 0s');
    if (ms > maxMs) fail(ctx, `must be at most ${formatDuration(maxMs)}, got ${describeValue(v)}`);
    return ms;
  });
}

/** `"10%"` → 0.1. Only the percent-string form is accepted, so a bare 10 is not ambiguous. */
export function percentString() {
  return z.unknown().transform((v, ctx): number => {
    const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(v) : null;
    const pct = m === null ? NaN : Number(m[1]);
    if (!(pct >= 0 && pct <= 100)) {
      fail(ctx, `expected a percentage from "0%" to "100%", got ${describeValue(v)}`);
      return z.NEVER;
    }
    return pct / 100;
  });
}

/** Probe results in a row that turn a target healthy or unhealthy: every health check's, the simulator's too. */
export function healthThresholds() {
  return { healthy_threshold: integer(1).default(2), unhealthy_threshold: integer(1).default(3) };
}

// ---- names and hosts ---------------------------------------------------------------

/** Listener and cluster names appear in metric labels and admin URLs: keep them plain. */
export function name() {
  return z.string().superRefine((s, ctx) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s)) {
      fail(ctx, `expected a name of letters, digits, "_", "-" or ".", got ${describeValue(s)}`);
    }
  });
}

/**
 * A bind address: an IP literal (v4 or v6, unbracketed) or `localhost`. Not other host
 * names: those are resolved only when the socket binds, so a name that resolves nowhere
 * (`on`, a typo) would pass validation and fail at start. Envoy's listener addresses are
 * IP literals for the same reason.
 */
export function bindAddress() {
  return z.string().superRefine((s, ctx) => {
    if (!isIP(s) && s !== 'localhost') fail(ctx, `expected an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got ${describeValue(s)}`);
  });
}

/** An endpoint address; kept as a string (see HostPort.address in src/shared/address.ts), split by the endpoint schema. */
export function hostPort() {
  return z.string().superRefine((s, ctx) => {
    const r = parseHostPort(s);
    if (typeof r === 'string') fail(ctx, r);
  });
}

/** A route host pattern: an exact host or `*.suffix`. Undefined when fine, else why not. */
function hostPatternProblem(v: unknown): string | undefined {
  const bare = typeof v === 'string' && v.startsWith('*.') ? v.slice(2) : v;
  if (typeof bare === 'string' && isHostName(bare)) return undefined;
  return `expected a host like "api.example.com" or "*.example.com", got ${describeValue(v)}`;
}

/**
 * One host pattern or a non-empty list of them → a list, lowercased since hosts match
 * case-insensitively. (Not a zod union: a union would hide which element was wrong.)
 */
export function hostPatterns() {
  return z.unknown().transform((v, ctx): string[] => {
    const items = typeof v === 'string' ? [v] : Array.isArray(v) ? (v as unknown[]) : undefined;
    if (items === undefined || items.length === 0) {
      fail(ctx, `expected a host or a non-empty list of hosts, got ${describeValue(v)}`);
      return z.NEVER;
    }
    items.forEach((h, i) => {
      const problem = hostPatternProblem(h);
      if (problem !== undefined) fail(ctx, problem, typeof v === 'string' ? [] : [i]);
    });
    return items.map((h) => String(h).toLowerCase());
  });
}

// ---- HTTP bits ---------------------------------------------------------------------

/** A URL path for exact/prefix matching. */
export function urlPath() {
  return z.string().superRefine((s, ctx) => {
    if (!s.startsWith('/')) fail(ctx, `must start with "/", got ${describeValue(s)}`);
    // What may appear unescaped in a request target (RFC 3986): no spaces or control characters.
    else if (!/^[\x21-\x7e]*$/.test(s)) fail(ctx, `must not contain spaces or control characters (percent-encode them), got ${describeValue(s)}`);
  });
}

/**
 * An Upgrade protocol a route may tunnel (RFC 9110 §7.8: `name` or `name/version`, tokens),
 * lowercased as Meridian compares them. h2c and h2 are refused: an h2c upgrade is always
 * stripped and forwarded as plain HTTP/1.1 (as Envoy and HAProxy do), never tunnelled.
 */
export function upgradeProtocol() {
  return z.string().transform((s, ctx): string => {
    const p = s.toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+(\/[!#$%&'*+.^_`|~0-9a-z-]+)?$/.test(p)) {
      fail(ctx, `expected an Upgrade protocol token like "websocket", got ${describeValue(s)}`);
    } else if (p === 'h2c' || p === 'h2') {
      fail(ctx, `${describeValue(s)} cannot be tunnelled: Meridian strips an h2c upgrade and forwards the request as plain HTTP/1.1`);
    }
    return p;
  });
}

/** A regular expression source that must compile (JS syntax, as the proxy will use). */
export function regexSource() {
  return z.string().superRefine((s, ctx) => {
    try {
      new RegExp(s);
    } catch (e) {
      fail(ctx, `does not compile: ${(e as Error).message}`);
    }
  });
}

export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/** `200`, `"204"`, `"200-399"` or `"2xx"` → an inclusive range of HTTP statuses. */
export function statusRange() {
  return z.unknown().transform((v, ctx): StatusRange => {
    const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v : '';
    let r: StatusRange | undefined;
    let m: RegExpExecArray | null;
    if ((m = /^([1-5]\d\d)$/.exec(text))) r = { min: Number(m[1]), max: Number(m[1]) };
    else if ((m = /^([1-5]\d\d)-([1-5]\d\d)$/.exec(text))) r = { min: Number(m[1]), max: Number(m[2]) };
    else if ((m = /^([1-5])xx$/.exec(text))) r = { min: Number(m[1]) * 100, max: Number(m[1]) * 100 + 99 };
    if (r === undefined || r.min > r.max) {
      fail(ctx, `expected a status code or range like 200, "200-399" or "2xx", got ${describeValue(v)}`);
      return z.NEVER;
    }
    return r;
  });
}

// ---- "exactly one of" --------------------------------------------------------------

/**
 * A refinement for objects whose keys are alternatives (path: exact | prefix | regex).
 * Reported at the object, since no single key is the wrong one.
 */
export function exactlyOne(keys: readonly string[]) {
  return (v: object, ctx: Ctx): void => {
    const present = keys.filter((k) => (v as Record<string, unknown>)[k] !== undefined);
    if (present.length === 1) return;
    const got = present.length === 0 ? 'none' : present.join(' and ');
    fail(ctx, `expected exactly one of ${listValues(keys)}; got ${got}`);
  };
}

/** An IPv4/IPv6 address, or a CIDR block of one (`10.0.0.0/8`, `::1/128`). */
export function cidr() {
  return z.string().superRefine((s, ctx) => {
    const [addr, bits, extra] = s.split('/');
    const family = isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    const ok = family !== 0 && extra === undefined && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max));
    if (!ok) fail(ctx, `expected an IP address or CIDR like "10.0.0.0/8", got ${describeValue(s)}`);
  });
}
