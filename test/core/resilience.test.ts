import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CircuitBreaker, decideRetry, RetryBudget, TokenBucket, type FailedTry } from '../../src/core/index.js';

describe('retry budget', () => {
  it('allows retries up to the percentage of active requests', () => {
    const b = new RetryBudget({ percent: 20, minPerSecond: 0 }, 0);
    for (let i = 0; i < 50; i++) b.requestStarted();
    let granted = 0;
    while (b.tryRetry(0)) granted++;
    assert.equal(granted, 10); // 20% of 50
    b.retryEnded();
    assert.equal(b.tryRetry(0), true);
    assert.equal(b.tryRetry(0), false);
  });

  it('keeps a floor of retries per second when traffic is low', () => {
    const b = new RetryBudget({ percent: 20, minPerSecond: 3 }, 0);
    b.requestStarted(); // 20% of 1 request allows none by percentage
    assert.deepEqual([b.tryRetry(0), b.tryRetry(0), b.tryRetry(0), b.tryRetry(0)], [true, true, true, false]);
    // The floor refills at 3 per second: one more after a third of a second.
    assert.equal(b.tryRetry(333), false);
    assert.equal(b.tryRetry(334), true);
  });

  it('never lets retries in flight exceed the budget (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('start', 'end', 'retry', 'retryEnd'), { maxLength: 400 }), (ops) => {
        const b = new RetryBudget({ percent: 25, minPerSecond: 0 }, 0);
        for (const op of ops) {
          if (op === 'start') b.requestStarted();
          else if (op === 'end') b.requestEnded();
          else if (op === 'retryEnd') b.retryEnded();
          else if (b.tryRetry(0)) assert.ok(b.activeRetries * 100 <= 25 * b.activeRequests);
        }
      }),
      { numRuns: 200, seed: 5 },
    );
  });
});

describe('retry decision', () => {
  const sent: FailedTry = { tries: 1, attempts: 1, nothingSent: false, replayable: true };
  const limits = (maxRetries: number, percent: number) => {
    const breaker = new CircuitBreaker({ maxRetries });
    const budget = new RetryBudget({ percent, minPerSecond: 0 }, 0);
    for (let i = 0; i < 10; i++) budget.requestStarted();
    return { breaker, budget };
  };

  it('refuses for the first reason that applies: not_replayable, attempts_exhausted, max_retries, budget', () => {
    const { breaker, budget } = limits(0, 0);
    const reason = (t: Partial<FailedTry>) => {
      const v = decideRetry({ ...sent, ...t }, breaker, budget, 0);
      return v.retry ? 'retry' : v.reason;
    };
    assert.equal(reason({ replayable: false, tries: 2 }), 'not_replayable');
    assert.equal(reason({ tries: 2 }), 'attempts_exhausted');
    assert.equal(reason({}), 'max_retries');
    const open = limits(1, 0);
    assert.deepEqual(decideRetry(sent, open.breaker, open.budget, 0), { retry: false, reason: 'budget' });
    assert.equal(open.breaker.used('retries'), 0, 'the breaker slot is given back when the budget refuses');
  });

  it('a granted retry holds a breaker slot and a budget slot', () => {
    const { breaker, budget } = limits(3, 20);
    assert.deepEqual(decideRetry(sent, breaker, budget, 0), { retry: true, counted: true });
    assert.equal(breaker.used('retries'), 1);
    assert.equal(budget.activeRetries, 1);
  });

  it('a try that sent nothing is retried within its attempts whatever the breaker and the budget say, holding neither', () => {
    const { breaker, budget } = limits(0, 0);
    assert.deepEqual(decideRetry({ ...sent, nothingSent: true }, breaker, budget, 0), { retry: true, counted: false });
    assert.equal(breaker.used('retries') + budget.activeRetries, 0);
    assert.equal(breaker.overflows('retries'), 0);
    assert.deepEqual(decideRetry({ ...sent, nothingSent: true, tries: 2 }, breaker, budget, 0), { retry: false, reason: 'attempts_exhausted' });
  });
});

describe('circuit breaker', () => {
  it('refuses past each limit, counts overflows, and frees on release', () => {
    const cb = new CircuitBreaker({ maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: 1 });
    assert.deepEqual([cb.tryAcquire('requests'), cb.tryAcquire('requests'), cb.tryAcquire('requests'), cb.tryAcquire('requests')], [true, true, true, false]);
    assert.equal(cb.isOpen('requests'), true);
    assert.equal(cb.overflows('requests'), 1);
    cb.release('requests');
    assert.equal(cb.tryAcquire('requests'), true);
    assert.deepEqual([cb.tryAcquire('connections'), cb.tryAcquire('connections'), cb.tryAcquire('connections')], [true, true, false]);
    assert.deepEqual([cb.tryAcquire('pending'), cb.tryAcquire('pending')], [true, false]);
    assert.deepEqual([cb.tryAcquire('retries'), cb.tryAcquire('retries')], [true, false]);
    assert.equal(cb.used('connections'), 2);
  });

  it('treats a release without an acquire as a bug', () => {
    assert.throws(() => new CircuitBreaker().release('requests'), /without acquire/);
  });
});

describe('token bucket', () => {
  it('allows a burst, then the rate, and says when to retry', () => {
    const t = new TokenBucket({ ratePerSecond: 10, burst: 5 }, 0);
    for (let i = 0; i < 5; i++) assert.equal(t.tryTake(0).ok, true);
    const refused = t.tryTake(0);
    assert.deepEqual(refused, { ok: false, retryAfterMs: 100 });
    assert.equal(t.tryTake(99).ok, false);
    assert.equal(t.tryTake(100).ok, true);
    // A long quiet spell refills only up to the burst.
    assert.equal(Math.round(t.available(60_000)), 5);
  });

  it('admits no more than burst + rate x time over any span (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (gaps) => {
        const t = new TokenBucket({ ratePerSecond: 20, burst: 4 }, 0);
        let now = 0;
        let admitted = 0;
        for (const g of gaps) {
          now += g;
          if (t.tryTake(now).ok) admitted++;
        }
        assert.ok(admitted <= 4 + (20 * now) / 1000 + 1e-9);
      }),
      { numRuns: 200, seed: 9 },
    );
  });
});
