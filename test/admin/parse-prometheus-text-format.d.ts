// Types for the untyped test-only parser (https://github.com/yunyu/parse-prometheus-text-format):
// the shape of its output, prom2json's. Every number stays a string, as written.
declare module 'parse-prometheus-text-format' {
  export interface PrometheusSample {
    readonly labels?: Readonly<Record<string, string>>;
    /** Counters, gauges, untyped. */
    readonly value?: string;
    /** Histograms: cumulative count by upper bound ("0.5", "+Inf"). */
    readonly buckets?: Readonly<Record<string, string>>;
    /** Summaries. */
    readonly quantiles?: Readonly<Record<string, string>>;
    readonly count?: string;
    readonly sum?: string;
  }
  export interface PrometheusFamily {
    readonly name: string;
    /** '' when the family has no HELP line. */
    readonly help: string;
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    readonly metrics: readonly PrometheusSample[];
  }
  /** Throws on a line it cannot parse. */
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[];
}
