/**
 * `meridian simulate FILE [--json OUT] [--html OUT] [--policy P,...] [--seed S] [--quiet]`:
 * run a scenario through the simulator (src/sim) and report per policy.
 *
 * Exit codes: 0 done; 1 the scenario is invalid (every problem listed by path); 2 bad
 * arguments or unreadable file. The table goes to stdout, the progress bar to stderr.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../config/index.js';
import { cannotRead } from '../config/load.js';
import { POLICY_NAMES, type PolicyName } from '../core/types.js';
import { renderHtml } from '../sim/html.js';
import { parseScenarioText, ScenarioError, simulate, type Scenario } from '../sim/index.js';
import { formatTable } from '../sim/table.js';
import type { Io } from './io.js';

export const SIMULATE_USAGE_LINE = 'usage: meridian simulate FILE [--json OUT] [--html OUT] [--policy P,...] [--seed S] [--until T] [--quiet]';

export const SIMULATE_USAGE = `${SIMULATE_USAGE_LINE}

Runs the scenario FILE (YAML) in virtual time through the same balancing code the proxy
uses, once per policy on the same seed and arrivals, and prints one row per policy.
  --json OUT        write every figure as JSON (byte-identical for the same seed); says where
  --html OUT        write a self-contained HTML report with plots; says where
  --policy P,...    override the scenario's policies (${POLICY_NAMES.join(', ')})
  --seed S          override the scenario's seed
  --until T         end the run at T of virtual time if the scenario runs longer (what it
                    schedules after T does not happen)
  --quiet           no progress bar
  -h, --help        show this help

Scenario format: docs/simulator.md; examples in examples/scenarios/.
Exit status: 0 done, 1 invalid scenario, 2 bad arguments or unreadable file.`;

export interface ProgressSink {
  readonly isTTY?: boolean;
  write(s: string): unknown;
}

export async function runSimulate(argv: string[], io: Io, progress: ProgressSink | undefined = process.stderr): Promise<number> {
  let values: { json?: string; html?: string; policy?: string; seed?: string; until?: string; quiet?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        json: { type: 'string' },
        html: { type: 'string' },
        policy: { type: 'string' },
        seed: { type: 'string' },
        until: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    io.stderr(`meridian simulate: ${(e as Error).message}\n\n${SIMULATE_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout(SIMULATE_USAGE);
    return 0;
  }
  const usage = (msg: string): number => {
    io.stderr(`meridian simulate: ${msg}\n\n${SIMULATE_USAGE}`);
    return 2;
  };
  if (positionals.length !== 1) return usage('expected exactly one scenario FILE');
  const file = positionals[0] as string;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    io.stderr(`meridian simulate: ${cannotRead(file, e)}`);
    return 2;
  }
  let scenario: Scenario;
  try {
    scenario = parseScenarioText(text);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    io.stderr(`${file}: ${e.message}`);
    return 1;
  }
  if (values.policy !== undefined) {
    const ps = values.policy.split(',');
    const bad = ps.find((p) => !(POLICY_NAMES as readonly string[]).includes(p));
    if (bad !== undefined) return usage(`--policy: unknown policy "${bad}" (expected ${POLICY_NAMES.join(', ')})`);
    scenario = { ...scenario, policies: ps as PolicyName[] };
  }
  if (values.seed !== undefined) {
    if (!/^[0-9]+$/.test(values.seed) || Number(values.seed) > 4294967295) return usage(`--seed must be an integer in 0..4294967295, got '${values.seed}'`);
    scenario = { ...scenario, seed: Number(values.seed) };
  }
  if (values.until !== undefined) {
    const untilMs = parseDuration(values.until);
    if (untilMs === undefined || !(untilMs > scenario.warmupMs)) return usage(`--until must be a duration past the scenario's warmup, got '${values.until}'`);
    scenario = { ...scenario, durationMs: Math.min(scenario.durationMs, untilMs) };
  }
  const bar = values.quiet || progress === undefined ? undefined : progressBar(progress, scenario.policies);
  const report = simulate(scenario, bar ? { onProgress: bar } : {});
  if (bar && progress?.isTTY) progress.write('\r\x1b[2K');
  io.stdout(formatTable(report));
  const outputs: [string | undefined, string, () => string][] = [
    [values.json, 'JSON', () => `${JSON.stringify(report, null, 1)}\n`],
    [values.html, 'HTML report', () => renderHtml(report)],
  ];
  for (const [path, what, render] of outputs) {
    if (path === undefined) continue;
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, render());
    } catch (e) {
      io.stderr(`meridian simulate: cannot write ${path}: ${(e as Error).message}`);
      return 2;
    }
    // On stderr, beside the progress: stdout stays the table alone, for scripts.
    io.stderr(`wrote the ${what} to ${resolve(path)}`);
  }
  return 0;
}

/** A one-line bar redrawn in place on a terminal; elsewhere one line per finished policy. */
function progressBar(out: ProgressSink, policies: readonly PolicyName[]): (policy: number, fraction: number) => void {
  let lastDrawn = -1;
  return (policy, fraction) => {
    const total = (policy + fraction) / policies.length;
    if (out.isTTY) {
      const pct = Math.floor(total * 100);
      if (pct === lastDrawn) return;
      lastDrawn = pct;
      const width = 30;
      const filled = Math.round(total * width);
      out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}%  ${policies[policy]}`);
    } else if (fraction >= 1) {
      out.write(`simulated ${policies[policy]} (${policy + 1}/${policies.length})\n`);
    }
  };
}
