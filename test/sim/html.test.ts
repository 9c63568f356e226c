import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heatBin, heatClip } from '../../src/sim/heat-scale.js';
import { renderHtml } from '../../src/sim/html.js';
import { parseScenarioText, simulate } from '../../src/sim/index.js';
import { layoutLabels } from '../../src/sim/label-layout.js';

describe('sim report: heat map colour scale', () => {
  it('ends at the p95 cell, so one spike does not squeeze every other cell into the bottom colours', () => {
    // 95 ordinary cells at 1..95 req/s and five spike cells at 1000.
    const cells = [...Array.from({ length: 95 }, (_, i) => i + 1), 1000, 1000, 1000, 1000, 1000];
    assert.equal(heatClip(cells), 95);
    assert.equal(heatClip([7]), 7);
    assert.equal(heatClip([]), 0);
    assert.equal(heatBin(1000, 95, 10), 9, 'a spike cell saturates');
    assert.equal(heatBin(0, 95, 10), 0, 'a killed server is the bottom colour');
    assert.equal(heatBin(50, 95, 10), 5, 'a half-loaded server is mid-scale, not bottom as under a max-of-1000 scale');
  });
});

describe('sim report: event label layout', () => {
  const width = (t: string): number => t.length * 10;
  it('stacks labels of simultaneous and nearby events in separate rows, none overlapping', () => {
    const placed = layoutLabels(
      [
        { x: 100, text: 'kill a/1' },
        { x: 100, text: 'kill a/2' },
        { x: 130, text: 'slow a/3' },
        { x: 400, text: 'revive a/1' },
      ],
      1000,
      6,
      width,
    );
    assert.deepEqual(placed.map((p) => [p.text, p.row, p.left]), [
      ['kill a/1', 0, 103],
      ['kill a/2', 1, 103],
      ['slow a/3', 2, 133],
      ['revive a/1', 0, 403],
    ]);
    for (const a of placed) for (const b of placed) if (a !== b && a.row === b.row) assert.ok(a.right <= b.left || b.right <= a.left, `${a.text} / ${b.text}`);
  });

  it('ends a label at its mark when starting there would run past the right edge', () => {
    const [p] = layoutLabels([{ x: 950, text: 'revive a/1' }], 1000, 6, width);
    assert.deepEqual(p && [p.anchor, p.left, p.right], ['end', 847, 947]);
  });
});

describe('sim report: HTML', () => {
  const scenario = parseScenarioText(`name: small
seed: 3
duration: 10s
warmup: 1s
regions: [ { name: r, servers: 4, service_time: { dist: exponential, mean: 10ms } } ]
clients: [ { name: c, rate: 200/s } ]
policies: [random, least_request]
events: [ { at: 5s, kill: r/1 }, { at: 5.2s, revive: r/1 } ]
`);
  const page = renderHtml(simulate(scenario));

  it('draws failed and shed in different colours, each legend swatch as its line is drawn', () => {
    for (const policy of ['random', 'least_request']) {
      const swatch = (kind: string): string => {
        const m = new RegExp(`<line x2="24" y1="-4" y2="-4" stroke="(#[0-9a-f]{6})" stroke-width="2.5"([^/]*)/><text x="30">${policy} ${kind}<`, 'i').exec(page);
        assert.ok(m, `${policy} ${kind} swatch`);
        return `${m[1]}${m[2]}`;
      };
      const failed = swatch('failed');
      const shed = swatch('shed');
      assert.notEqual(failed.slice(0, 7).toLowerCase(), shed.slice(0, 7).toLowerCase(), 'colours differ');
      assert.doesNotMatch(failed, /dasharray/);
      assert.match(shed, /stroke-dasharray="6 3"/);
    }
  });

  it('sizes every chart to the page, not to a fixed pixel width', () => {
    assert.doesNotMatch(page, /<svg[^>]*\swidth=/, 'no svg carries a width attribute');
    assert.doesNotMatch(page, /860px|width="860"/);
    assert.match(page, /svg\{[^}]*width:100%;height:auto;min-width:600px/);
  });

  it('puts two events 0.2 s apart on separate label rows', () => {
    const ys = [...page.matchAll(/<text class="ev" x="[\d.]+" y="([\d.]+)"[^>]*>(kill|revive) r\/1</g)].slice(0, 2).map((m) => Number(m[1]));
    assert.equal(ys.length, 2);
    assert.equal(Math.abs((ys[1] as number) - (ys[0] as number)), 14);
  });
});
