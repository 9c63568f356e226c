// Issue 14's simulator targets, on the example scenarios and their seeds (docs/overload.md).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseScenarioText, runPolicy, type PolicyResult } from '../../src/sim/index.js';

const EXAMPLES = new URL('../../../examples/scenarios/', import.meta.url);

function run(file: string): PolicyResult {
  const s = parseScenarioText(readFileSync(new URL(file, EXAMPLES), 'utf8'));
  return runPolicy(s, s.policies[0] as PolicyResult['policy']);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

describe('overload control in the simulator (issue 14 targets)', () => {
  it('a 10x spike with adaptive concurrency and no hand-sized limit: goodput >= 90% of capacity, admitted p99 <= 2x, fast refusals, recovery within 2 s', () => {
    const r = run('spike-10x-adaptive.yaml');
    const capacity = 2000; // 20 servers x 2 workers / 20 ms
    const within = (a: number, b: number) => r.timeseries.filter((x) => x.t_s >= a && x.t_s < b);
    const pre = within(10, 40);
    const spike = within(40, 70);
    const goodput = spike.reduce((n, x) => n + x.completed, 0) / spike.length;
    assert.ok(goodput >= 0.9 * capacity, `goodput ${goodput}/s`);
    const preP99 = Math.max(...pre.map((x) => x.latency_ms.p99));
    const spikeP99 = Math.max(...spike.map((x) => x.latency_ms.p99));
    assert.ok(spikeP99 <= 2 * preP99, `spike p99 ${spikeP99} ms vs ${preP99} ms before`);
    const o = r.overload;
    assert.ok(o !== undefined);
    // A refusal is answered at once or at the queue's 5 ms timeout under overload.
    assert.ok(o.refusal_ms.p99 <= 5.01, `refusal p99 ${o.refusal_ms.p99} ms`);
    // Two seconds after the spike, the p99 is back within the range it had before.
    const after = within(72, 90).map((x) => x.latency_ms.p99);
    assert.ok(Math.max(...after) <= preP99, `after: ${after.join(' ')} vs ${preP99}`);
    assert.ok(median(after) <= 1.2 * median(pre.map((x) => x.latency_ms.p99)));
  });

  it('priority: critical requests see no refusal until sheddable traffic is fully shed', () => {
    const r = run('spike-10x-priority.yaml');
    // After the warm-up (the first minimum-RTT measurement holds the limit at 3 meanwhile).
    const ts = (r.overload as NonNullable<PolicyResult['overload']>).timeseries.filter((b) => b.t_s >= 10);
    const firstCritical = ts.findIndex((b) => (b.refused[0] as number) > 0);
    const firstSheddableShed = ts.findIndex((b) => (b.refused[2] as number) > 0 && b.admitted[2] === 0);
    assert.ok(firstCritical > 0 && firstSheddableShed > 0, `${firstCritical} ${firstSheddableShed}`);
    assert.ok(firstSheddableShed < firstCritical, `sheddable fully shed at bucket ${firstSheddableShed}, critical first refused at ${firstCritical}`);
    const from = ts.slice(firstCritical);
    const sheddableAdmitted = from.reduce((n, b) => n + (b.admitted[2] as number), 0);
    const sheddableOffered = from.reduce((n, b) => n + (b.admitted[2] as number) + (b.refused[2] as number), 0);
    assert.ok(sheddableAdmitted <= 0.001 * sheddableOffered, `${sheddableAdmitted} of ${sheddableOffered} sheddable admitted once critical was refused`);
    // Default work is refused before critical work too.
    assert.ok(ts.findIndex((b) => (b.refused[1] as number) > 0) < firstCritical);
  });

  it('hedging at p95 with one 10x-slow server of ten: p99.9 <= 0.3x of no hedging for <= 6% extra tries', () => {
    const hedged = run('hedging-slow-server.yaml');
    const none = run('hedging-none.yaml');
    assert.equal(none.hedges, 0);
    assert.ok(hedged.latency_ms.p999 <= 0.3 * none.latency_ms.p999, `p99.9 ${hedged.latency_ms.p999} vs ${none.latency_ms.p999} ms`);
    assert.ok(hedged.hedges <= 0.06 * hedged.requests, `${hedged.hedges} hedges for ${hedged.requests} requests`);
    assert.ok(hedged.hedges_won > 0 && hedged.hedges_won <= hedged.hedges);
  });
});
