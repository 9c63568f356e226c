/**
 * The automatic half of the dashboard's Activity panel: what changed between two snapshots
 * (endpoint health, DNS answers and steering, policy, panic), in words. Controls answered
 * through the admin API are recorded where they are answered (src/admin/dashboard.ts);
 * these are the changes nobody clicked, and the ones made through the core admin API
 * (a drain), which the demo sees only in the state.
 */
import type { ActivityEvent, DemoSnapshot } from '../admin/dashboard-types.js';

const STATE: Record<string, string> = { healthy: 'healthy', slow_start: 'slow start', draining: 'draining', ejected: 'ejected', unhealthy: 'unhealthy' };

export function changes(before: DemoSnapshot | undefined, after: Omit<DemoSnapshot, 'events'>): ActivityEvent[] {
  if (!before) return [];
  const t = after.t;
  const out: ActivityEvent[] = [];
  for (const r of after.regions) {
    const was = before.regions.find((x) => x.name === r.name);
    if (!was) continue;
    for (const e of r.endpoints) {
      const old = was.endpoints.find((x) => x.id === e.id);
      if (old && old.status !== e.status) out.push({ t, source: 'health', text: `${r.name}: ${e.id} ${STATE[old.status] ?? old.status} → ${STATE[e.status] ?? e.status}` });
    }
    if (was.dnsUp !== r.dnsUp) out.push({ t, source: 'DNS', text: r.dnsUp ? `${r.name} back in DNS answers` : `${r.name} out of DNS answers` });
    if (was.policy !== r.policy) out.push({ t, source: 'policy', text: `${r.name}: policy ${was.policy} → ${r.policy}` });
    if (was.inPanic !== r.inPanic) out.push({ t, source: 'panic', text: r.inPanic ? `${r.name}: cluster in panic (too few healthy endpoints: balancing over all)` : `${r.name}: out of panic` });
  }
  for (const g of after.geos) {
    const old = before.geos.find((x) => x.name === g.name);
    if (old && old.region !== g.region) out.push({ t, source: 'DNS', text: `${g.name} steered ${old.region} → ${g.region}` });
  }
  return out;
}
