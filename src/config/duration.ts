/**
 * Durations in config files (and scenarios, src/sim): a non-negative decimal number
 * immediately followed by a unit, `ms`, `s`, `m` or `h` (`250ms`, `2s`, `1.5s`, `1m`, `1h`,
 * `0s`), or several such parts from the largest unit down, each unit at most once, as
 * Prometheus writes them: `1m30s`, `1h30m`, `2s500ms`.
 *
 * Deliberately strict: no bare numbers (is `5` seconds or milliseconds?), no spaces, no
 * sign, no repeated or ascending units (`30s1m`). The parsed value is whole milliseconds;
 * a value that is not (`0.5ms`) is rejected rather than silently rounded.
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
type Unit = keyof typeof UNIT_MS;

const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** `"1.5s"` → 1500; anything that is not a duration string → undefined. */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  if (!DURATION_RE.test(text)) return undefined;
  let ms = 0;
  let previous = Infinity;
  for (const [, n, unit] of text.matchAll(PART_RE)) {
    const size = UNIT_MS[unit as Unit];
    if (size >= previous) return undefined;
    previous = size;
    ms += Number(n) * size;
  }
  // Floating point: 1.1 * 1000 = 1100.0000000000002, so compare with a tolerance.
  const whole = Math.round(ms);
  if (Math.abs(ms - whole) > 1e-6 || !Number.isSafeInteger(whole)) return undefined;
  return whole;
}

/**
 * Milliseconds → the shortest exact duration string, using the largest unit that
 * divides it: 1500 → "1500ms", 90000 → "90s", 3600000 → "1h". Round-trips through
 * parseDuration for every non-negative safe integer.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`not a duration in ms: ${ms}`);
  if (ms === 0) return '0s';
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
