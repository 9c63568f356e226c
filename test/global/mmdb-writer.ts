/**
 * A minimal MaxMind DB writer for test fixtures (no npm package writes the format):
 * IPv4 only, 24-bit records, data of maps, strings, doubles and unsigned integers — what a
 * GeoLite2-City record's `location` needs. It follows the MaxMind DB File Format
 * Specification 2.0: a binary search tree over the address bits, 16 zero bytes, the data
 * section, then the metadata marker and map. The reader under test is the `maxmind`
 * package, so a fixture it reads back is a fixture in the real format.
 */

type Value = string | number | { readonly [k: string]: Value } | readonly Value[] | { readonly uint: number };

function control(type: number, size: number): Buffer {
  if (size >= 29) throw new Error('fixture writer: sizes under 29 only');
  return type <= 7 ? Buffer.from([(type << 5) | size]) : Buffer.from([size, type - 7]);
}

function encode(v: Value): Buffer {
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([control(2, b.length), b]);
  }
  if (typeof v === 'number') {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return Buffer.concat([control(3, 8), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([control(11, v.length), ...v.map(encode)]);
  if ('uint' in v && typeof v.uint === 'number') {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v.uint);
    return Buffer.concat([control(6, 4), b]);
  }
  const entries = Object.entries(v as { readonly [k: string]: Value });
  return Buffer.concat([control(7, entries.length), ...entries.flatMap(([k, x]) => [encode(k), encode(x)])]);
}

/** `networks`: IPv4 CIDRs and the record each maps to. */
export function writeMmdb(networks: readonly { readonly cidr: string; readonly record: Value }[]): Buffer {
  // The tree: node i has two records, each a node index, EMPTY, or a data offset (-1 - offset).
  const EMPTY = -Infinity;
  const nodes: [number, number][] = [[EMPTY, EMPTY]];
  const data: Buffer[] = [];
  let dataLength = 0;
  for (const { cidr, record } of networks) {
    const [addr, bitsText] = cidr.split('/') as [string, string];
    const bits = Number(bitsText);
    const ip = addr.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    const bytes = encode(record);
    const dataRef = -1 - dataLength;
    data.push(bytes);
    dataLength += bytes.length;
    let node = 0;
    for (let i = 0; i < bits; i++) {
      const bit = (ip >>> (31 - i)) & 1;
      const pair = nodes[node] as [number, number];
      if (i === bits - 1) {
        pair[bit] = dataRef;
        break;
      }
      if (pair[bit] === EMPTY) {
        nodes.push([EMPTY, EMPTY]);
        pair[bit] = nodes.length - 1;
      }
      node = pair[bit] as number;
    }
  }
  const count = nodes.length;
  const tree = Buffer.alloc(count * 6);
  const value = (r: number): number => (r === EMPTY ? count : r < 0 ? count + 16 + (-1 - r) : r);
  nodes.forEach(([left, right], i) => {
    tree.writeUIntBE(value(left), i * 6, 3);
    tree.writeUIntBE(value(right), i * 6 + 3, 3);
  });
  const metadata = encode({
    binary_format_major_version: { uint: 2 },
    binary_format_minor_version: { uint: 0 },
    build_epoch: { uint: 1_700_000_000 },
    database_type: 'Meridian-Test-City',
    description: { en: 'test fixture' },
    ip_version: { uint: 4 },
    languages: ['en'],
    node_count: { uint: count },
    record_size: { uint: 24 },
  });
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1'), metadata]);
}
