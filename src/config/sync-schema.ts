/**
 * The `sync:` block: the Redis a fleet of Meridians shares limits, health, control and
 * membership through. docs/config.md and docs/fleet.md document every key; keep them in step.
 * Durations parse to milliseconds, as in schema.ts.
 */
import { z } from 'zod';
import { duration, fail, hostPort, integer } from './fields.js';

const redisUrl = () =>
  z.string().superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      fail(ctx, `expected a URL like "redis://127.0.0.1:6379", got ${JSON.stringify(s)}`);
      return;
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') fail(ctx, `expected a redis:// or rediss:// URL, got ${JSON.stringify(s)}`);
  });

export const syncSchema = z
  .strictObject({
    /** A standalone Redis (`redis://HOST:PORT[/DB]`, `rediss://` for TLS); its password, if any, in the URL. */
    redis: redisUrl().optional(),
    /** A Redis watched by Sentinel: the client asks the sentinels for the master named `name`. */
    sentinel: z.strictObject({ name: z.string().min(1), addresses: z.array(hostPort()).min(1) }).optional(),
    /** A Redis Cluster: any of its nodes; the client learns the rest. */
    cluster: z.array(hostPort()).min(1).optional(),
    /** This node's name in the fleet; default the host name. Unique per fleet. */
    node: z.string().regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').max(128).optional(),
    /** This node's region, shown in membership; default `node.region`. */
    region: z.string().min(1).optional(),
    /** Prefix of every key and channel, so fleets (or test runs) can share one Redis. */
    key_prefix: z.string().min(1).max(64).default('meridian'),
    /** How often `consistency: local` limits reconcile their counts, and health verdicts are folded in. */
    sync_interval: duration({ maxMs: 60_000 }).prefault('200ms'),
    /** How often a node says it is alive; it is gone after three missed beats. */
    heartbeat_interval: duration({ maxMs: 60_000 }).prefault('1s'),
    /** Longest any Redis call may take before its caller falls back: the most a slow Redis adds to a request. */
    command_timeout: duration({ maxMs: 10_000 }).prefault('50ms'),
    /** Reconnect backoff: from `min`, doubling to `max`. */
    reconnect: z.strictObject({ min: duration().prefault('100ms'), max: duration().prefault('5s') }).prefault({}),
  })
  .superRefine((s, ctx) => {
    const given = [s.redis, s.sentinel, s.cluster].filter((x) => x !== undefined).length;
    if (given !== 1) fail(ctx, `exactly one of redis, sentinel, cluster is required (got ${given})`);
    if (s.reconnect.max < s.reconnect.min) fail(ctx, 'reconnect.max must be at least reconnect.min', ['reconnect', 'max']);
  });

export type SyncConfig = z.output<typeof syncSchema>;

/**
 * A cluster's `shared_health`: its nodes' own verdicts (failed active checks, outlier and
 * connect-failure ejections) are shared, and an endpoint that `quorum` nodes judge bad is
 * taken out on every node (docs/fleet.md, "Shared health").
 */
export const sharedHealthSchema = z.strictObject({
  /** Nodes that must judge an endpoint bad: a number, or `majority` of those reporting on the cluster. */
  quorum: z.union([z.literal('majority'), integer(1, 1000)]).default('majority'),
});
