// Every relative link in the README, docs/ and bench/README.md leads somewhere inside the
// repository, and every #anchor to a heading that exists (slugs as GitHub makes them).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = process.cwd();

/** The text outside fenced code blocks and inline code, where links render. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchors: lowercased, punctuation dropped, each space a hyphen, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, text] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const plain = (text as string).replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = plain.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] as string);
}

const FILES = ['README.md', 'bench/README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

describe('links in the docs', () => {
  it('GitHub slugs: backticks and parentheses dropped, spaces to hyphens, repeats numbered', () => {
    assert.deepEqual([...anchors('## `global` (optional)\n## Quick start\n## Quick start\n### A [link](x.md), too')], ['global-optional', 'quick-start', 'quick-start-1', 'a-link-too']);
  });

  for (const file of FILES) {
    it(`${file}: every relative link and anchor resolves inside the repository`, () => {
      const broken: string[] = [];
      for (const link of links(readFileSync(file, 'utf8'))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:: not ours to check offline
        const [path = '', anchor] = link.split('#') as [string, string | undefined];
        const target = path === '' ? resolve(file) : resolve(dirname(file), decodeURIComponent(path));
        if (relative(ROOT, target).startsWith('..')) broken.push(`${link}: outside the repository`);
        else if (!existsSync(target)) broken.push(`${link}: no such file`);
        else if (anchor !== undefined) {
          if (statSync(target).isDirectory() || !target.endsWith('.md')) broken.push(`${link}: an anchor into a file that is not markdown`);
          else if (!anchors(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${link}: no heading #${anchor} in ${relative(ROOT, target)}`);
        }
      }
      assert.deepEqual(broken, [], `${file}:\n  ${broken.join('\n  ')}`);
    });
  }
});

