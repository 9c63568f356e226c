// WebSocket through a running Meridian: echo, and drain closing a tunnel at its deadline.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { config, startMeridian, until } from './harness.js';

describe('websocket through meridian', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });

  it('echoes through the listener and is closed at the drain deadline', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
    cleanup.push(() => new Promise<void>((r) => wss.close(() => r())));
    const backendPort = (wss.address() as { port: number }).port;
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'ws' }] }],
        clusters: [{ name: 'ws', endpoints: [{ address: `127.0.0.1:${backendPort}` }] }],
      }),
    );
    const ws = new WebSocket(`ws://127.0.0.1:${m.port}/chat`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const reply = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
    ws.send('hello');
    assert.equal(await reply, 'hello');
    const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
    // The tunnel is long-lived: a drain waits for it up to the deadline, then closes it.
    await m.meridian.drainAndStop(300);
    assert.equal(await closed, 1006);
    await until(() => m.meridian.inFlight === 0, 2000, 'the tunnel to be accounted for');
    assert.equal(m.records.at(-1)!.status, 101);
  });

  it('retries an upgrade answered with a status retry_on lists, on another endpoint, as any request (Envoy)', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
    cleanup.push(() => new Promise<void>((r) => wss.close(() => r())));
    // An endpoint whose server is not ready for WebSocket yet: every upgrade gets a 503.
    let refusedUpgrades = 0;
    const busy = createServer();
    busy.on('upgrade', (_req, socket: Socket) => {
      refusedUpgrades++;
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => busy.close(() => r())));
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'ws' }] }],
        clusters: [
          {
            name: 'ws',
            policy: 'round_robin',
            endpoints: [{ address: `127.0.0.1:${(busy.address() as { port: number }).port}` }, { address: `127.0.0.1:${(wss.address() as { port: number }).port}` }],
            retries: { attempts: 1, retry_on: [503], budget: { min_per_second: 10 } },
          },
        ],
      }),
    );
    cleanup.push(() => m.meridian.drainAndStop(0));
    // Round robin alternates, and each retry takes the other endpoint's turn: every upgrade
    // goes first to the busy endpoint, then to the ready one.
    for (let i = 0; i < 4; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${m.port}/chat`);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const reply = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
      ws.send(`hello ${i}`);
      assert.equal(await reply, `hello ${i}`);
      ws.terminate();
    }
    await until(() => m.records.length === 4, 2000, 'the four tunnels to be reported');
    assert.equal(refusedUpgrades, 4);
    assert.deepEqual(m.records.map((r) => r.attempts), [2, 2, 2, 2]);
    assert.ok(m.records.every((r) => r.status === 101));
  });
});
