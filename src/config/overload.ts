// Overload control's config: adaptive concurrency (with its queue), priority classes and
// hedging, shared by the proxy's config and the simulator's scenarios so they read alike.
import { z } from 'zod';
import type { HedgeOptions } from '../core/hedging.js';
import type { OverloadOptions } from '../core/overload-gate.js';
import { PRIORITIES } from '../core/priority.js';
import { describeValue } from './describe.js';
import { decimal, duration, fail, integer, percentNumber } from './fields.js';

export const prioritySchema = z.enum(PRIORITIES);

/** `{}` turns it on with Envoy's defaults (and Facebook's CoDel target and interval for the queue). */
export const adaptiveConcurrencySchema = z
  .strictObject({
    /** How often the limit is recomputed from the latency sampled since. */
    sample_window: duration().prefault('100ms'),
    /** Percentile of a window's latency compared with the minimum RTT. */
    percentile: decimal(1, 100).default(50),
    /** How often the minimum RTT is measured again (the limit held at min_limit meanwhile). */
    min_rtt_interval: duration().prefault('60s'),
    /** Up to this % of the interval is added at random to each. */
    min_rtt_jitter: percentNumber().default(15),
    /** Requests measured at min_limit for the minimum RTT. */
    min_rtt_requests: integer(1, 1024).default(50),
    /** Latency above the minimum RTT still taken as uncongested, in % of it. */
    buffer: decimal(0, 1000).default(100),
    min_limit: integer(1).default(3),
    max_limit: integer(1).default(1000),
    /** Requests over the limit wait here; 0 refuses them at once. */
    queue: z
      .strictObject({
        max: integer(0, 1_000_000).default(100),
        /** CoDel's target: the queueing delay tolerated; also the queue timeout while overloaded. */
        target: duration().prefault('5ms'),
        /** CoDel's interval; also the queue timeout while not overloaded. */
        interval: duration().prefault('100ms'),
        /** `adaptive`: newest first while overloaded (adaptive LIFO); `fifo`: always oldest first. */
        order: z.enum(['adaptive', 'fifo']).default('adaptive'),
      })
      .prefault({}),
    /** A request header naming the request's class (critical, default, sheddable), over its route's. */
    priority_header: z.string().regex(/^[!#$%&'*+.^_`|~0-9a-z-]+$/, 'must be a lowercase header name').optional(),
  })
  .superRefine((o, ctx) => {
    if (o.min_limit > o.max_limit) fail(ctx, `must be <= max_limit (${o.max_limit}), got ${o.min_limit}`, ['min_limit']);
  });

export type AdaptiveConcurrencyConfig = z.output<typeof adaptiveConcurrencySchema>;

const QUANTILE_RE = /^p(\d{1,2}(?:\.\d+)?)$/;

/** `after: p95` (a percentile of recent tries' latency) or a duration. */
const hedgeAfter = () =>
  z.unknown().transform((v, ctx): { quantile: number } | { ms: number } => {
    const m = typeof v === 'string' ? QUANTILE_RE.exec(v) : null;
    if (m) return { quantile: Number(m[1]) };
    const ms = duration().safeParse(v);
    if (ms.success) return { ms: ms.data };
    fail(ctx, `expected a percentile such as p95 or a duration such as 50ms, got ${describeValue(v)}`);
    return z.NEVER;
  });

export const hedgeSchema = z.strictObject({
  after: hedgeAfter().prefault('p95'),
  /** Hedges at most this % of requests, over time. */
  max_percent: percentNumber().default(5),
});

export type HedgeConfig = z.output<typeof hedgeSchema>;

export function coreOverloadOptions(c: AdaptiveConcurrencyConfig): OverloadOptions {
  return {
    sampleWindowMs: c.sample_window,
    percentile: c.percentile,
    minRttIntervalMs: c.min_rtt_interval,
    minRttJitterPercent: c.min_rtt_jitter,
    minRttRequests: c.min_rtt_requests,
    bufferPercent: c.buffer,
    minLimit: c.min_limit,
    maxLimit: c.max_limit,
    maxLength: c.queue.max,
    targetMs: c.queue.target,
    intervalMs: c.queue.interval,
    order: c.queue.order,
  };
}

export function coreHedgeOptions(c: HedgeConfig): HedgeOptions {
  return { ...('quantile' in c.after ? { quantile: c.after.quantile } : { afterMs: c.after.ms }), maxPercent: c.max_percent };
}
