// src/ depends one way: every import between folders is one eslint.config.js allows,
// the folders form no cycle, and no module imports itself back through others.
// The imports are read from the sources, so the rule is tested, not only configured.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

type Graph = ReadonlyMap<string, ReadonlySet<string>>;

const { folderDependencies } = (await import(pathToFileURL(resolve('eslint.config.js')).href)) as { folderDependencies: Record<string, readonly string[]> };

/** Static imports and re-exports (type-only ones too) and dynamic import() of literal paths. */
const IMPORT_RE = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Each src file (`src/proxy/forward.ts`) -> the src files it imports. */
function importGraph(): Graph {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles('src')) {
    const out = new Set<string>();
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? '';
      if (spec.startsWith('.')) out.add(relative('.', resolve(dirname(file), spec.replace(/\.js$/, '.ts'))));
    }
    graph.set(file, out);
  }
  return graph;
}

const folderOf = (file: string): string => file.split('/')[1] ?? '';

/** Strongly connected components of more than one node (or a node importing itself): the cycles. */
function cycles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.has(v)) found.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('folder dependencies', () => {
  const graph = importGraph();

  it('reads the imports it should: every import resolves to a file in src', () => {
    const edges = [...graph].flatMap(([from, to]) => [...to].map((t) => `${from} -> ${t}`));
    assert.ok(edges.includes('src/node/meridian.ts -> src/proxy/forward.ts'), 'a static import');
    assert.ok(edges.includes('src/proxy/admission.ts -> src/shared/hops.ts'), 'another');
    assert.deepEqual(edges.filter((e) => !graph.has(e.split(' -> ')[1]!)), [], 'imports of files that are not in src');
  });

  it('every folder of src has its place in the table', () => {
    const folders = readdirSync('src', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    assert.deepEqual(folders.filter((f) => !(f in folderDependencies)), []);
  });

  it('every import between folders is one the table allows', () => {
    const refused: string[] = [];
    for (const [from, to] of graph) {
      for (const t of to) {
        const [a, b] = [folderOf(from), folderOf(t)];
        if (a !== b && !(folderDependencies[a] ?? []).includes(b)) refused.push(`${from} imports ${t}`);
      }
    }
    assert.deepEqual(refused, []);
  });

  it('the table, and so the folders, have no cycle', () => {
    const table = new Map(Object.entries(folderDependencies).map(([f, deps]) => [f, new Set(deps)]));
    assert.deepEqual(cycles(table), []);
  });

  it('no module imports itself back through others (type-only imports included)', () => {
    assert.deepEqual(cycles(graph), []);
  });

  it('the cycle finder finds a cycle where there is one', () => {
    const g = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a', 'd'])],
      ['d', new Set<string>()],
      ['e', new Set(['e'])],
    ]);
    assert.deepEqual(cycles(g), [['a', 'b', 'c'], ['e']]);
  });
});

describe('the lint rule says what the table says', () => {
  const eslint = new ESLint({ cwd: process.cwd() });
  const folders = Object.keys(folderDependencies);

  it('refuses an import of a folder the table does not allow, in every folder, and only those', async () => {
    const wrong: string[] = [];
    for (const from of folders) {
      for (const to of folders.filter((f) => f !== from)) {
        const [result] = await eslint.lintText(`import { x } from '../${to}/example.js';\nexport const y = x;\n`, { filePath: `src/${from}/example.ts` });
        const refused = result!.messages.some((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax');
        if (refused !== !folderDependencies[from]!.includes(to)) wrong.push(`src/${from} -> src/${to}: ${refused ? 'refused' : 'allowed'}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});

describe('docs/architecture.md', () => {
  const doc = readFileSync('docs/architecture.md', 'utf8');

  it('names only files and folders that exist', () => {
    const named = [...new Set([...doc.matchAll(/`((?:src|test)\/[\w./-]+)`/g)].map((m) => m[1]!))];
    assert.ok(named.length > 30, `${named.length} paths named`);
    assert.deepEqual(named.filter((p) => !existsSync(p)), []);
  });

  it('its table of allowed imports is the one lint enforces', () => {
    const folders = Object.keys(folderDependencies);
    const rows = [...doc.matchAll(/^\| ((?:`\w+`(?:, )?)+) \| (every other folder|nothing outside themselves|(?:`\w+`(?:, )?)+) \|$/gm)];
    const documented: Record<string, string[]> = {};
    for (const [, who, what] of rows) {
      for (const f of who!.match(/\w+/g)!) {
        documented[f] = what === 'every other folder' ? folders.filter((o) => o !== f) : what === 'nothing outside themselves' ? [] : what!.match(/\w+/g)!;
      }
    }
    const sorted = (r: Record<string, readonly string[]>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, [...v].sort()]).sort());
    assert.deepEqual(sorted(documented), sorted(folderDependencies));
  });

  it('gives every folder of src a row, and the README links to it and to nothing outside the repository', () => {
    const folders = readdirSync('src', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    assert.deepEqual(folders.filter((f) => !doc.includes(`| \`src/${f}/\` |`)), []);
    const readme = readFileSync('README.md', 'utf8');
    assert.ok(readme.includes('](docs/architecture.md)'));
    assert.deepEqual([...readme.matchAll(/\]\((\.\.\/[^)]*)\)/g)].map((m) => m[1]), []);
  });
});
