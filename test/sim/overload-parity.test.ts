/**
 * The simulator admits as the proxy does under adaptive concurrency: one trace of arrivals
 * (with their classes) and ends is fed once through the proxy's admission
 * (src/proxy/admission.ts: `admit` with the gate, the class from the priority header,
 * `awaitSlot` for queued requests) over a runtime built from a config, and once through
 * the simulator's lifecycle (src/sim/try-outcome.ts, the class as a client group gives it)
 * with a gate built from the same `adaptive_concurrency`. Both must admit, queue and
 * refuse alike, and hand freed slots to the same waiters.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { coreOverloadOptions, coreRetryRules } from '../../src/config/index.js';
import { CircuitBreaker, ManualClock, RetryBudget, SeededRng, type RequestLifecycle } from '../../src/core/index.js';
import { OverloadGate } from '../../src/core/overload-gate.js';
import type { Priority } from '../../src/core/priority.js';
import { admit, awaitSlot } from '../../src/proxy/admission.js';
import { buildRuntime } from '../../src/proxy/runtime.js';
import { simLifecycle } from '../../src/sim/try-outcome.js';
import { config } from '../proxy/harness.js';

type Step = readonly [atMs: number, request: string, what: Priority | 'end'];

/** A limit of exactly two in flight and a queue of two, so every decision is known. */
const TRACE: readonly Step[] = [
  [0, 'A', 'default'],
  [0, 'B', 'default'],
  [1, 'C', 'sheddable'],
  [2, 'D', 'critical'],
  [3, 'E', 'default'],
  [4, 'F', 'default'],
  [10, 'A', 'end'],
  [20, 'B', 'end'],
  [21, 'G', 'sheddable'],
  [30, 'D', 'end'],
  [31, 'H', 'critical'],
];

const EXPECTED = [
  '0 A admitted',
  '0 B admitted',
  '1 C queued',
  '2 D queued',
  '3 C overloaded',
  '3 E queued',
  '4 F overloaded',
  '10 D admitted',
  '20 E admitted',
  '21 G queued',
  '30 G admitted',
  '31 H queued',
];

const CFG = config({
  listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
  clusters: [
    {
      name: 'c',
      endpoints: [{ address: '127.0.0.1:1', id: 'e0' }],
      adaptive_concurrency: { min_limit: 2, max_limit: 2, priority_header: 'x-priority', queue: { max: 2, interval: '10s' } },
    },
  ],
});

/** Arrivals and ends through one side; `arrive` returns the lifecycle and logs what happened to it. */
function run(arrive: (clock: ManualClock, req: string, p: Priority, log: string[]) => RequestLifecycle | undefined, clock: ManualClock): string[] {
  const log: string[] = [];
  const live = new Map<string, RequestLifecycle>();
  for (const [atMs, req, what] of TRACE) {
    clock.set(atMs);
    if (what === 'end') {
      (live.get(req) as RequestLifecycle).end();
      continue;
    }
    const lc = arrive(clock, req, what, log);
    if (lc !== undefined) live.set(req, lc);
  }
  return log;
}

describe('simulator and proxy admit alike under adaptive concurrency', () => {
  it('the same arrivals and ends give the same admissions, queueing, refusals and hand-overs', () => {
    const proxyClock = new ManualClock(0);
    const rt = buildRuntime(CFG, undefined, proxyClock, new SeededRng(1)).runtime;
    const listener = CFG.listeners[0] as Extract<(typeof CFG.listeners)[number], { protocol: 'http' }>;
    const ctx = { listener: 'web', limits: listener.limits, clock: proxyClock };
    const fromProxy = run((clock, req, p, log) => {
      const headers = { host: 'example.test', 'x-priority': p };
      const message = { method: 'GET', url: '/', headers, rawHeaders: Object.entries(headers).flat() } as unknown as IncomingMessage;
      const a = admit(ctx, rt, message, '/', '127.0.0.1', true);
      if (!a.ok) {
        log.push(`${clock.nowMs()} ${req} ${a.code}`);
        return undefined;
      }
      if (a.queued === true) {
        log.push(`${clock.nowMs()} ${req} queued`);
        awaitSlot(a.lifecycle, a.cluster, clock, (v) => log.push(`${clock.nowMs()} ${req} ${v}`));
      } else log.push(`${clock.nowMs()} ${req} admitted`);
      return a.lifecycle;
    }, proxyClock);

    const simClock = new ManualClock(0);
    const cluster = rt.clusters.get('c');
    assert.ok(cluster !== undefined);
    const c = CFG.clusters[0] as (typeof CFG.clusters)[number];
    const life = {
      core: cluster.core,
      breaker: new CircuitBreaker({}),
      budget: new RetryBudget({}, 0),
      retry: coreRetryRules({ attempts: 0, retry_on: [] }),
      overload: new OverloadGate(coreOverloadOptions(c.adaptive_concurrency as NonNullable<typeof c.adaptive_concurrency>), new SeededRng(1)),
    };
    const fromSim = run((clock, req, p, log) => {
      const lc = simLifecycle(life, clock, new SeededRng(2));
      lc.priority = p;
      const v = lc.enter();
      log.push(`${clock.nowMs()} ${req} ${v}`);
      if (v === 'queued') lc.onGate = (answer) => log.push(`${clock.nowMs()} ${req} ${answer}`);
      return v === 'admitted' || v === 'queued' ? lc : undefined;
    }, simClock);

    assert.deepEqual(fromSim, fromProxy);
    assert.deepEqual(fromProxy, EXPECTED);
  });
});
