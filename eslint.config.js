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
    // Math is used only as `Math.x`: an alias (`const M = Math`, `f(Math)`, `{ random } = Math`) or a computed key would hide Math.random.
    { selector: "Identifier[name='Math']:not(MemberExpression[computed=false] > .object, MemberExpression > .property, Property > .key)", message: 'src/core uses Math only as Math.x, so Math.random cannot hide behind an alias.' },
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
    // The rest of the guard is src/core/tsconfig.json (no DOM, no Node types): host globals do not type-check there.
    // These are ECMAScript, so only lint sees them.
    { name: 'Date', message: 'src/core reads time from an injected Clock (Date in any form: Date(), new Date(), Date.now()).' },
    { name: 'globalThis', message: 'src/core names no global object: it would reach Date, timers and Math.random around this rule.' },
    { name: 'Intl', message: 'src/core does not format with Intl (Intl.DateTimeFormat reads the wall clock).' },
    ...['eval', 'Function'].map((name) => ({ name, message: 'src/core compiles no code at run time: a string would walk around this rule.' })),
    ...['WeakRef', 'FinalizationRegistry'].map((name) => ({ name, message: 'src/core is deterministic: garbage collection timing is not.' })),
    { name: 'console', message: 'src/core does no I/O: return what happened to the caller.' },
  ],
  'no-restricted-properties': [
    'error',
    { object: 'Math', property: 'random', message: 'src/core takes an injected, seeded Rng.' },
    { property: 'constructor', message: "src/core does not reach Function through `.constructor` (it compiles a string around this rule)." },
  ],
};

/**
 * Which folders of src/ each folder may import (besides its own). Dependencies point one
 * way, from the process down to pure policy:
 *   cli -> demo -> node -> proxy, global, discovery, health -> admin -> config -> core, shared
 * (sim and backend sit on config too). A folder not listed here may not be imported at all;
 * test/architecture/folders.test.ts holds src/ to this table and checks it has no cycle.
 */
export const folderDependencies = {
  core: [],
  shared: [],
  http1: [],
  config: ['core', 'shared'],
  backend: ['config', 'core', 'shared'],
  sim: ['config', 'core', 'shared'],
  admin: ['config', 'core', 'shared'],
  health: ['config', 'core', 'shared'],
  discovery: ['admin', 'config', 'core', 'shared'],
  global: ['admin', 'config', 'core', 'shared'],
  proxy: ['http1', 'admin', 'config', 'core', 'shared'],
  fleet: ['admin', 'config', 'core', 'shared'],
  node: ['fleet', 'proxy', 'global', 'discovery', 'health', 'admin', 'config', 'core', 'shared'],
  demo: ['node', 'proxy', 'global', 'admin', 'backend', 'config', 'core', 'shared'],
  cli: ['demo', 'node', 'fleet', 'sim', 'proxy', 'http1', 'global', 'discovery', 'health', 'admin', 'backend', 'config', 'core', 'shared'],
};

/** no-restricted-imports for each folder but core (whose purity rule already allows only siblings). */
const folderRules = Object.entries(folderDependencies)
  .filter(([folder]) => folder !== 'core')
  .map(([folder, allowed]) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: Object.keys(folderDependencies)
            .filter((other) => other !== folder && !allowed.includes(other))
            .map((other) => ({
              group: [`**/${other}/**`],
              message: `src/${folder} imports only ${allowed.length === 0 ? 'its own modules' : allowed.map((a) => `src/${a}`).join(', ')}: dependencies point one way (docs/architecture.md).`,
            })),
        },
      ],
    },
  }));

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
  ...folderRules,
);
