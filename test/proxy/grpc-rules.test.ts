// The gRPC rules Meridian applies on its own: deadlines read from grpc-timeout, the status of
// its local replies, grpc-message encoding.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GRPC, grpcMessage, grpcStatusOf, grpcTimeoutMs, isGrpc } from '../../src/proxy/grpc.js';

describe('gRPC rules', () => {
  it('reads grpc-timeout in every unit, rounding up to whole milliseconds', () => {
    assert.deepEqual(
      ['1H', '2M', '3S', '250m', '1500u', '1n'].map((v) => grpcTimeoutMs(v)),
      [3_600_000, 120_000, 3000, 250, 2, 1],
    );
  });

  it('ignores a malformed grpc-timeout: no unit, an unknown unit, 9 digits, a sign, two values', () => {
    assert.deepEqual(
      ['10', '10x', '123456789m', '-5m', ' 5m', undefined, ['5m', '6m']].map((v) => grpcTimeoutMs(v)),
      [undefined, undefined, undefined, undefined, undefined, undefined, undefined],
    );
  });

  it('maps local replies to gRPC statuses', () => {
    assert.deepEqual(
      [
        grpcStatusOf('no_healthy_endpoint', 503),
        grpcStatusOf('connect_failure', 502),
        grpcStatusOf('upstream_tls', 502),
        grpcStatusOf('rate_limited', 429),
        grpcStatusOf('timeout', 504),
        grpcStatusOf('no_route', 404),
        grpcStatusOf('bad_request', 400),
      ],
      [GRPC.UNAVAILABLE, GRPC.UNAVAILABLE, GRPC.UNAVAILABLE, GRPC.RESOURCE_EXHAUSTED, GRPC.DEADLINE_EXCEEDED, GRPC.UNIMPLEMENTED, GRPC.INTERNAL],
    );
  });

  it('percent-encodes grpc-message outside printable ASCII, and % itself', () => {
    assert.equal(grpcMessage('50% done: café\n'), '50%25 done: caf%C3%A9%0A');
  });

  it('gRPC-Web is not gRPC here: it passes as plain HTTP', () => {
    assert.deepEqual(
      ['application/grpc', 'application/grpc+proto', 'application/grpc-web', 'application/json'].map((ct) => isGrpc({ 'content-type': ct })),
      [true, true, false, false],
    );
  });
});
