/**
 * A cluster's endpoints from a file (`discovery.file`), as Prometheus' file_sd: read at
 * start, again on every change the file system reports, and every `refresh` in case an
 * event was missed. The directory is watched, not the file: an atomic rewrite (write a
 * temporary file, rename it over) replaces the file's inode, and a watch on the old one
 * would see nothing more. Events are settled for a moment before reading, so a writer
 * still writing (not atomic) is usually read once, finished; a half-written file that
 * does not parse is refused and the last good list stays.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { type DiscoveryConfig, formatOf } from '../config/index.js';
import { parseEndpointFile } from '../config/endpoint-file.js';
import type { Answer } from '../core/discovery.js';

export type FileDiscoveryConfig = NonNullable<DiscoveryConfig['file']>;

/** Quiet time after the last file-system event before the file is read. */
export const FILE_SETTLE_MS = 50;

export class FileSource {
  readonly #c: FileDiscoveryConfig;
  #watcher: FSWatcher | undefined;
  #settle: NodeJS.Timeout | undefined;

  constructor(c: FileDiscoveryConfig) {
    this.#c = c;
  }

  get description(): string {
    return `file ${this.#c.path}`;
  }

  async read(): Promise<Answer> {
    let text: string;
    try {
      text = await readFile(this.#c.path, 'utf8');
    } catch (e) {
      return { ok: false, error: `cannot read ${this.#c.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
    const r = parseEndpointFile(text, this.#c.format ?? formatOf(this.#c.path), this.#c.path);
    return r.ok ? { ok: true, endpoints: r.endpoints } : { ok: false, error: r.error };
  }

  /** Call `onChange` (settled) whenever the file may have changed; a watch that cannot start leaves the periodic refresh. */
  watch(onChange: () => void, onError: (message: string) => void): void {
    const name = basename(this.#c.path);
    try {
      this.#watcher = watch(dirname(this.#c.path), { persistent: false }, (_event, file) => {
        if (file !== null && file !== name) return;
        clearTimeout(this.#settle);
        this.#settle = setTimeout(onChange, FILE_SETTLE_MS);
        this.#settle.unref();
      });
      this.#watcher.on('error', (e) => onError(`watching ${dirname(this.#c.path)}: ${e.message}`));
    } catch (e) {
      onError(`cannot watch ${dirname(this.#c.path)}: ${(e as Error).message}; reading it every ${this.#c.refresh} ms only`);
    }
  }

  cancel(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearTimeout(this.#settle);
  }
}
