/**
 * Cross-field checks: rules that relate fields in different places (a route names a
 * cluster; endpoint ids are unique within a cluster).
 *
 * They run even when other fields are invalid (see ALWAYS in fields.ts), so a user sees
 * "unknown cluster" together with "bad duration" instead of one per attempt. The price
 * is that the value may be half-parsed: these functions read it as `unknown` and skip
 * whatever is not in the expected shape (that part already has its own error).
 */
import { describeValue, didYouMean } from './describe.js';
import { type Ctx, fail, REUSE_PORT } from './fields.js';

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function pathText(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Flag every repeat of a key after its first occurrence. */
function uniqueBy(
  ctx: Ctx,
  items: { key: string | undefined; path: (string | number)[]; note?: string }[],
  what: string,
): void {
  const first = new Map<string, (string | number)[]>();
  for (const { key, path, note = '' } of items) {
    if (key === undefined) continue;
    const seen = first.get(key);
    if (seen === undefined) first.set(key, path);
    else fail(ctx, `duplicate ${what} ${describeValue(key)} (first at ${pathText(seen.slice(0, -1))})${note}`, path);
  }
}

/** Every endpoint of a cluster with its path relative to the cluster. */
function endpointsOf(cluster: Obj): { endpoint: Obj; path: (string | number)[] }[] {
  const out: { endpoint: Obj; path: (string | number)[] }[] = [];
  list(cluster['endpoints']).forEach((e, i) => {
    const endpoint = obj(e);
    if (endpoint) out.push({ endpoint, path: ['endpoints', i] });
  });
  list(cluster['localities']).forEach((l, li) => {
    list(obj(l)?.['endpoints']).forEach((e, i) => {
      const endpoint = obj(e);
      if (endpoint) out.push({ endpoint, path: ['localities', li, 'endpoints', i] });
    });
  });
  return out;
}

/** http listeners route (and need routes); tcp listeners forward to one cluster. */
export function checkListener(value: unknown, ctx: Ctx): void {
  const l = obj(value);
  if (!l) return;
  const { protocol, routes, cluster, tls, http2 } = l;
  if (protocol === 'http' || protocol === 'https') {
    if (routes === undefined) fail(ctx, `required for ${protocol} listeners`, ['routes']);
    else if (Array.isArray(routes) && routes.length === 0) fail(ctx, `an ${protocol} listener needs at least one route`, ['routes']);
    if (cluster !== undefined) fail(ctx, `only for tcp listeners; an ${protocol} listener picks clusters in its routes`, ['cluster']);
    if (protocol === 'https' && tls === undefined) fail(ctx, 'required for https listeners: certificates to serve', ['tls']);
    if (protocol === 'http' && tls !== undefined) fail(ctx, 'only for https listeners (set protocol: https)', ['tls']);
  } else if (protocol === 'tcp') {
    if (cluster === undefined) fail(ctx, 'required for tcp listeners', ['cluster']);
    if (routes !== undefined) fail(ctx, 'only for http listeners; a tcp listener forwards to its "cluster"', ['routes']);
    if (tls !== undefined) fail(ctx, 'not for tcp listeners: they pass bytes through, TLS included', ['tls']);
    if (http2 !== undefined) fail(ctx, 'not for tcp listeners', ['http2']);
  }
}

/** Per cluster: endpoints XOR localities, unique endpoint ids, maglev table big enough. */
export function checkCluster(value: unknown, ctx: Ctx): void {
  const cluster = obj(value);
  if (!cluster) return;
  const hasEndpoints = cluster['endpoints'] !== undefined;
  const hasLocalities = cluster['localities'] !== undefined;
  if (hasEndpoints && hasLocalities) {
    fail(ctx, 'has both "endpoints" and "localities"; use one (put every endpoint in a locality)', ['localities']);
  } else if (!hasEndpoints && !hasLocalities && cluster['discovery'] === undefined) {
    fail(ctx, 'needs "endpoints" or "localities" listing at least one endpoint, or "discovery" to find them');
  } else if (hasEndpoints && Array.isArray(cluster['endpoints']) && cluster['endpoints'].length === 0) {
    fail(ctx, 'must list at least one endpoint', ['endpoints']);
  } else if (hasLocalities && Array.isArray(cluster['localities']) && cluster['localities'].length === 0) {
    fail(ctx, 'must list at least one locality', ['localities']);
  }

  const endpoints = endpointsOf(cluster);
  // `id` defaults to the address, so a repeated address is a repeated id too; point
  // at whichever of the two the user actually wrote.
  uniqueBy(
    ctx,
    endpoints.map(({ endpoint, path }) => {
      const address = str(endpoint['address']);
      const id = str(endpoint['id']) ?? address;
      const defaulted = id === address;
      return {
        key: id,
        path: [...path, defaulted ? 'address' : 'id'],
        note: defaulted ? '; an endpoint\'s id defaults to its address, set "id" to tell them apart' : '',
      };
    }),
    'endpoint id',
  );

  const tableSize = obj(cluster['maglev'])?.['table_size'];
  if (cluster['policy'] === 'maglev' && typeof tableSize === 'number' && tableSize < endpoints.length) {
    fail(
      ctx,
      `must be >= the number of endpoints (${endpoints.length}), got ${tableSize}`,
      ['maglev', 'table_size'],
    );
  }
}

/** Whole config: unique names, listeners not sharing a socket, cluster references resolve. */
export function checkConfig(value: unknown, ctx: Ctx): void {
  const root = obj(value);
  if (!root) return;
  const listeners = list(root['listeners']).map(obj);
  const clusters = list(root['clusters']).map(obj);
  // A Meridian with only a global (DNS) layer needs no listeners; otherwise one at least,
  // and listeners need clusters to route to.
  if (Array.isArray(root['listeners']) && listeners.length === 0 && root['global'] === undefined) {
    fail(ctx, 'must not be empty (or configure "global" for a DNS-only Meridian)', ['listeners']);
  }
  if (listeners.length > 0 && Array.isArray(root['clusters']) && clusters.length === 0) fail(ctx, 'must not be empty', ['clusters']);

  uniqueBy(ctx, listeners.map((l, i) => ({ key: str(l?.['name']), path: ['listeners', i, 'name'] })), 'listener name');
  uniqueBy(ctx, clusters.map((c, i) => ({ key: str(c?.['name']), path: ['clusters', i, 'name'] })), 'cluster name');

  checkBinds(root, listeners, ctx);

  checkSync(root, listeners, ctx);
  checkWorkerAccept(root, listeners, ctx);

  const names = new Set(clusters.map((c) => str(c?.['name'])).filter((n) => n !== undefined));
  // With no usable cluster list (wrong type, empty) every reference would be "unknown":
  // noise on top of the error that list already has.
  if (names.size === 0) return;
  const checkRef = (ref: unknown, path: (string | number)[]): void => {
    const n = str(ref);
    if (n === undefined || names.has(n)) return;
    const hint = didYouMean(n, names) || ` (defined: ${[...names].join(', ')})`;
    fail(ctx, `unknown cluster ${describeValue(n)}${hint}`, path);
  };
  listeners.forEach((l, i) => {
    if (!l) return;
    checkRef(l['cluster'], ['listeners', i, 'cluster']);
    list(l['routes']).forEach((r, j) => checkRef(obj(r)?.['cluster'], ['listeners', i, 'routes', j, 'cluster']));
  });
}

interface Bind {
  readonly address: string;
  readonly port: number;
  readonly path: (string | number)[];
}

/**
 * Every TCP socket the config binds: the admin API, the listeners, the sample backends
 * and the DNS responder (its TCP side). Two on one port collide when their addresses
 * are the same or either is a wildcard (`::` also takes IPv4); start would refuse the
 * second with EADDRINUSE, so validate refuses it first. Port 0 asks the OS for a fresh
 * port each time, so only fixed ports can collide.
 */
function checkBinds(root: Obj, listeners: (Obj | undefined)[], ctx: Ctx): void {
  const binds: Bind[] = [];
  const add = (o: Obj | undefined, defaultAddress: string, defaultPort: number | undefined, path: (string | number)[]): void => {
    const port = o?.['port'] ?? defaultPort;
    const address = str(o?.['address']) ?? defaultAddress;
    if (typeof port === 'number' && Number.isInteger(port) && port > 0) binds.push({ address, port, path: [...path, 'port'] });
  };
  add(obj(root['admin']), '127.0.0.1', 9901, ['admin']);
  listeners.forEach((l, i) => add(l, '0.0.0.0', undefined, ['listeners', i]));
  list(root['sample_backends']).forEach((b, i) => add(obj(b), '127.0.0.1', undefined, ['sample_backends', i]));
  const global = obj(root['global']);
  if (global) add(obj(global['dns']), '127.0.0.1', 53, ['global', 'dns']);
  binds.forEach((b, i) => {
    const first = binds.slice(0, i).find((a) => a.port === b.port && overlaps(a.address, b.address));
    if (first === undefined) return;
    const where = pathText(first.path.slice(0, -1));
    if (first.address === b.address) fail(ctx, `duplicate listen address "${b.address} port ${b.port}" (first at ${where})`, b.path);
    else fail(ctx, `listen address "${b.address} port ${b.port}" overlaps "${first.address} port ${first.port}" at ${where}: a wildcard address takes the port on every address`, b.path);
  });
}

const WILDCARD_V4 = '0.0.0.0';
const WILDCARD_V6 = '::';

function overlaps(a: string, b: string): boolean {
  if (a === b || a === WILDCARD_V6 || b === WILDCARD_V6) return true;
  // localhost binds 127.0.0.1 or ::1, whichever the resolver gives first.
  const v4 = (x: string) => !x.includes(':');
  if (a === WILDCARD_V4) return v4(b);
  if (b === WILDCARD_V4) return v4(a);
  return (a === 'localhost' && (b === '127.0.0.1' || b === '::1')) || (b === 'localhost' && (a === '127.0.0.1' || a === '::1'));
}

/** An endpoint file's list: ids (default: the address) unique, as in a cluster's `endpoints`. */
export function checkUniqueIds(list: readonly { readonly address: string; readonly id?: string | undefined }[], ctx: Ctx): void {
  uniqueBy(
    ctx,
    list.map((e, i) => ({ key: e.id ?? e.address, path: [i, e.id === undefined ? 'address' : 'id'] })),
    'endpoint id',
  );
}

/**
 * `worker_accept: reuse_port` needs a runtime whose sockets take `reusePort`, and fixed
 * ports: with port 0 each worker's own socket would get a port of its own.
 */
function checkWorkerAccept(root: Record<string, unknown>, listeners: (Record<string, unknown> | undefined)[], ctx: Ctx): void {
  if (root['worker_accept'] !== 'reuse_port') return;
  if (!REUSE_PORT) {
    fail(ctx, `reuse_port needs SO_REUSEPORT listening (Node 22.12 or 23.1 and later); this is Node ${process.versions.node}: use round_robin or auto`, ['worker_accept']);
    return;
  }
  listeners.forEach((l, i) => {
    if (l?.['port'] === 0) fail(ctx, 'port 0 with worker_accept: reuse_port: each worker would bind a port of its own; give a fixed port, or use worker_accept: auto (round robin on port 0)', ['listeners', i, 'port']);
  });
}

/** Global limits need a fleet to share them; a fleet node is one process. */
function checkSync(root: Record<string, unknown>, listeners: (Record<string, unknown> | undefined)[], ctx: Ctx): void {
  const synced = root['sync'] !== undefined;
  if (synced && root['workers'] !== undefined && root['workers'] !== 1) {
    fail(ctx, `not supported with more than one worker (workers: ${describeValue(root['workers'])}): each worker would be its own fleet node; set workers: 1 and run more nodes`, ['sync']);
  }
  list(root['clusters']).forEach((c, i) => {
    if (!synced && obj(c)?.['shared_health'] !== undefined) fail(ctx, 'shared_health needs a sync: block (the Redis the fleet shares verdicts through)', ['clusters', i, 'shared_health']);
  });
  listeners.forEach((l, i) => {
    list(l?.['routes']).forEach((r, j) => {
      const rl = obj(obj(r)?.['rate_limit']);
      if (rl?.['scope'] !== 'global') return;
      const path = ['listeners', i, 'routes', j, 'rate_limit'];
      if (!synced) fail(ctx, 'scope: global needs a sync: block (the Redis the fleet shares the limit through)', [...path, 'scope']);
      // Reconciling one bucket per client would mean one Redis entry per client per sync.
      if (rl['consistency'] === 'local' && rl['per'] === 'client_ip') fail(ctx, 'consistency: local is for per: route limits; use consistency: strong for per: client_ip', [...path, 'consistency']);
    });
  });
}
