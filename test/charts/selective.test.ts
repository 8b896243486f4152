/**
 * riskCoverageSvg (src/charts/selective.ts): the SVG parses strictly, each curve's points sit at
 * the documented coordinates (plot area x 56 .. width - 16, y 48 .. height - 44, linear in the
 * data), names are escaped, long curves are thinned, bad input fails.
 */
import { describe, expect, it } from 'vitest';
import { CHART_COLORS, riskCoverageSvg } from '../../src/charts/index.js';
import { BayesError } from '../../src/errors.js';
import { riskCoverage } from '../../src/uncertainty/selective.js';
import { attr, parseSvg, points, select, textOf } from './svg_parse.js';

const PX = 0.0051;
const near = (got: number, want: number, what = '') => expect(Math.abs(got - want), `${what}: got ${got}, want ${want}`).toBeLessThanOrEqual(PX);

describe('riskCoverageSvg', () => {
  it('one line per curve at (coverage, risk), the AURC in the legend and in data-aurc', () => {
    const curves = [
      { name: '<b>&"\'', by: 'maxProb', coverage: [0.25, 0.5, 1], risk: [0, 0.1, 0.2], aurc: 0.0875 },
      { by: 'entropy', coverage: Float64Array.from([0.5, 1]), risk: Float64Array.from([0.3, 0.2]) },
    ];
    const svg = riskCoverageSvg(curves, { width: 460, height: 320 });
    const root = parseSvg(svg);
    expect(root.attributes['data-chart']).toBe('risk-coverage');
    // x over [0, 1]: 56 + 388 v; y over [0, 0.3 * 1.05]: 276 - 228 v / 0.315.
    const X = (v: number) => 56 + 388 * v;
    const Y = (v: number) => 276 - (228 * v) / 0.315;
    const lines = select(root, 'polyline', 'line');
    expect(lines).toHaveLength(2);
    const want = [[[0.25, 0], [0.5, 0.1], [1, 0.2]], [[0.5, 0.3], [1, 0.2]]];
    lines.forEach((l, k) => {
      const got = points(l);
      expect(got).toHaveLength(want[k].length);
      got.forEach(([x, y], i) => {
        near(x, X(want[k][i][0]), `curve ${k} point ${i} x`);
        near(y, Y(want[k][i][1]), `curve ${k} point ${i} y`);
      });
    });
    expect(lines.map((l) => l.attributes.stroke)).toEqual([CHART_COLORS[0], CHART_COLORS[1]]);
    const g = select(root, 'g', 'series');
    expect(g.map((e) => [e.attributes['data-name'], e.attributes['data-by'], e.attributes['data-aurc'], attr(e, 'data-count'), attr(e, 'data-last')]))
      .toEqual([['<b>&"\'', 'maxProb', '0.0875', 3, 0.2], ['entropy', 'entropy', '', 2, 0.2]]);
    const legend = select(root, 'g', 'legend').map(textOf);
    expect(legend).toEqual(['<b>&"\' (AURC 0.0875)', 'entropy']);
    expect(svg).toContain('&lt;b&gt;&amp;&quot;&#39;');
    expect(svg).not.toContain('<b>');
    expect(select(root, 'text', 'tick x').map((t) => attr(t, 'data-value'))).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(textOf(select(root, 'text', 'title')[0])).toBe('Risk vs coverage');
  });

  it('draws riskCoverage() results as they are; thins long curves to maxPoints, ends kept', () => {
    const n = 1000;
    const mean = new Float64Array(2 * n);
    const labels = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      mean[2 * i] = 0.5 + (0.5 * (i + 0.5)) / n;
      mean[2 * i + 1] = 1 - mean[2 * i];
      labels[i] = i % 3 === 0 ? 1 : 0;
    }
    const rc = riskCoverage(mean, labels, { classes: 2 });
    expect(rc.coverage.length).toBe(n);
    const root = parseSvg(riskCoverageSvg([rc], { maxPoints: 50, yDomain: [0, 1] }));
    const pts = points(select(root, 'polyline', 'line')[0]);
    expect(pts).toHaveLength(50);
    // Plot 460 x 320, y over [0, 1]: first and last points are the curve's own.
    near(pts[0][0], 56 + 388 * rc.coverage[0]);
    near(pts[0][1], 276 - 228 * rc.risk[0]);
    near(pts[49][0], 56 + 388);
    near(pts[49][1], 276 - 228 * rc.risk[n - 1]);
    const g = select(root, 'g', 'series')[0];
    expect([attr(g, 'data-points'), attr(g, 'data-count'), attr(g, 'data-aurc')]).toEqual([n, 50, rc.aurc]);
    expect(g.attributes['data-name']).toBe('maxProb');
  });

  it('bad input fails with the argument named', () => {
    const expectError = (f: () => unknown, pattern: RegExp) => {
      expect(f).toThrow(BayesError);
      expect(f).toThrow(pattern);
    };
    expectError(() => riskCoverageSvg({} as never), /riskCoverageSvg: argument 'curves' expected an array of \{ coverage, risk \}/);
    expectError(() => riskCoverageSvg([{ coverage: [0.5, 1], risk: [0.1] }]), /argument 'curves\[0\].risk' expected an array of 2 risks/);
    expectError(() => riskCoverageSvg([{ coverage: [1.5], risk: [0.1] }]), /argument 'curves\[0\].coverage\[0\]' expected a coverage in \[0, 1\], got 1.5/);
    expectError(() => riskCoverageSvg([{ coverage: [1], risk: [Number.NaN] }]), /argument 'curves\[0\].risk\[0\]' expected a finite risk, got NaN/);
    expectError(() => riskCoverageSvg([], { maxPoints: 1 }), /argument 'options.maxPoints' expected an integer >= 2, got 1/);
    // No curves: axes only.
    expect(select(parseSvg(riskCoverageSvg([])), 'polyline')).toHaveLength(0);
  });
});
