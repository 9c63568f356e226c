import type { Cluster } from '../core/cluster.js';
import type { CheckResult, CheckTarget } from '../health/active-checker.js';

/**
 * A core cluster as an active health checker's target: its hosts' endpoints are probed,
 * and each verdict goes to the cluster's health state machine (thresholds,
 * 'health_changed'), then to `recorded` (metrics, or the relay to workers).
 */
export function clusterCheckTarget(core: Cluster, recorded: (r: CheckResult) => void = () => {}): CheckTarget {
  return {
    endpoints: () => core.hosts.map((h) => h.endpoint),
    record: (r) => {
      const host = core.host(r.endpoint.id);
      // Left the cluster since the checker last read its endpoints: the verdict judges nothing.
      if (host === undefined) return;
      core.recordCheck(host, r.ok);
      recorded(r);
    },
  };
}
