// Response rate limiting (BIND/Knot RRL) accounting, on a manual clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { type IpAddress, parseIp } from '../../src/core/ip.js';
import { type RateLimitAction, type ResponseRateLimitOptions, ResponseRateLimiter } from '../../src/core/response-rate-limiter.js';

const ip = (s: string): IpAddress => parseIp(s)!;
const opts = (over: Partial<ResponseRateLimitOptions> = {}): ResponseRateLimitOptions => ({ responsesPerSecond: 10, windowMs: 2000, slip: 2, ipv4PrefixLength: 24, ipv6PrefixLength: 56, maxPrefixes: 1000, ...over });
const times = (rrl: ResponseRateLimiter, addr: string, n: number): RateLimitAction[] => Array.from({ length: n }, () => rrl.check(ip(addr)));

describe('ResponseRateLimiter', () => {
  it('answers a second of responses, then drops, slipping every second limited one', () => {
    const rrl = new ResponseRateLimiter(opts(), new ManualClock());
    assert.deepEqual(times(rrl, '127.0.1.1', 10), Array(10).fill('answer'));
    assert.deepEqual(times(rrl, '127.0.1.1', 4), ['drop', 'slip', 'drop', 'slip']);
  });

  it('credits the rate over time, at most one second of it', () => {
    const clock = new ManualClock();
    const rrl = new ResponseRateLimiter(opts(), clock);
    times(rrl, '127.0.1.1', 10);
    clock.advance(100);
    assert.deepEqual(times(rrl, '127.0.1.1', 2), ['answer', 'drop']);
    clock.advance(60_000);
    assert.deepEqual(times(rrl, '127.0.1.1', 11).filter((a) => a === 'answer').length, 10, 'a quiet minute buys one second, not sixty');
  });

  it('remembers a flood for the window: the debt must be paid back before answers flow', () => {
    const clock = new ManualClock();
    const rrl = new ResponseRateLimiter(opts(), clock);
    times(rrl, '127.0.1.1', 10 + 100); // balance 0, then down to the floor -(10/s x 2s) = -20
    clock.advance(2000); // -20 + 20 = 0: still below one answer's worth
    assert.equal(rrl.check(ip('127.0.1.1')) === 'answer', false);
    clock.advance(2100); // -1 + 21 = 20, capped at 10
    assert.deepEqual(times(rrl, '127.0.1.1', 11).filter((a) => a === 'answer').length, 10);
  });

  it('keys IPv4 by /24 and IPv6 by /56 (configurable)', () => {
    const rrl = new ResponseRateLimiter(opts({ responsesPerSecond: 1, slip: 0 }), new ManualClock());
    assert.deepEqual([rrl.check(ip('127.0.1.5')), rrl.check(ip('127.0.1.200')), rrl.check(ip('127.0.2.1'))], ['answer', 'drop', 'answer']);
    assert.deepEqual([rrl.check(ip('2001:db8:0:100::1')), rrl.check(ip('2001:db8:0:1ff::9')), rrl.check(ip('2001:db8:0:200::1'))], ['answer', 'drop', 'answer']);
    const wide = new ResponseRateLimiter(opts({ responsesPerSecond: 1, slip: 0, ipv4PrefixLength: 16, ipv6PrefixLength: 60 }), new ManualClock());
    assert.deepEqual([wide.check(ip('10.1.2.3')), wide.check(ip('10.1.99.3')), wide.check(ip('10.2.0.1'))], ['answer', 'drop', 'answer']);
    assert.deepEqual([wide.check(ip('2001:db8::1')), wide.check(ip('2001:db8:0:f::1')), wide.check(ip('2001:db8:0:10::1'))], ['answer', 'drop', 'answer']);
  });

  it('slip 0 drops every limited answer, slip 1 truncates every one', () => {
    const never = new ResponseRateLimiter(opts({ responsesPerSecond: 1, slip: 0 }), new ManualClock());
    assert.deepEqual(times(never, '127.0.1.1', 4), ['answer', 'drop', 'drop', 'drop']);
    const always = new ResponseRateLimiter(opts({ responsesPerSecond: 1, slip: 1 }), new ManualClock());
    assert.deepEqual(times(always, '127.0.1.1', 4), ['answer', 'slip', 'slip', 'slip']);
  });

  it('tracks at most maxPrefixes, forgetting the longest held', () => {
    const rrl = new ResponseRateLimiter(opts({ responsesPerSecond: 1, slip: 0, maxPrefixes: 3 }), new ManualClock());
    for (const a of ['10.0.1.1', '10.0.2.1', '10.0.3.1']) rrl.check(ip(a));
    assert.equal(rrl.check(ip('10.0.1.1')), 'drop');
    rrl.check(ip('10.0.4.1'));
    assert.equal(rrl.size, 3);
    assert.equal(rrl.check(ip('10.0.1.1')), 'answer', '10.0.1.0/24 was forgotten: a fresh second');
  });

  it('refuses options that make no sense', () => {
    assert.throws(() => new ResponseRateLimiter(opts({ responsesPerSecond: 0 }), new ManualClock()), /responsesPerSecond/);
    assert.throws(() => new ResponseRateLimiter(opts({ slip: 1.5 }), new ManualClock()), /slip/);
  });
});
