// The simulator: scenarios in, per-policy results out. No I/O here; the CLI reads and writes files.
import { runPolicy, type PolicyResult, type RunOptions } from './engine.js';
import type { Scenario, SimEvent } from './scenario.js';

export { runPolicy, type PolicyResult, type ServerResult } from './engine.js';
export { parseScenario, parseScenarioText, ScenarioError, type Scenario } from './scenario.js';

export interface SimReport {
  readonly scenario: string;
  readonly seed: number;
  readonly duration_s: number;
  readonly warmup_s: number;
  readonly bucket_s: number;
  readonly regions: readonly string[];
  readonly events: readonly { readonly t_s: number; readonly label: string }[];
  readonly results: readonly PolicyResult[];
}

export interface SimulateOptions {
  /** Progress over the whole report: (policy index, fraction of that policy's run). */
  readonly onProgress?: (policy: number, fraction: number) => void;
}

/** Every policy of the scenario on the same seed and arrivals, one after another. */
export function simulate(s: Scenario, options: SimulateOptions = {}): SimReport {
  const results = s.policies.map((policy, i) => {
    const run: RunOptions = options.onProgress ? { onProgress: (f) => options.onProgress?.(i, f) } : {};
    return runPolicy(s, policy, run);
  });
  return {
    scenario: s.name,
    seed: s.seed,
    duration_s: s.durationMs / 1000,
    warmup_s: s.warmupMs / 1000,
    bucket_s: s.bucketMs / 1000,
    regions: s.regions.map((r) => r.name),
    events: [
      ...s.events.map((e) => ({ t_s: e.atMs / 1000, label: eventLabel(s, e) })),
      ...s.clients.flatMap((c) => c.spikes.map((sp) => ({ t_s: sp.atMs / 1000, label: `${c.name} x${sp.multiply} for ${sp.forMs / 1000}s` }))),
    ].sort((a, b) => a.t_s - b.t_s),
    results,
  };
}

export function eventLabel(s: Scenario, e: SimEvent): string {
  const region = (i: number): string => s.regions[i]?.name ?? '?';
  const dur = (ms: number): string => (ms === Infinity ? '' : ` for ${ms / 1000}s`);
  switch (e.kind) {
    case 'kill':
    case 'revive':
      return `${e.kind} ${e.server.label}`;
    case 'slow':
      return `slow ${e.server.label} x${e.factor}${dur(e.forMs)}`;
    case 'errors':
      return `errors ${e.server.label} ${e.rate * 100}%${dur(e.forMs)}`;
    case 'region_down':
      return `${region(e.region)} down`;
    case 'region_up':
      return `${region(e.region)} up`;
    case 'add':
      return `add ${e.count} to ${region(e.region)}`;
    case 'remove':
      return `remove ${e.servers.map((sv) => sv.label).join(', ')}`;
    case 'partition':
      return `partition ${s.clients[e.client]?.name ?? '?'} / ${region(e.region)}${dur(e.forMs)}`;
    case 'heal':
      return `heal ${s.clients[e.client]?.name ?? '?'} / ${region(e.region)}`;
  }
}
