// Shared by the config tests: validate an input and expect it accepted, or refused.
import assert from 'node:assert/strict';
import { type Config, validateConfig } from '../../src/config/index.js';

/** The validated config, or a test failure listing every error. */
export function valid(input: unknown): Config {
  const r = validateConfig(input);
  if (!r.ok) assert.fail(`expected valid, got:\n${r.errors.join('\n')}`);
  return r.config;
}

/** The errors of a config that must be refused. */
export function errors(input: unknown): string[] {
  const r = validateConfig(input);
  assert.equal(r.ok, false, 'expected the config to be refused');
  return r.ok ? [] : r.errors;
}
