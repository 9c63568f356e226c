import { createHash } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { SyncConfig } from '../config/index.js';
import { parseHostPort } from '../shared/address.js';

export type RedisClient = Redis | Cluster;

/** A Lua script run by its SHA1, sent whole only when Redis does not have it yet (after a restart, a failover). */
export class Script {
  readonly #source: string;
  readonly #sha: string;
  readonly #keys: number;

  constructor(keys: number, source: string) {
    this.#keys = keys;
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, this.#keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.#source, this.#keys, ...args);
    }
  }
}

/** Calls timed out in a row, with no answer between, after which Redis counts as down. */
const STALLED_AFTER = 3;

export interface LinkEvents {
  /** Connected and ready; `resync` when an outage came before (state learned since may be missing). */
  up(resync: boolean): void;
  down(): void;
}

/**
 * The fleet's two connections to Redis (commands, and one for pub/sub, which Redis
 * dedicates to subscriptions), with the fault behaviour docs/fleet.md states: every
 * command fails after `command_timeout`; while disconnected commands fail at once (no
 * offline queue, so nothing piles up and nothing stale is replayed later); reconnects
 * back off from `reconnect.min` to `reconnect.max`; an outage is logged when it starts and
 * when it ends, never per failed call.
 */
export class RedisLink {
  readonly cmd: RedisClient;
  readonly sub: RedisClient;
  readonly #log: Logger;
  readonly #events: LinkEvents;
  #up = false;
  #everUp = false;
  #downSince: number | undefined;
  #closed = false;
  #timeouts = 0;

  constructor(sync: SyncConfig, log: Logger, events: LinkEvents) {
    this.#log = log;
    this.#events = events;
    const { min, max } = sync.reconnect;
    const common: RedisOptions = {
      lazyConnect: true,
      commandTimeout: sync.command_timeout,
      connectTimeout: Math.max(1000, sync.command_timeout),
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => Math.min(max, min * 2 ** Math.min(times - 1, 20)),
    };
    this.cmd = client(sync, { ...common, enableOfflineQueue: false });
    // Subscriptions are the one thing worth queueing: the few SUBSCRIBEs sent before the
    // first connect, re-sent by the client on every reconnect.
    this.sub = client(sync, { ...common, enableOfflineQueue: true, commandTimeout: undefined, autoResubscribe: true });
    this.cmd.on('ready', () => this.#ready());
    this.cmd.on('close', () => this.#lost());
    // Failed reconnects emit 'error' again and again: the outage is already logged once.
    this.cmd.on('error', () => {});
    this.sub.on('error', () => {});
  }

  get up(): boolean {
    return this.#up;
  }

  /**
   * Run a script on the command connection, watching for a Redis that accepts commands and
   * never answers (stopped, swapping, a dead peer whose TCP connection stays up): each call
   * still fails after `command_timeout`, but the client would keep every command sent in
   * its queue until an answer came. After a few timeouts in a row with no answer between,
   * the connection is dropped (which fails and empties that queue) and the outage handled
   * as any other: commands fail at once until a reconnect is ready.
   */
  async run(script: Script, args: readonly (string | number)[]): Promise<unknown> {
    try {
      const out = await script.run(this.cmd, args);
      this.#timeouts = 0;
      return out;
    } catch (err) {
      if (err instanceof Error && err.message === 'Command timed out' && ++this.#timeouts >= STALLED_AFTER && this.#up) {
        this.#timeouts = 0;
        this.#lost('stopped answering');
        this.cmd.disconnect(true);
      }
      throw err;
    }
  }

  connect(): void {
    // A Redis down at start is an outage like any other: the retry strategy keeps trying.
    this.cmd.connect().catch(() => this.#lost());
    this.sub.connect().catch(() => {});
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  #ready(): void {
    if (this.#up) return;
    this.#up = true;
    const resync = this.#everUp;
    if (this.#downSince !== undefined) {
      this.#log.info({ fleet: 'redis', downMs: Math.round(performance.now() - this.#downSince) }, 'fleet: Redis reachable again; resyncing');
    } else {
      this.#log.info({ fleet: 'redis' }, 'fleet: connected to Redis');
    }
    this.#everUp = true;
    this.#downSince = undefined;
    this.#events.up(resync);
  }

  #lost(why: 'unreachable' | 'stopped answering' = 'unreachable'): void {
    if (this.#closed || this.#downSince !== undefined) return;
    this.#up = false;
    this.#downSince = performance.now();
    this.#log.warn({ fleet: 'redis' }, `fleet: Redis ${why}; serving on fallbacks until it returns`);
    this.#events.down();
  }
}

function client(sync: SyncConfig, options: RedisOptions): RedisClient {
  if (sync.cluster !== undefined) {
    const { enableOfflineQueue, retryStrategy, ...redisOptions } = options;
    return new Cluster(
      sync.cluster.map((a) => hostPortOf(a)),
      { lazyConnect: true, ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }), clusterRetryStrategy: (times) => retryStrategy?.(times) ?? null, redisOptions },
    );
  }
  if (sync.sentinel !== undefined) {
    return new Redis({ ...options, name: sync.sentinel.name, sentinels: sync.sentinel.addresses.map((a) => hostPortOf(a)) });
  }
  return new Redis(sync.redis as string, options);
}

function hostPortOf(a: string): { host: string; port: number } {
  const r = parseHostPort(a);
  if (typeof r === 'string') throw new Error(r);
  return { host: r.host, port: r.port };
}
