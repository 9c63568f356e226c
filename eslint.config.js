// Lint: the type-aware basics everywhere, and the rules that keep the architecture honest.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** src/core is pure policy: time, randomness and I/O come in as arguments (see DESIGN.md). */
export const coreRules = {
  'no-restricted-syntax': [
    'error',
    {
      selector: 'ImportDeclaration[source.value!=/^\\.\\/[^/]+\\.js$/]',
      message: 'src/core imports only sibling modules in src/core (no node:*, no packages, nothing outside core).',
    },
    {
      selector: 'ExportAllDeclaration[source.value!=/^\\.\\/[^/]+\\.js$/], ExportNamedDeclaration[source.value!=/^\\.\\/[^/]+\\.js$/][source]',
      message: 'src/core re-exports only sibling modules in src/core.',
    },
    { selector: 'ImportExpression', message: 'src/core does not load modules dynamically.' },
    { selector: "NewExpression[callee.name='Date']", message: 'src/core reads time from an injected Clock, not new Date().' },
  ],
  'no-restricted-globals': [
    'error',
    ...['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate', 'queueMicrotask'].map((name) => ({
      name,
      message: 'src/core has no timers: the caller drives time through an injected Clock.',
    })),
    { name: 'performance', message: 'src/core reads time from an injected Clock.' },
    { name: 'process', message: 'src/core does no I/O and reads no environment.' },
    { name: 'require', message: 'src/core imports only sibling modules.' },
    { name: 'fetch', message: 'src/core does no I/O.' },
  ],
  'no-restricted-properties': [
    'error',
    { object: 'Date', property: 'now', message: 'src/core reads time from an injected Clock.' },
    { object: 'Math', property: 'random', message: 'src/core takes an injected, seeded Rng.' },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'ui/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  { files: ['src/core/**/*.ts'], rules: coreRules },
  {
    // Dependencies point one way: core <- everything else; the simulator never imports the proxy.
    files: ['src/sim/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/proxy/**'], message: 'src/sim drives src/core only; it never imports the proxy.' }] }] },
  },
  {
    files: ['src/config/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/proxy/**', '**/sim/**', '**/cli/**', '**/admin/**'], message: 'src/config depends on nothing but core.' }] }] },
  },
);
