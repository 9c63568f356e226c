/**
 * Two Prometheus text expositions as one, for a worker pool's primary: the workers'
 * aggregated metrics and the primary's own (its DNS layer, the errors it absorbed). A
 * family both hold (`meridian_internal_errors_total`) is written once, with the samples
 * of both; a series both hold is summed, as prom-client's aggregator sums the workers'.
 * Concatenating the two would repeat the family's HELP and TYPE lines, which Prometheus
 * refuses.
 */

interface Family {
  readonly meta: string[];
  readonly samples: Map<string, number>;
}

function parse(text: string, into: Map<string, Family>): void {
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (?:HELP|TYPE) (\S+)/.exec(line);
    if (meta !== null) {
      const name = meta[1] as string;
      let f = into.get(name);
      if (f === undefined) {
        f = { meta: [], samples: new Map() };
        into.set(name, f);
      }
      if (f.meta.length < 2 && !f.meta.some((m) => m.slice(0, 6) === line.slice(0, 6))) f.meta.push(line);
      current = f;
      continue;
    }
    if (current === undefined || line.startsWith('#')) continue;
    // `name{labels} value`: label values may hold spaces, the value never does.
    const cut = line.lastIndexOf(' ');
    const series = line.slice(0, cut);
    current.samples.set(series, (current.samples.get(series) ?? 0) + Number(line.slice(cut + 1)));
  }
}

export function mergeExpositions(...texts: readonly string[]): string {
  const families = new Map<string, Family>();
  for (const t of texts) parse(t, families);
  let out = '';
  for (const f of families.values()) {
    out += `${f.meta.join('\n')}\n`;
    for (const [series, value] of f.samples) out += `${series} ${value}\n`;
    out += '\n';
  }
  return out;
}
