/**
 * Validation at the boundary: untyped data in (parsed YAML/JSON), a typed `Config`
 * with defaults out, or every problem at once, each as `path: message`.
 */
import type { z } from 'zod';
import { configErrorMap, formatIssues } from './issues.js';
import { type Config, ConfigSchema } from './schema.js';

export type ValidationResult =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly errors: string[]; readonly issues: readonly z.core.$ZodIssue[] };

export interface ValidateOptions {
  /**
   * Environment to read overrides from; only MERIDIAN_ADMIN_TOKEN is read, and it wins
   * over admin.token in the file (a secret set at run time beats the checked-in file).
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function validateConfig(input: unknown, opts: ValidateOptions = {}): ValidationResult {
  const r = ConfigSchema.safeParse(input, { error: configErrorMap });
  if (!r.success) return { ok: false, errors: formatIssues(r.error.issues), issues: r.error.issues };
  const token = opts.env?.['MERIDIAN_ADMIN_TOKEN'];
  const config = token ? { ...r.data, admin: { ...r.data.admin, token } } : r.data;
  return { ok: true, config };
}
