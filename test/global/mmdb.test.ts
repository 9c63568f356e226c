// geo.mmdb: client locations from a MaxMind DB, read with the `maxmind` package. The
// fixture is written at test time in the real format (test/global/mmdb-writer.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/index.js';
import { GlobalLayer } from '../../src/global/global-layer.js';
import { MmdbLocator } from '../../src/global/mmdb.js';
import { ecs, quiet, udpQuery } from './helpers.js';
import { writeMmdb } from './mmdb-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'meridian-mmdb-'));
const dbPath = join(dir, 'city.mmdb');
writeFileSync(
  dbPath,
  writeMmdb([
    { cidr: '10.1.0.0/16', record: { city: { names: { en: 'London' } }, location: { latitude: 51.5, longitude: -0.1 } } },
    { cidr: '10.2.3.0/24', record: { city: { names: { en: 'Mumbai' } }, location: { latitude: 19.1, longitude: 72.9 } } },
    { cidr: '10.3.0.0/16', record: { country: { iso_code: 'XX' } } }, // a record without a location
  ]),
);

function layerConfig(mmdb: string, cidrs: unknown[] = []) {
  const r = validateConfig({
    global: {
      dns: { address: '127.0.0.1', port: 0, zone: 'meridian.test' },
      regions: [
        { name: 'us-east', location: { lat: 39.0, lon: -77.5 }, addresses: ['127.0.0.11'] },
        { name: 'eu-west', location: { lat: 53.3, lon: -6.3 }, addresses: ['127.0.0.12'] },
        { name: 'ap-south', location: { lat: 19.1, lon: 72.9 }, addresses: ['127.0.0.13'] },
      ],
      geo: { mmdb, cidrs },
      hostnames: [{ name: 'www.meridian.test', policy: 'geo' }],
    },
  });
  if (!r.ok || r.config.global === undefined) throw new Error(r.ok ? 'no global' : r.errors.join('\n'));
  return r.config.global;
}

describe('geo.mmdb', () => {
  let layer: GlobalLayer;
  before(async () => {
    layer = new GlobalLayer(layerConfig(dbPath, [{ cidr: '10.1.9.0/24', region: 'ap-south' }]), { log: quiet });
    await layer.start();
  });
  after(() => layer.close());

  it('locates clients the CIDR table does not know, and steers them to the nearest region', () => {
    const london = layer.decide('www.meridian.test', '10.1.2.3');
    assert.deepEqual([london?.decision.region, london?.decision.locationSource, london?.decision.location], ['eu-west', 'external', { lat: 51.5, lon: -0.1 }]);
    assert.equal(layer.decide('www.meridian.test', '10.2.3.200')?.decision.region, 'ap-south');
  });

  it('lets the CIDR table win where both know the client, and falls back to config order where neither does', () => {
    const pinned = layer.decide('www.meridian.test', '10.1.9.9');
    assert.deepEqual([pinned?.decision.region, pinned?.decision.locationSource], ['ap-south', 'cidr']);
    for (const ip of ['10.3.1.1', '192.0.2.1']) {
      const unknown = layer.decide('www.meridian.test', ip);
      assert.deepEqual([unknown?.decision.region, unknown?.decision.reason], ['us-east', 'default'], ip);
    }
  });

  it('answers DNS queries with the region the mmdb location is nearest to (ECS)', async () => {
    const port = layer.ports().dns;
    const r = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs('10.2.3.0', 24) });
    assert.deepEqual((r.answers ?? []).map((a) => a.data), ['127.0.0.13']);
  });

  it('refuses a file that is not a MaxMind DB, naming it', async () => {
    const bogus = join(dir, 'bogus.mmdb');
    writeFileSync(bogus, 'not a database');
    await assert.rejects(MmdbLocator.open(bogus), new RegExp(`geo.mmdb: ${bogus.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not a MaxMind DB`));
    await assert.rejects(MmdbLocator.open(join(dir, 'missing.mmdb')), /geo\.mmdb: cannot read .*missing\.mmdb/);
    const broken = new GlobalLayer(layerConfig(bogus), { log: quiet });
    await assert.rejects(broken.start(), /is not a MaxMind DB/);
    await broken.close();
  });
});
