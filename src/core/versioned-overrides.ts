/**
 * Operator overrides shared by a fleet (drain, weight, region state), each stamped with a
 * version from one counter: an override is applied only if its version is newer than the
 * last one applied for the same key, so a late, repeated or replayed message never undoes
 * a newer change, whatever order the messages arrive in.
 */
export class VersionedOverrides<V> {
  readonly #applied = new Map<string, { version: number; value: V }>();

  /** True (and recorded) when `version` is newer than what `key` holds: the caller applies it. */
  offer(key: string, version: number, value: V): boolean {
    const had = this.#applied.get(key);
    if (had !== undefined && had.version >= version) return false;
    this.#applied.set(key, { version, value });
    return true;
  }

  /** Every key's newest value, oldest change first: replaying them in this order rebuilds the state. */
  entries(): { key: string; version: number; value: V }[] {
    return [...this.#applied].map(([key, e]) => ({ key, ...e })).sort((a, b) => a.version - b.version);
  }
}
