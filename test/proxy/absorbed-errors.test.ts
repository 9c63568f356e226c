// HTTP/2 session and stream errors a client provokes are logged once per cause and counted
// (meridian_internal_errors_total), and the listener keeps serving. Raw frames over a real
// socket to a real Meridian on 127.0.0.1.
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Meridian } from '../../src/node/meridian.js';
import { backends, closeAll, config, until } from './harness.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

const SETTINGS = frame(4, 0, 0);
/** HEADERS (END_HEADERS) on stream 0: a connection error (RFC 9113 §6.2), the session is torn down. */
const HEADERS_ON_STREAM_0 = Buffer.concat([PREFACE, SETTINGS, frame(1, 4, 0, Buffer.from([0x82]))]);
/** A GET on stream 1 (HPACK: :method GET, :scheme http, :path /, :authority x), then RST_STREAM(PROTOCOL_ERROR). */
const RESET_WITH_ERROR = Buffer.concat([PREFACE, SETTINGS, frame(1, 4, 1, Buffer.from([0x82, 0x86, 0x84, 0x41, 0x01, 0x78])), frame(3, 0, 1, Buffer.from([0, 0, 0, 1]))]);

/** Write `bytes` on a new connection; `closed` resolves once either side closed it. */
function send(port: number, bytes: Buffer): { closed: Promise<void>; end(): void } {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.on('data', () => {});
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.write(bytes);
  return { closed, end: () => s.end() };
}

function h2get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = h2connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request({ ':path': '/' });
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => {
        client.close();
        resolve(Number(h[':status']));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP/2 errors are absorbed, counted and logged once per cause', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('malformed frames and error resets from raw sockets: one log line per cause, every one counted, the listener serves on', async () => {
    const bs = await backends(1);
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ base: null }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const cfg = config({
      admin: { port: 0 },
      access_log: { enabled: false },
      listeners: [{ name: 'h2c', address: '127.0.0.1', port: 0, http2: { enabled: true }, routes: [{ cluster: 'c' }] }],
      clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${bs[0]!.port}` }] }],
    });
    const meridian = new Meridian(cfg, { logger, onAccess: () => {}, seed: 1 });
    await meridian.start();
    cleanup.push(meridian, ...bs);
    const port = meridian.ports()['h2c']!;
    const counted = async () => {
      const f = parsePrometheusTextFormat(await meridian.metrics.metricsText()).find((x) => x.name === 'meridian_internal_errors_total');
      return Object.fromEntries((f?.metrics ?? []).map((m) => [`${m.labels?.['component']}/${m.labels?.['cause']}`, Number(m.value)]));
    };

    // A connection error: Meridian tears the session down and closes the connection.
    for (let i = 0; i < 3; i++) await send(port, HEADERS_ON_STREAM_0).closed;
    await until(async () => (await counted())['http2_session/ERR_HTTP2_ERROR'] === 3, 5000, 'three session errors counted');
    // A stream error: the session lives on, until the client ends the connection (a FIN,
    // not a reset: Meridian may still be writing to it).
    const reset = send(port, RESET_WITH_ERROR);
    await until(async () => (await counted())['http2_stream/ERR_HTTP2_STREAM_ERROR'] === 1, 5000, 'the stream error counted');
    reset.end();
    await reset.closed;

    assert.equal(await h2get(port), 200, 'the listener still serves HTTP/2');
    assert.deepEqual(await counted(), { 'http2_session/ERR_HTTP2_ERROR': 3, 'http2_stream/ERR_HTTP2_STREAM_ERROR': 1 });
    const absorbed = lines.filter((l) => typeof l['component'] === 'string' && String(l['component']).startsWith('http2_'));
    assert.deepEqual(
      absorbed.map((l) => [l['level'], l['component'], l['cause'], l['listener']]),
      [
        [40, 'http2_session', 'ERR_HTTP2_ERROR', 'h2c'],
        [40, 'http2_stream', 'ERR_HTTP2_STREAM_ERROR', 'h2c'],
      ],
    );
  });
});
