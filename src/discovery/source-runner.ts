/**
 * One cluster's discovery source at work: asks it (DNS or file) on its schedule, hands
 * every answer to the core's DiscoveredSet, and carries out the decision: apply a new set
 * (through DiscoveryHooks.apply, the reload's path), keep the last one, wait out damping,
 * or hold a change too large. Logs an outage once, when it starts, and once when it ends.
 */
import type { Logger } from 'pino';
import type { DiscoveryStatus } from '../admin/types.js';
import { formatDuration, type DiscoveryConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { DiscoveredSet, nextRefreshMs, type Answer, type Decision, type RefreshOptions } from '../core/discovery.js';
import type { Endpoint } from '../core/types.js';
import { DnsSource } from './dns-source.js';
import { FileSource } from './file-source.js';

export type RefreshResult = 'ok' | 'empty' | 'failure';
export type ChangeResult = 'applied' | 'damped' | 'held';

export interface DiscoveryHooks {
  /** Make `endpoints` the cluster's discovered endpoints, as a reload would. */
  apply(cluster: string, endpoints: readonly Endpoint[]): void;
  refreshed(cluster: string, result: RefreshResult): void;
  changed(cluster: string, result: ChangeResult): void;
}

export class SourceRunner {
  readonly cluster: string;
  readonly config: DiscoveryConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #hooks: DiscoveryHooks;
  readonly #set: DiscoveredSet;
  readonly #source: { kind: 'dns'; dns: DnsSource } | { kind: 'file'; file: FileSource };
  readonly #refresh: RefreshOptions;
  #started = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #dampTimer: NodeJS.Timeout | undefined;
  #nextAtMs: number | undefined;
  #failures = 0;
  #busy = false;
  #again = false;
  #lastRefresh: string | null = null;
  #lastError: string | null = null;
  #ttlS: number | null = null;
  #pending: string | null = null;

  constructor(cluster: string, config: DiscoveryConfig, clock: Clock, log: Logger, hooks: DiscoveryHooks) {
    this.cluster = cluster;
    this.config = config;
    this.#clock = clock;
    this.#log = log.child({ cluster });
    this.#hooks = hooks;
    this.#set = new DiscoveredSet(
      { onEmpty: config.on_empty, minChangeIntervalMs: config.min_change_interval, maxRemovalPercent: config.max_removal_percent, holdForMs: config.hold_for },
      clock,
    );
    if (config.dns !== undefined) {
      this.#source = { kind: 'dns', dns: new DnsSource(config.dns) };
      this.#refresh = { refresh: config.dns.refresh, minTtlMs: config.dns.min_ttl, maxTtlMs: config.dns.max_ttl };
    } else {
      const file = config.file as NonNullable<DiscoveryConfig['file']>;
      this.#source = { kind: 'file', file: new FileSource(file) };
      this.#refresh = { refresh: file.refresh, minTtlMs: file.refresh, maxTtlMs: file.refresh };
    }
  }

  /** The discovered set in force; undefined until the source first answered with one. */
  get endpoints(): readonly Endpoint[] | undefined {
    return this.#set.current;
  }

  get #description(): string {
    return this.#source.kind === 'dns' ? this.#source.dns.description : this.#source.file.description;
  }

  status(): DiscoveryStatus {
    return {
      source: this.#source.kind,
      target: this.#description,
      endpoints: this.#set.current?.length ?? 0,
      lastRefresh: this.#lastRefresh,
      lastError: this.#lastError,
      ttlSeconds: this.#ttlS,
      nextRefreshMs: this.#nextAtMs === undefined ? null : Math.max(0, Math.round(this.#nextAtMs - this.#clock.nowMs())),
      pending: this.#pending,
    };
  }

  /** Ask the source now. Before start(), a first set is only recorded (the caller builds it in). */
  async refresh(): Promise<void> {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    try {
      do {
        this.#again = false;
        await this.#refreshOnce();
      } while (this.#again && !this.#stopped);
    } finally {
      this.#busy = false;
    }
  }

  /** Apply the change held or damped now (the admin API's accept); false when none waits. */
  accept(): boolean {
    const d = this.#set.accept();
    if (d.action !== 'apply') return false;
    clearTimeout(this.#dampTimer);
    this.#log.warn({ source: this.#description, removed: d.removed, added: d.added }, 'discovery: the pending change accepted through the admin API');
    this.#act(d);
    return true;
  }

  /** Begin the schedule (and the file watch): after the first refresh has been built into the runtime. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (this.#source.kind === 'file') {
      this.#source.file.watch(
        () => void this.refresh(),
        (message) => this.#log.warn({ err: message }, 'discovery: file watch failed; reading on the refresh interval only'),
      );
    }
    this.#schedule(undefined);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#dampTimer);
    this.#nextAtMs = undefined;
    if (this.#source.kind === 'dns') this.#source.dns.cancel();
    else this.#source.file.cancel();
  }

  async #refreshOnce(): Promise<void> {
    let answer: Answer;
    let ttlS: number | undefined;
    if (this.#source.kind === 'dns') ({ answer, ttlS } = await this.#source.dns.resolve());
    else answer = await this.#source.file.read();
    if (this.#stopped) return;
    this.#lastRefresh = new Date().toISOString();
    this.#ttlS = ttlS ?? null;
    const result: RefreshResult = !answer.ok ? 'failure' : answer.endpoints.length === 0 ? 'empty' : 'ok';
    this.#failures = answer.ok ? 0 : this.#failures + 1;
    this.#hooks.refreshed(this.cluster, result);
    this.#lastError = answer.ok ? (answer.endpoints.length === 0 ? 'the source returned no endpoints' : null) : answer.error;
    this.#act(this.#set.offer(answer));
    if (this.#started) this.#schedule(ttlS);
  }

  #schedule(ttlS: number | undefined): void {
    clearTimeout(this.#timer);
    const delay = nextRefreshMs(this.#refresh, ttlS, this.#failures);
    this.#nextAtMs = this.#clock.nowMs() + delay;
    this.#timer = setTimeout(() => void this.refresh(), delay);
    this.#timer.unref();
  }

  #act(d: Decision): void {
    const at = { source: this.#description };
    switch (d.action) {
      case 'apply':
        this.#pending = null;
        if (this.#started) this.#hooks.apply(this.cluster, d.endpoints);
        this.#hooks.changed(this.cluster, 'applied');
        if (d.recovered) this.#log.info(at, 'discovery: the source answers again');
        if (d.heldForMs !== undefined) this.#log.warn({ ...at, removed: d.removed, heldForMs: d.heldForMs }, `discovery: applying the held change: the source gave that same set for ${formatDuration(Math.round(d.heldForMs))} (hold_for ${formatDuration(this.config.hold_for)})`);
        this.#log.info({ ...at, endpoints: d.endpoints.length, added: d.added, removed: d.removed, changed: d.changed }, 'discovery: endpoints updated');
        return;
      case 'unchanged':
        if (this.#set.current !== undefined) this.#pending = null;
        if (d.recovered) this.#log.info(at, 'discovery: the source answers again; endpoints unchanged');
        return;
      case 'keep':
        if (d.firstOfOutage) {
          const kept = this.#set.current?.length ?? 0;
          this.#log.error({ ...at, err: d.error, kept }, `discovery: ${d.reason === 'failed' ? 'the source failed' : 'the source returned no endpoints'}; keeping the last ${kept} endpoints until it answers`);
        }
        return;
      case 'damped':
        this.#pending = `a change waits for min_change_interval (${this.config.min_change_interval} ms between changes)`;
        this.#hooks.changed(this.cluster, 'damped');
        clearTimeout(this.#dampTimer);
        this.#dampTimer = setTimeout(() => {
          if (!this.#stopped) this.#act(this.#set.reconsider());
        }, Math.max(0, d.untilMs - this.#clock.nowMs()));
        this.#dampTimer.unref();
        return;
      case 'held':
        this.#pending = `held: it would remove ${d.removing} of ${d.of} endpoints, more than max_removal_percent (${this.config.max_removal_percent}%); ${
          d.untilMs === Infinity ? 'until accepted through the admin API (hold_for: never)' : `applied by the first answer from ${new Date(Date.now() + d.untilMs - this.#clock.nowMs()).toISOString()} on that still gives it (hold_for ${formatDuration(this.config.hold_for)})`
        }`;
        this.#hooks.changed(this.cluster, 'held');
        if (d.firstForSet) this.#log.warn({ ...at, removing: d.removing, of: d.of }, `discovery: change ${this.#pending}`);
        return;
    }
  }
}
