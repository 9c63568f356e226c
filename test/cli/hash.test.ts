import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runHash, type HashReport } from '../../src/cli/hash.js';

interface Run {
  readonly code: number;
  readonly stdout: string[];
  readonly stderr: string[];
}

async function run(...argv: string[]): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runHash(argv, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) });
  return { code, stdout, stderr };
}

async function report(...argv: string[]): Promise<HashReport> {
  const r = await run(...argv, '--json');
  assert.equal(r.code, 0, r.stderr.join('\n'));
  assert.deepEqual(r.stderr, []);
  assert.equal(r.stdout.length, 1, 'exactly one JSON object on stdout');
  return JSON.parse(r.stdout[0] as string) as HashReport;
}

const N = 20;
const KEYS = 20_000;
/**
 * Sampling error of one endpoint's key share relative to the mean, for K keys over N
 * endpoints: sqrt(K p (1-p)) / (K / N) with p = 1/N, about 0.031 here. Tolerances on
 * key-derived figures allow 5 sigma.
 */
const SIGMA = Math.sqrt(KEYS * (1 / N) * (1 - 1 / N)) / (KEYS / N);

describe('meridian hash', () => {
  it('maglev: every figure is present, the table is balanced to within one slot, and removal moves about 1/N', async () => {
    const r = await report('--policy', 'maglev', '--endpoints', String(N), '--keys', String(KEYS));
    assert.equal(r.policy, 'maglev');
    assert.equal(r.endpoints, N);
    assert.equal(r.table_size, 65537);
    assert.equal(r.keys, KEYS);
    assert.equal(r.seed, 1);
    assert.equal(r.removed_endpoint, '10.0.0.10:8080');
    assert.equal(r.added_endpoint, '10.0.0.20:8080');
    assert.equal(r.ideal_moved_fraction_on_removal, 1 / N);
    assert.equal(r.ideal_moved_fraction_on_addition, 1 / (N + 1));
    // Every figure and nothing else (build_ms is wall time: present, its value not asserted).
    assert.deepEqual(Object.keys(r), [
      'policy',
      'endpoints',
      'table_size',
      'keys',
      'seed',
      'max_over_mean',
      'keys_max_over_mean',
      'removed_endpoint',
      'moved_fraction_on_removal',
      'ideal_moved_fraction_on_removal',
      'added_endpoint',
      'moved_fraction_on_addition',
      'ideal_moved_fraction_on_addition',
      'build_ms',
    ]);
    // Equal weights: hosts claim slots in turns, so slot counts differ by at most one and
    // the fullest host has ceil(M/N) slots: max/mean <= ceil(65537/20) / (65537/20) = 1.00005.
    assert.ok(r.max_over_mean >= 1 && r.max_over_mean <= Math.ceil(65537 / N) / (65537 / N) + 1e-12, `max_over_mean ${r.max_over_mean}`);
    assert.ok(r.keys_max_over_mean >= 1 && r.keys_max_over_mean < 1 + 5 * SIGMA, `keys_max_over_mean ${r.keys_max_over_mean}`);
    // Lower bound: every key of the removed endpoint must move, and it holds 1/N of the
    // table, so the moved fraction is >= 1/N less 5 sigma of key sampling (0.85/N).
    // Upper bound: Maglev moves some slots between surviving hosts too. With M/N = 3277
    // that is small: measured on the table itself, removing each of the 20 endpoints in
    // turn changes 1.055/N .. 1.085/N of the slots (it grows with N/M: ~1.6/N at N = 100,
    // ~6.7/N at N = 1000). 1.085/N plus 5 sigma of sampling gives 1.25/N; allow 1.3/N.
    const removal = r.moved_fraction_on_removal * N;
    assert.ok(removal >= 1 - 5 * SIGMA && removal <= 1.3, `moved on removal ${removal.toFixed(3)}/N`);
    const addition = r.moved_fraction_on_addition * (N + 1);
    assert.ok(addition >= 1 - 5 * SIGMA && addition <= 1.3, `moved on addition ${addition.toFixed(3)}/(N+1)`);
  });

  it('ring_hash: arc shares agree with key shares, and removal or addition moves about one host share', async () => {
    const r = await report('--policy', 'ring_hash', '--endpoints', String(N), '--keys', String(KEYS));
    assert.equal(r.policy, 'ring_hash');
    assert.equal(r.min_ring_size, 1024);
    assert.equal(r.max_ring_size, 8 * 1024 * 1024);
    // At least the minimum ring, and not absurdly more (any sizing rule stays under 2x + N).
    assert.ok(r.table_size >= 1024 && r.table_size <= 2 * 1024 + N, `ring points ${r.table_size}`);
    // ~64 points per host: shares vary by ~1/sqrt(64) = 12.5%, so the largest of 20 sits
    // well above 1 but far below 2.
    assert.ok(r.max_over_mean > 1 && r.max_over_mean < 2, `max_over_mean ${r.max_over_mean}`);
    // Keys sample the arcs: the key-derived figure must track the arc-derived one. A wrong
    // arc computation (wrong owner, missed wrap-around) breaks this.
    assert.ok(Math.abs(r.keys_max_over_mean - r.max_over_mean) < 5 * SIGMA, `keys ${r.keys_max_over_mean} vs arcs ${r.max_over_mean}`);
    // A ring moves only the removed host's keys (plus any re-scaling of the ring): one
    // host's share, which the ring's imbalance keeps within [0.5, 2] x the mean.
    assert.ok(r.moved_fraction_on_removal >= 0.5 / N && r.moved_fraction_on_removal <= 2 / N, `moved on removal ${r.moved_fraction_on_removal}`);
    assert.ok(
      r.moved_fraction_on_addition >= 0.5 / (N + 1) && r.moved_fraction_on_addition <= 2 / (N + 1),
      `moved on addition ${r.moved_fraction_on_addition}`,
    );
  });

  it('ring_hash: arc shares include the wrap-around arc (a 3-point ring, where it is a large share)', async () => {
    const keys = 40_000;
    const r = await report('--policy', 'ring_hash', '--endpoints', '3', '--table-size', '1', '--max-ring-size', '3', '--keys', String(keys));
    assert.equal(r.table_size, 3);
    // max/mean = 3 x the largest key share, whose sampling sigma is at most sqrt(1/4 / K):
    // 3 x 0.0025 = 0.0075 here; 5 sigma is under 0.04. A ring arc of ~1/3 misattributed
    // or dropped is off by far more.
    assert.ok(Math.abs(r.keys_max_over_mean - r.max_over_mean) < 0.04, `keys ${r.keys_max_over_mean} vs arcs ${r.max_over_mean}`);
  });

  it('is deterministic: the same seed gives the same report except build_ms; another seed changes only key figures', async () => {
    for (const policy of ['maglev', 'ring_hash']) {
      const args = ['--policy', policy, '--endpoints', '7', '--keys', '5000'];
      const a = await report(...args, '--seed', '9');
      const b = await report(...args, '--seed', '9');
      assert.deepEqual({ ...a, build_ms: 0 }, { ...b, build_ms: 0 });
      const c = await report(...args, '--seed', '10');
      assert.equal(c.max_over_mean, a.max_over_mean, 'the table does not depend on the key seed');
      assert.equal(c.table_size, a.table_size);
      // Any one key figure may tie by chance (counts are integers); all three at once do not.
      const keyFigures = (x: HashReport): number[] => [x.keys_max_over_mean, x.moved_fraction_on_removal, x.moved_fraction_on_addition];
      assert.notDeepEqual(keyFigures(c), keyFigures(a), 'another seed, other keys');
    }
  });

  it('removing the only endpoint moves every key (ideal 1/N = 1)', async () => {
    const r = await report('--policy', 'maglev', '--endpoints', '1', '--keys', '100');
    assert.equal(r.moved_fraction_on_removal, 1);
    assert.equal(r.ideal_moved_fraction_on_removal, 1);
    assert.equal(r.max_over_mean, 1);
  });

  it('prints an aligned table with the same figures and one line of interpretation without --json', async () => {
    const args = ['--policy', 'maglev', '--endpoints', '10', '--keys', '3000'];
    const json = await report(...args);
    const r = await run(...args);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 1);
    const text = r.stdout[0] as string;
    assert.throws(() => JSON.parse(text));
    const pct = (f: number): string => `${(f * 100).toFixed(2)}%`;
    assert.match(text, /^policy +maglev$/m);
    assert.match(text, /^table size +65537 slots$/m);
    assert.ok(
      text.includes(`removal moved ${pct(json.moved_fraction_on_removal)} of keys (ideal 10.00%, ${(json.moved_fraction_on_removal * 10).toFixed(2)}x)`),
      text,
    );
    // The rows are the lines before the blank line; each value starts in the same column.
    const rows = text.split('\n\n')[0]!.split('\n');
    assert.equal(rows.length, 9);
    const valueColumns = rows.map((l) => /^.*?\S {2,}(?=\S)/.exec(l)?.[0].length);
    assert.ok(valueColumns.every((c) => c !== undefined && c === valueColumns[0]), `values aligned in one column:\n${text}`);
    assert.equal(text.split('\n\n')[1]?.split('\n').length, 1, 'one line of interpretation');
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await run('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout[0] as string, /^usage: meridian hash --policy maglev\|ring_hash --endpoints N/);
  });

  describe('bad arguments exit 2 naming the option, with a usage line', () => {
    const cases: [string[], RegExp][] = [
      [['--endpoints', '5'], /--policy is required/],
      [['--policy', 'round_robin', '--endpoints', '5'], /--policy must be maglev or ring_hash, got 'round_robin'/],
      [['--policy', 'maglev'], /--endpoints is required/],
      [['--policy', 'maglev', '--endpoints', '0'], /--endpoints must be an integer in 1\.\.\d+, got '0'/],
      [['--policy', 'maglev', '--endpoints', 'ten'], /--endpoints must be an integer .*got 'ten'/],
      [['--policy', 'maglev', '--endpoints', '1e3'], /--endpoints must be an integer .*got '1e3'/],
      [['--policy', 'maglev', '--endpoints'], /--endpoints/],
      [['--policy', 'maglev', '--endpoints', '5', '--keys', '-3'], /--keys/],
      [['--policy', 'maglev', '--endpoints', '5', '--seed', '1.5'], /--seed must be an integer/],
      [['--policy', 'maglev', '--endpoints', '5', '--frobnicate'], /--frobnicate/],
      [['--policy', 'maglev', '--endpoints', '5', '--max-ring-size', '4096'], /--max-ring-size applies to ring_hash only/],
      [['--policy', 'maglev', '--endpoints', '200', '--table-size', '101'], /--table-size must exceed --endpoints/],
      [['--policy', 'ring_hash', '--endpoints', '5', '--table-size', '4096', '--max-ring-size', '1024'], /--table-size .* must not exceed --max-ring-size/],
      [['--policy', 'ring_hash', '--endpoints', '5', '--max-ring-size', '99999999'], /--max-ring-size must be an integer in 1\.\.8388608/],
    ];
    for (const [argv, message] of cases) {
      it(argv.join(' '), async () => {
        const r = await run(...argv);
        assert.equal(r.code, 2);
        assert.deepEqual(r.stdout, []);
        assert.match(r.stderr.join('\n'), message);
        assert.match(r.stderr.join('\n'), /\nusage: meridian hash --policy/);
      });
    }
  });

  it('refuses a non-prime maglev table size, naming the nearest primes', async () => {
    const r = await run('--policy', 'maglev', '--endpoints', '10', '--table-size', '65536');
    assert.equal(r.code, 2);
    assert.match(r.stderr[0] as string, /^meridian hash: --table-size must be a prime for maglev, got 65536 \(nearest primes: 65521, 65537\)\n/);
  });
});
