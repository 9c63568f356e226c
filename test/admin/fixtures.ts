// Shared by the admin tests: an endpoint's state as the data plane reports it.
import type { EndpointState } from '../../src/admin/types.js';

/** A healthy, idle endpoint named `id` (also its address), with `over` changed. */
export function endpoint(id: string, over: Partial<EndpointState> = {}): EndpointState {
  return {
    id,
    address: id,
    priority: 0,
    status: 'healthy',
    weight: 1,
    effectiveWeight: 1,
    active: 0,
    latencyEwmaMs: 0,
    ejectionsTotal: 0,
    requestsTotal: 0,
    failuresTotal: 0,
    poolOpen: 0,
    poolIdle: 0,
    ...over,
  };
}
