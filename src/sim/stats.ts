/**
 * Streaming statistics for one simulated run: counters and HDR histograms, nothing kept
 * per request, so memory stays bounded whatever the duration. Latencies are recorded in
 * microseconds (3 significant digits, up to an hour).
 */
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;

export function newHistogram(): Histogram {
  return hdr.build({ bitBucketSize: 64, lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, autoResize: false, useWebAssembly: false });
}

/** Latency in ms -> recorded microseconds (at least 1, capped at the histogram's range). */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.min(3_600_000_000, Math.max(1, Math.round(ms * 1000))));
}

export function percentileMs(h: Histogram, p: number): number {
  return h.totalCount === 0 ? 0 : h.getValueAtPercentile(p) / 1000;
}

/** One time-series bucket, filled while it is current and then frozen. */
export interface Bucket {
  /** Start of the bucket, virtual seconds. */
  readonly t_s: number;
  requests: number;
  completed: number;
  failed: number;
  shed: number;
  retries: number;
  latency_ms: { mean: number; p50: number; p90: number; p99: number };
  /** Requests arriving per region (by region order of the scenario). */
  regions: number[];
  /** Requests started per server (by server order of the report). */
  servers: number[];
}

/** Round for reports: figures stay readable and the JSON stays byte-stable. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
