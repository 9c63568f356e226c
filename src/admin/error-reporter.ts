/**
 * Errors Meridian absorbs to keep serving: a broken HTTP/2 session, a health-check
 * callback that threw, a DNS responder exception answered SERVFAIL. Each is counted
 * every time (`meridian_internal_errors_total{component,cause}`) and logged as a warning
 * at most once per cause per interval, the next line saying how many were not logged in
 * between: a client that breaks sessions in a loop costs a counter increment, not a log
 * line each (Envoy's ENVOY_LOG_PERIODIC_MISC does the same for its noisy paths).
 */
import { performance } from 'node:perf_hooks';

/** Absorb one error: `component` says where (`http2_session`, `health_check`, ...), `cause` what (an error code or name). */
export type ReportError = (component: string, cause: string, err: unknown, fields?: Readonly<Record<string, unknown>>) => void;

export interface ErrorReporterOptions {
  readonly log: { warn(obj: object, msg?: string): void };
  /** Counts every report (the metric); called before the rate limit. */
  readonly count?: (component: string, cause: string) => void;
  /** At most one log line per cause this often. Default 60 s. */
  readonly intervalMs?: number;
  readonly nowMs?: () => number;
}

/** Causes remembered at once; past it the memory starts over (a flood of distinct causes logs again, bounded). */
const MAX_CAUSES = 1000;

/** The cause of an error as a bounded label: its code (`ECONNRESET`, `ERR_HTTP2_ERROR`), else its class name. */
export function causeOf(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.name;
  return typeof err;
}

export class ErrorReporter {
  readonly #o: ErrorReporterOptions;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, { atMs: number; suppressed: number }>();

  constructor(options: ErrorReporterOptions) {
    this.#o = options;
    this.#intervalMs = options.intervalMs ?? 60_000;
    this.#now = options.nowMs ?? (() => performance.now());
  }

  readonly report: ReportError = (component, cause, err, fields = {}) => {
    this.#o.count?.(component, cause);
    const key = `${component}\0${cause}`;
    const now = this.#now();
    const seen = this.#last.get(key);
    if (seen !== undefined && now - seen.atMs < this.#intervalMs) {
      seen.suppressed++;
      return;
    }
    if (seen === undefined && this.#last.size >= MAX_CAUSES) this.#last.clear();
    this.#last.set(key, { atMs: now, suppressed: 0 });
    const message = err instanceof Error ? err.message : String(err);
    const since = seen !== undefined && seen.suppressed > 0 ? { not_logged_since_last: seen.suppressed } : {};
    this.#o.log.warn({ component, cause, err: message, ...fields, ...since }, `${component} error absorbed (${cause}): ${message}`);
  };
}
