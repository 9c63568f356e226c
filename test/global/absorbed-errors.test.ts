// Errors inside the global layer are absorbed, counted and logged once per cause, and the
// responder and probers carry on: a DNS responder fed a steering state that throws, and a
// region prober whose callback throws. Real UDP and HTTP sockets on 127.0.0.1.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import pino from 'pino';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { causeOf, ErrorReporter } from '../../src/admin/error-reporter.js';
import { ProxyMetrics } from '../../src/admin/metrics.js';
import { SeededRng } from '../../src/core/rng.js';
import { DnsResponder } from '../../src/global/dns-responder.js';
import { DnsServer } from '../../src/global/dns-server.js';
import { RegionProber } from '../../src/global/region-prober.js';
import { globalConfig, quiet, testUdpBatch, udpQuery } from './helpers.js';

/** A pino logger whose lines land in `lines`, parsed. */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ base: null }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

async function internalErrors(metrics: ProxyMetrics): Promise<Record<string, number>> {
  const family = parsePrometheusTextFormat(await metrics.metricsText()).find((f) => f.name === 'meridian_internal_errors_total');
  return Object.fromEntries((family?.metrics ?? []).map((m) => [`${m.labels?.['component']}/${m.labels?.['cause']}`, Number(m.value)]));
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('absorbed errors in the global layer', () => {
  it('a steering state that throws: SERVFAIL, counted each time, logged once, and other names still answered', async () => {
    const dns = globalConfig().global!.dns;
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const { log, lines } = capture();
    const errors = new ErrorReporter({ log, count: (c, k) => metrics.internalError(c, k) });
    // As GlobalLayer wires it: the responder's errors go to the reporter as dns_responder.
    const responder = new DnsResponder(
      dns,
      ['www.meridian.test', 'broken.meridian.test'],
      (name) => {
        if (name === 'broken.meridian.test') throw new TypeError("Cannot read properties of undefined (reading 'addresses')");
        return { decision: { policy: 'geo', region: 'us-east', reason: 'nearest', order: ['us-east'], skipped: [], spilledFrom: [], locationSource: 'none', scopePrefixLength: 0 }, addresses: ['127.0.0.11'] };
      },
      (err, ctx) => errors.report('dns_responder', causeOf(err), err, { transport: ctx.transport, client: ctx.remoteAddress }),
    );
    const server = new DnsServer({ address: '127.0.0.1', port: 0, respond: (m, c) => responder.respond(m, c), udpBatch: testUdpBatch(), idleTimeoutMs: 1000, maxConnections: 10, log: quiet });
    const port = await server.listen();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await udpQuery(port, { questions: [{ type: 'A', name: 'broken.meridian.test' }] });
        assert.equal(r.rcode, 'SERVFAIL');
      }
      const ok = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }] });
      assert.equal(ok.rcode, 'NOERROR');
      assert.deepEqual(await internalErrors(metrics), { 'dns_responder/TypeError': 3 });
      const logged = lines.filter((l) => l['component'] === 'dns_responder');
      assert.equal(logged.length, 1, 'one line per cause per minute');
      assert.equal(logged[0]?.['level'], 40);
      assert.equal(logged[0]?.['cause'], 'TypeError');
      assert.equal(logged[0]?.['transport'], 'udp');
      assert.match(String(logged[0]?.['msg']), /^dns_responder error absorbed \(TypeError\): Cannot read properties of undefined/);
    } finally {
      await server.close();
    }
  });

  it('a region prober whose callback throws: reported, never an unhandled rejection, and it keeps probing', async () => {
    const health = createServer((_req, res) => res.end('{"healthy_fraction": 1}'));
    await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(health.address() as { port: number }).port}/readyz`;
    const rejections: unknown[] = [];
    const onRejection = (r: unknown) => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    let probes = 0;
    const errors: unknown[] = [];
    const check = { url, interval: 10, timeout: 1000, jitter: 0, healthy_threshold: 1, unhealthy_threshold: 1 };
    const prober = new RegionProber(
      'us-east',
      check,
      new SeededRng(1),
      () => {
        probes++;
        throw new RangeError('probe callback broke');
      },
      (err) => errors.push(err),
    );
    try {
      prober.start();
      await waitFor(() => errors.length >= 4, 'four probes, each callback throwing');
      const seen = probes;
      await waitFor(() => probes > seen, 'another probe');
      assert.deepEqual(rejections, []);
      assert.ok(errors.every((e) => e instanceof RangeError));
    } finally {
      prober.stop();
      process.off('unhandledRejection', onRejection);
      health.closeAllConnections();
      await new Promise((r) => health.close(r));
    }
  });
});

describe('ErrorReporter', () => {
  it('counts every report, logs a cause once per interval, and says how many it did not log', () => {
    let now = 0;
    const logged: Record<string, unknown>[] = [];
    const counted: string[] = [];
    const r = new ErrorReporter({ log: { warn: (o) => logged.push(o as Record<string, unknown>) }, count: (c, k) => counted.push(`${c}/${k}`), intervalMs: 1000, nowMs: () => now });
    const boom = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    for (let i = 0; i < 5; i++) r.report('http2_session', causeOf(boom), boom);
    r.report('http2_stream', 'ERR_HTTP2_STREAM_ERROR', new Error('closed'));
    now = 999;
    r.report('http2_session', 'ECONNRESET', boom);
    now = 1000;
    r.report('http2_session', 'ECONNRESET', boom, { listener: 'web' });
    assert.equal(counted.length, 8);
    assert.deepEqual(
      logged.map((l) => [l['component'], l['cause'], l['not_logged_since_last'], l['listener']]),
      [
        ['http2_session', 'ECONNRESET', undefined, undefined],
        ['http2_stream', 'ERR_HTTP2_STREAM_ERROR', undefined, undefined],
        ['http2_session', 'ECONNRESET', 5, 'web'],
      ],
    );
  });
});
