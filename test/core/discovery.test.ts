import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addressEndpoints,
  DiscoveredSet,
  diffEndpoints,
  endpointAddress,
  ManualClock,
  mergeEndpoints,
  nextRefreshMs,
  srvEndpoints,
  type DiscoveryOptions,
  type Endpoint,
} from '../../src/core/index.js';

const eps = (...ips: string[]): Endpoint[] => addressEndpoints(ips.map((i) => `10.0.0.${i}`), 80);
const set = (o: Partial<DiscoveryOptions> = {}) => {
  const clock = new ManualClock(1_000);
  return { clock, d: new DiscoveredSet({ onEmpty: 'keep', minChangeIntervalMs: 0, maxRemovalPercent: 100, holdForMs: Infinity, ...o }, clock) };
};

describe('discovery: what an answer does to the discovered set', () => {
  it('applies the first answer whole, then only changes', () => {
    const { d } = set();
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1', '2') }), { action: 'apply', endpoints: eps('1', '2'), added: 2, removed: 0, changed: 0, first: true, recovered: false });
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('2', '1') }), { action: 'unchanged', recovered: false });
    const r = d.offer({ ok: true, endpoints: eps('2', '3') });
    assert.deepEqual(r, { action: 'apply', endpoints: eps('2', '3'), added: 1, removed: 1, changed: 0, first: false, recovered: false });
    assert.deepEqual(d.current, eps('2', '3'));
  });

  it('a failed answer keeps the last good set, and says so once per outage', () => {
    const { d } = set();
    d.offer({ ok: true, endpoints: eps('1') });
    assert.deepEqual(d.offer({ ok: false, error: 'ECONNREFUSED' }), { action: 'keep', reason: 'failed', error: 'ECONNREFUSED', firstOfOutage: true });
    assert.deepEqual(d.offer({ ok: false, error: 'ETIMEOUT' }), { action: 'keep', reason: 'failed', error: 'ETIMEOUT', firstOfOutage: false });
    assert.deepEqual(d.current, eps('1'));
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'unchanged', recovered: true });
    assert.equal((d.offer({ ok: false, error: 'x' }) as { firstOfOutage: boolean }).firstOfOutage, true, 'a new outage is logged again');
  });

  it('on_empty keep: an empty answer keeps the set; on_empty clear: it empties it, past the removal guard', () => {
    const keep = set().d;
    keep.offer({ ok: true, endpoints: eps('1', '2') });
    assert.deepEqual(keep.offer({ ok: true, endpoints: [] }), { action: 'keep', reason: 'empty', error: 'the source returned no endpoints', firstOfOutage: true });
    assert.deepEqual(keep.current, eps('1', '2'));
    const clear = set({ onEmpty: 'clear', maxRemovalPercent: 10 }).d;
    clear.offer({ ok: true, endpoints: eps('1', '2') });
    assert.deepEqual(clear.offer({ ok: true, endpoints: [] }), { action: 'apply', endpoints: [], added: 0, removed: 2, changed: 0, first: false, recovered: false });
  });

  it('damping: a change within the minimum interval waits for it, and the newest answer is applied then', () => {
    const { d, clock } = set({ minChangeIntervalMs: 5_000 });
    d.offer({ ok: true, endpoints: eps('1') }); // at 1000
    clock.advance(1_000);
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1', '2') }), { action: 'damped', untilMs: 6_000 });
    clock.advance(1_000);
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1', '2', '3') }), { action: 'damped', untilMs: 6_000 });
    assert.deepEqual(d.offer({ ok: false, error: 'timeout' }).action, 'keep');
    clock.set(6_000);
    const r = d.reconsider();
    assert.equal(r.action, 'apply');
    assert.deepEqual(d.current, eps('1', '2', '3'));
    assert.deepEqual(d.reconsider(), { action: 'unchanged', recovered: false });
  });

  it('damping: a flap back to the applied set cancels the waiting change', () => {
    const { d, clock } = set({ minChangeIntervalMs: 5_000 });
    d.offer({ ok: true, endpoints: eps('1') });
    clock.advance(1_000);
    assert.equal(d.offer({ ok: true, endpoints: eps('2') }).action, 'damped');
    assert.equal(d.offer({ ok: true, endpoints: eps('1') }).action, 'unchanged');
    clock.advance(10_000);
    assert.deepEqual(d.reconsider(), { action: 'unchanged', recovered: false });
    assert.deepEqual(d.current, eps('1'));
  });

  it('holds a change removing more than max_removal_percent, logging it once per set, and applies one within it', () => {
    const { d } = set({ maxRemovalPercent: 50 });
    d.offer({ ok: true, endpoints: eps('1', '2', '3', '4') });
    // 3 of 4 removed = 75% > 50%.
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'held', removing: 3, of: 4, firstForSet: true, untilMs: Infinity });
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'held', removing: 3, of: 4, firstForSet: false, untilMs: Infinity });
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('2') }), { action: 'held', removing: 3, of: 4, firstForSet: true, untilMs: Infinity });
    assert.deepEqual(d.current, eps('1', '2', '3', '4'));
    // 2 of 4 = 50%: not more than the limit.
    assert.equal(d.offer({ ok: true, endpoints: eps('1', '2', '5', '6') }).action, 'apply');
  });

  it('hold_for: a held removal the source keeps giving is applied by the first answer hold_for after it first came', () => {
    const { clock, d } = set({ maxRemovalPercent: 50, holdForMs: 60_000 });
    d.offer({ ok: true, endpoints: eps('1', '2', '3', '4') });
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'held', removing: 3, of: 4, firstForSet: true, untilMs: 61_000 });
    clock.advance(59_999);
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'held', removing: 3, of: 4, firstForSet: false, untilMs: 61_000 });
    assert.deepEqual(d.current, eps('1', '2', '3', '4'));
    clock.advance(1);
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'apply', endpoints: eps('1'), added: 0, removed: 3, changed: 0, first: false, recovered: false, heldForMs: 60_000 });
    assert.deepEqual(d.current, eps('1'));
  });

  it('hold_for: another set, a re-weighted one, or a failed or empty answer in between starts the hold again', () => {
    const { clock, d } = set({ maxRemovalPercent: 50, holdForMs: 60_000 });
    d.offer({ ok: true, endpoints: eps('1', '2', '3', '4') });
    d.offer({ ok: true, endpoints: eps('1') });
    clock.advance(30_000);
    // Another small set: its own hold, from now.
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('2') }), { action: 'held', removing: 3, of: 4, firstForSet: true, untilMs: 91_000 });
    clock.advance(30_000);
    // The same ids with another weight is another answer.
    const heavier = eps('2').map((e) => ({ ...e, weight: 5 }));
    assert.deepEqual(d.offer({ ok: true, endpoints: heavier }), { action: 'held', removing: 3, of: 4, firstForSet: true, untilMs: 121_000 });
    clock.advance(30_000);
    // A failure (the source in trouble) restarts the hold; the set is not logged again.
    assert.equal(d.offer({ ok: false, error: 'SERVFAIL' }).action, 'keep');
    assert.deepEqual(d.offer({ ok: true, endpoints: heavier }), { action: 'held', removing: 3, of: 4, firstForSet: false, untilMs: 151_000 });
    clock.advance(30_000);
    assert.equal(d.offer({ ok: true, endpoints: [] }).action, 'keep');
    assert.deepEqual(d.offer({ ok: true, endpoints: heavier }), { action: 'held', removing: 3, of: 4, firstForSet: false, untilMs: 181_000 });
    clock.advance(60_000);
    assert.equal(d.offer({ ok: true, endpoints: heavier }).action, 'apply');
    assert.deepEqual(d.current, heavier);
  });

  it('hold_for: a flap back to the applied set ends a hold; the order of an answer does not restart one', () => {
    const { clock, d } = set({ maxRemovalPercent: 40, holdForMs: 60_000 });
    const four = eps('1', '2', '3', '4');
    d.offer({ ok: true, endpoints: four });
    d.offer({ ok: true, endpoints: eps('1') });
    clock.advance(10_000);
    assert.equal(d.offer({ ok: true, endpoints: four }).action, 'unchanged');
    clock.advance(60_000);
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'held', removing: 3, of: 4, firstForSet: true, untilMs: 131_000 });
    // 2 left of 4, given in two orders (a DNS server rotating its records): one hold.
    assert.equal(d.offer({ ok: true, endpoints: eps('3', '4') }).action, 'held');
    clock.advance(60_000);
    assert.equal(d.offer({ ok: true, endpoints: eps('3', '4').reverse() }).action, 'apply');
    assert.deepEqual(d.current, eps('3', '4').reverse());
  });

  it('hold_for: a hold run out still waits for min_change_interval, and is applied when it ends', () => {
    const { clock, d } = set({ maxRemovalPercent: 50, holdForMs: 1_000, minChangeIntervalMs: 10_000 });
    d.offer({ ok: true, endpoints: eps('1', '2', '3', '4') });
    clock.advance(10_000);
    assert.equal(d.offer({ ok: true, endpoints: eps('1', '2', '3', '5') }).action, 'apply');
    assert.equal(d.offer({ ok: true, endpoints: eps('1') }).action, 'held');
    clock.advance(1_000);
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1') }), { action: 'damped', untilMs: 21_000 });
    clock.advance(9_000);
    assert.deepEqual(d.reconsider(), { action: 'apply', endpoints: eps('1'), added: 0, removed: 3, changed: 0, first: false, recovered: false, heldForMs: 10_000 });
  });

  it('accept(): the held or damped change applies at once (an operator accepted it); nothing waiting, nothing changes', () => {
    const { d } = set({ maxRemovalPercent: 50, minChangeIntervalMs: 10_000 });
    d.offer({ ok: true, endpoints: eps('1', '2', '3', '4') });
    assert.deepEqual(d.accept(), { action: 'unchanged', recovered: false });
    assert.equal(d.offer({ ok: true, endpoints: eps('1') }).action, 'held');
    assert.deepEqual(d.accept(), { action: 'apply', endpoints: eps('1'), added: 0, removed: 3, changed: 0, first: false, recovered: false });
    assert.deepEqual(d.current, eps('1'));
    assert.deepEqual(d.offer({ ok: true, endpoints: eps('1', '2') }), { action: 'damped', untilMs: 11_000 });
    assert.equal(d.accept().action, 'apply');
    assert.deepEqual(d.current, eps('1', '2'));
    assert.deepEqual(d.accept(), { action: 'unchanged', recovered: false });
    assert.deepEqual(d.reconsider(), { action: 'unchanged', recovered: false }, 'the damping timer finds nothing left to do');
  });

  it('a weight or priority change is a change, not an addition', () => {
    const a: Endpoint[] = [{ id: 'x', address: 'x', weight: 1 }];
    assert.deepEqual(diffEndpoints(a, [{ id: 'x', address: 'x', weight: 2 }]), { added: 0, removed: 0, changed: 1 });
    assert.deepEqual(diffEndpoints(a, [{ id: 'x', address: 'x', weight: 1, locality: { priority: 1 } }]), { added: 0, removed: 0, changed: 1 });
  });
});

describe('discovery: refresh timing', () => {
  const ttl = { refresh: 'ttl' as const, minTtlMs: 1_000, maxTtlMs: 60_000 };
  it('follows the TTL within [min_ttl, max_ttl]', () => {
    assert.equal(nextRefreshMs(ttl, 30, 0), 30_000);
    assert.equal(nextRefreshMs(ttl, 0, 0), 1_000);
    assert.equal(nextRefreshMs(ttl, 86_400, 0), 60_000);
    assert.equal(nextRefreshMs(ttl, undefined, 0), 1_000);
  });
  it('backs off after failures, doubling from min_ttl up to max_ttl', () => {
    assert.deepEqual([1, 2, 3, 7, 50].map((f) => nextRefreshMs(ttl, undefined, f)), [1_000, 2_000, 4_000, 60_000, 60_000]);
  });
  it('a fixed refresh interval is kept, failures or not', () => {
    assert.equal(nextRefreshMs({ ...ttl, refresh: 2_500 }, 300, 0), 2_500);
    assert.equal(nextRefreshMs({ ...ttl, refresh: 2_500 }, undefined, 4), 2_500);
  });
});

describe('discovery: records to endpoints', () => {
  it('A/AAAA: one endpoint per address, id = address, sorted and deduplicated', () => {
    assert.deepEqual(addressEndpoints(['10.0.0.2', '::1', '10.0.0.1', '10.0.0.2'], 8080), [
      { id: '10.0.0.1:8080', address: '10.0.0.1:8080', weight: 1 },
      { id: '10.0.0.2:8080', address: '10.0.0.2:8080', weight: 1 },
      { id: '[::1]:8080', address: '[::1]:8080', weight: 1 },
    ]);
    assert.equal(endpointAddress('fe80::1', 443), '[fe80::1]:443');
  });

  it('SRV: priority -> priority level, weight -> weight (0 -> 1, capped at 10000), every address of a target', () => {
    const got = srvEndpoints([
      { priority: 20, weight: 0, port: 81, addresses: ['10.0.0.9'] },
      { priority: 10, weight: 60, port: 80, addresses: ['10.0.0.2', '10.0.0.1'] },
      { priority: 10, weight: 65_535, port: 80, addresses: ['10.0.0.3'] },
    ]);
    assert.deepEqual(got, [
      { id: '10.0.0.1:80', address: '10.0.0.1:80', weight: 60, locality: { priority: 10 } },
      { id: '10.0.0.2:80', address: '10.0.0.2:80', weight: 60, locality: { priority: 10 } },
      { id: '10.0.0.3:80', address: '10.0.0.3:80', weight: 10_000, locality: { priority: 10 } },
      { id: '10.0.0.9:81', address: '10.0.0.9:81', weight: 1, locality: { priority: 20 } },
    ]);
  });

  it('SRV: an address named by two records keeps the better priority and sums weights within it', () => {
    const got = srvEndpoints([
      { priority: 5, weight: 1, port: 80, addresses: ['10.0.0.1'] },
      { priority: 1, weight: 3, port: 80, addresses: ['10.0.0.1'] },
      { priority: 1, weight: 4, port: 80, addresses: ['10.0.0.1'] },
    ]);
    assert.deepEqual(got, [{ id: '10.0.0.1:80', address: '10.0.0.1:80', weight: 7, locality: { priority: 1 } }]);
  });

  it('configured endpoints win over a discovered one with the same id', () => {
    const configured: Endpoint[] = [{ id: '10.0.0.1:80', address: '10.0.0.1:80', weight: 5 }];
    const r = mergeEndpoints(configured, eps('1', '2'));
    assert.deepEqual(r.endpoints.map((e) => [e.id, e.weight]), [['10.0.0.1:80', 5], ['10.0.0.2:80', 1]]);
    assert.deepEqual(r.shadowed, ['10.0.0.1:80']);
  });
});
