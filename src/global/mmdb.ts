/**
 * Client locations from a MaxMind DB (GeoLite2-City or any database whose records carry
 * `location.latitude` / `location.longitude`), read with the `maxmind` package. Steering
 * consults it only when no `geo.cidrs` entry matches the client.
 */
import { readFile } from 'node:fs/promises';
import { type CityResponse, Reader } from 'maxmind';
import type { GeoPoint } from '../core/geo.js';

export class MmdbLocator {
  readonly #reader: Reader<CityResponse>;
  readonly path: string;

  constructor(db: Buffer, path = '(buffer)') {
    this.#reader = new Reader<CityResponse>(db);
    this.path = path;
  }

  /** Read and check the file; throws with the path and reason when it is not an mmdb. */
  static async open(path: string): Promise<MmdbLocator> {
    let db: Buffer;
    try {
      db = await readFile(path);
    } catch (e) {
      throw new Error(`geo.mmdb: cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      return new MmdbLocator(db, path);
    } catch (e) {
      throw new Error(`geo.mmdb: ${path} is not a MaxMind DB: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The location recorded for `ip`, or undefined (no record, no location, not an IP). */
  locate(ip: string): GeoPoint | undefined {
    try {
      const loc = this.#reader.get(ip)?.location;
      if (loc === undefined || typeof loc.latitude !== 'number' || typeof loc.longitude !== 'number') return undefined;
      return { lat: loc.latitude, lon: loc.longitude };
    } catch {
      return undefined;
    }
  }
}
