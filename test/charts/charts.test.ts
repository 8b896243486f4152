/**
 * The SVG charts (src/charts): each chart's numbers land where they should.
 * The SVG is parsed (strictly: an unescaped label fails the parse), and the
 * coordinates are compared with hand-computed ones from the documented
 * layout: the plot area runs from x = 56 to width - 16 and from y = 48 to
 * height - 44, linear in the data. Coordinates are rounded to 0.01 px.
 */
import { describe, expect, it } from 'vitest';
import {
  CHART_COLORS, entropyHistogramSvg, entropyScatterSvg, escapeHtml, histogram, niceTicks, regressionChartSvg, reliabilityDiagramSvg, trainingCurvesSvg, uncertaintyBarsSvg,
} from '../../src/charts/index.js';
import { BayesError } from '../../src/errors.js';
import type { Reliability } from '../../src/uncertainty/metrics.js';
import { type Element, attr, parseSvg, points, select, textOf } from './svg_parse.js';

/** Rounding of coordinates to 0.01 px: at most 0.005 off (plus float noise). */
const PX = 0.0051;
const near = (got: number, want: number, what = '') => expect(Math.abs(got - want), `${what}: got ${got}, want ${want}`).toBeLessThanOrEqual(PX);
const nearPoints = (got: [number, number][], want: [number, number][]) => {
  expect(got).toHaveLength(want.length);
  got.forEach(([x, y], i) => {
    near(x, want[i][0], `point ${i} x`);
    near(y, want[i][1], `point ${i} y`);
  });
};

const EVIL = '<b>&"\'';
const EVIL_ESCAPED = '&lt;b&gt;&amp;&quot;&#39;';

/** The label appears escaped in the markup, decodes back to itself, and no raw '<b>' is left. */
function expectEscaped(svg: string, root: Element, texts: string[]) {
  expect(svg).toContain(EVIL_ESCAPED);
  expect(svg).not.toContain('<b>');
  expect(texts.some((t) => t.includes(EVIL))).toBe(true);
  expect(root.name).toBe('svg');
}

/** Ticks of one axis: their values (data-value) and pixel positions. */
function ticks(root: Element, axis: 'x' | 'y') {
  return select(root, 'text', `tick ${axis}`).map((t) => ({ value: attr(t, 'data-value'), at: attr(t, axis), label: textOf(t) }));
}

describe('chart helpers', () => {
  it('niceTicks: round steps of 1, 2 or 5 x 10^k covering the range', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 2.302585, 6)).toEqual([0, 0.5, 1, 1.5, 2]);
    expect(niceTicks(-3, 3, 4)).toEqual([-2, 0, 2]);
    expect(niceTicks(0.1, 0.35, 5)).toEqual([0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
    expect(niceTicks(0, 30, 5)).toEqual([0, 10, 20, 30]);
    expect(niceTicks(-7, 7, 7)).toEqual([-6, -4, -2, 0, 2, 4, 6]);
    // raw step 0.00105 -> 0.002 (the first of 1, 2, 5 x 0.001 at or above it).
    expect(niceTicks(0, 0.0042, 4)).toEqual([0, 0.002, 0.004]);
    expect(niceTicks(1, 1)).toEqual([1]);
    // Over many ranges: equal round steps, inside the range, no gap of a whole step at either end.
    for (const [lo, hi, count] of [[0.013, 0.91, 5], [-123, 4567, 6], [1e-6, 3e-6, 4], [5, 5.5, 3], [-0.2, -0.01, 4]] as const) {
      const t = niceTicks(lo, hi, count);
      const step = t[1] - t[0];
      const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
      expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6), `step ${step}`).toBe(true);
      for (let k = 1; k < t.length; k++) expect(t[k] - t[k - 1]).toBeCloseTo(step, 9);
      expect(t[0]).toBeGreaterThanOrEqual(lo - step * 1e-6);
      expect(t[0] - lo).toBeLessThan(step);
      expect(t.at(-1)!).toBeLessThanOrEqual(hi + step * 1e-6);
      expect(hi - t.at(-1)!).toBeLessThan(step);
      expect(t.length).toBeGreaterThanOrEqual(Math.floor(count / 2.5));
      expect(t.length).toBeLessThanOrEqual(Math.ceil(count * 2.5) + 1);
    }
  });

  it('escapeHtml escapes the five markup characters', () => {
    expect(escapeHtml(EVIL)).toBe(EVIL_ESCAPED);
    expect(escapeHtml('a & b')).toBe('a &amp; b');
  });

  it('histogram counts values into equal bins (outside values into the end bins, NaN into none)', () => {
    const h = histogram([0.1, 0.2, 0.9, 1.5, -1, 5, Number.NaN, 0.25], { name: 'set', lo: 0, hi: 1, bins: 4 });
    expect(h.edges).toEqual([0, 0.25, 0.5, 0.75, 1]);
    // 0.1, 0.2, -1 -> bin 0; 0.25 -> bin 1 (bins are [lower, upper)); 0.9, 1.5, 5 -> bin 3.
    expect(h.counts).toEqual([3, 1, 0, 3]);
    expect(h.total).toBe(7);
    expect(h.fractions).toEqual([3 / 7, 1 / 7, 0, 3 / 7]);
    expect(() => histogram([1], { lo: 1, hi: 1, bins: 3 })).toThrow(/histogram: argument 'options.lo, options.hi' expected finite numbers with lo < hi, got \[1, 1\]/);
    expect(() => histogram([1], { lo: 0, hi: 1, bins: 0 })).toThrow(/histogram: argument 'options.bins' expected an integer >= 1, got 0/);
  });
});

describe('reliabilityDiagramSvg', () => {
  const rel: Reliability = {
    bins: [
      { lower: 0, upper: 0.5, count: 0, confidence: Number.NaN, accuracy: Number.NaN },
      { lower: 0.5, upper: 0.75, count: 4, confidence: 0.6, accuracy: 0.5 },
      { lower: 0.75, upper: 1, count: 6, confidence: 0.9, accuracy: 1 },
    ],
    ece: 0.1, mce: 0.1, count: 10,
  };

  it('bars at the bins, as high as the accuracy; the confidence tick and gap at the mean confidence', () => {
    const svg = reliabilityDiagramSvg(rel, { width: 460, height: 400, title: EVIL });
    const root = parseSvg(svg);
    expect(root.attributes['data-chart']).toBe('reliability');
    expect([attr(root, 'data-ece'), attr(root, 'data-mce'), attr(root, 'width'), attr(root, 'height')]).toEqual([0.1, 0.1, 460, 400]);
    // Plot: x 56..444 (388 px), y 356..48 (308 px). x(v) = 56 + 388 v, y(v) = 356 - 308 v.
    const bars = select(root, 'rect', 'bin');
    expect(bars.map((b) => attr(b, 'data-count'))).toEqual([0, 4, 6]);
    expect(select(root, 'rect', 'empty').map((b) => attr(b, 'data-bin'))).toEqual([0]);
    expect(attr(bars[0], 'height')).toBe(0);
    // Bin 1 (0.5, 0.75]: x = 56 + 194 + 1 (a 1 px gap each side), width 97 - 2, accuracy 0.5: height 154.
    near(attr(bars[1], 'x'), 251);
    near(attr(bars[1], 'width'), 95);
    near(attr(bars[1], 'y'), 202);
    near(attr(bars[1], 'height'), 154);
    near(attr(bars[2], 'y'), 48);
    near(attr(bars[2], 'height'), 308);
    const [tick1, tick2] = select(root, 'line', 'confidence');
    near(attr(tick1, 'y1'), 356 - 0.6 * 308);
    near(attr(tick2, 'y1'), 356 - 0.9 * 308);
    // The gap from accuracy 0.5 up to confidence 0.6.
    const [gap1] = select(root, 'rect', 'gap');
    near(attr(gap1, 'y'), 356 - 0.6 * 308);
    near(attr(gap1, 'height'), 0.1 * 308);
    // Ticks 0, 0.2, ..., 1 on both axes, at their positions.
    const y = ticks(root, 'y');
    expect(y.map((t) => t.value)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    y.forEach((t) => near(t.at - 4, 356 - 308 * t.value, `y tick ${t.value}`));
    ticks(root, 'x').forEach((t) => near(t.at, 56 + 388 * t.value, `x tick ${t.value}`));
    expectEscaped(svg, root, select(root, 'text', 'title').map(textOf));
  });

  it('the default title names ECE and MCE; colours apply; bad options fail', () => {
    const root = parseSvg(reliabilityDiagramSvg(rel, { colors: ['#123456'] }));
    expect(textOf(select(root, 'text', 'title')[0])).toBe('Reliability (ECE 0.1000, MCE 0.1000)');
    expect(select(root, 'rect', 'bin')[1].attributes.fill).toBe('#123456');
    expect(() => reliabilityDiagramSvg(rel, { width: 10 })).toThrow(/reliabilityDiagramSvg: argument 'options.width' expected a finite number >= 120 \(pixels\), got 10/);
    expect(() => reliabilityDiagramSvg(rel, { colors: [3 as unknown as string] })).toThrow(/argument 'options.colors\[0\]' expected a CSS colour string, got 3/);
    expect(() => reliabilityDiagramSvg({} as Reliability)).toThrow(BayesError);
  });
});

describe('entropyHistogramSvg', () => {
  it('bars at the bin edges, heights proportional to the fractions, one group per set', () => {
    const a = histogram([0.1, 0.2, 0.9, 1.5, -1, 5], { name: EVIL, lo: 0, hi: 1, bins: 4 }); // [3, 0, 0, 3] / 6
    const b = histogram([0.3, 0.6], { name: 'ood', lo: 0, hi: 1, bins: 4 }); // [0, 1, 1, 0] / 2
    const svg = entropyHistogramSvg([a, b], { width: 620, height: 400, maxEntropy: 0.8 });
    const root = parseSvg(svg);
    expect(root.attributes['data-chart']).toBe('entropy-histogram');
    const groups = select(root, 'g', 'histogram');
    expect(groups.map((g) => [g.attributes['data-name'], attr(g, 'data-total')])).toEqual([[EVIL, 6], ['ood', 2]]);
    expect(groups.map((g) => g.attributes.fill)).toEqual([CHART_COLORS[0], CHART_COLORS[1]]);
    // x(v) = 56 + 548 v; the y axis runs to 1.05 x the largest fraction (0.5): y(v) = 356 - 308 v / 0.525.
    const bars = (s: number) => select(root, 'rect', 'hbar').filter((r) => r.attributes['data-set'] === String(s));
    expect(bars(0).map((r) => attr(r, 'data-count'))).toEqual([3, 0, 0, 3]);
    expect(bars(1).map((r) => attr(r, 'data-count'))).toEqual([0, 1, 1, 0]);
    const want = [[0.5, 0, 0, 0.5], [0, 0.5, 0.5, 0]];
    for (const s of [0, 1]) {
      bars(s).forEach((r, k) => {
        near(attr(r, 'x'), 56 + 548 * 0.25 * k);
        near(attr(r, 'width'), 137);
        near(attr(r, 'height'), (308 * want[s][k]) / 0.525, `set ${s} bin ${k}`);
        near(attr(r, 'y') + attr(r, 'height'), 356);
      });
    }
    near(attr(select(root, 'line', 'max-entropy')[0], 'x1'), 56 + 548 * 0.8);
    expectEscaped(svg, root, select(root, 'text').map(textOf));
  });

  it('refuses histograms over different bins', () => {
    const a = histogram([0.1], { lo: 0, hi: 1, bins: 4 });
    const b = histogram([0.1], { lo: 0, hi: 2, bins: 4 });
    expect(() => entropyHistogramSvg([a, b])).toThrow(/entropyHistogramSvg: argument 'histograms\[1\].edges' expected the edges of histograms\[0\]/);
    expect(() => entropyHistogramSvg([])).toThrow(/argument 'histograms' expected a non-empty array/);
  });
});

describe('entropyScatterSvg', () => {
  it('one dot per image at (entropy, MI); points outside the axes sit on the edge', () => {
    const sets = [
      { name: EVIL, predictiveEntropy: Float32Array.from([0.5, 1, 3]), mutualInformation: Float32Array.from([0.125, 0.25, 0.0625]) },
      { name: 'ood', predictiveEntropy: [2], mutualInformation: [0.5] },
    ];
    const svg = entropyScatterSvg(sets, { maxEntropy: 2, width: 460, height: 320, colors: ['#111', '#222'] });
    const root = parseSvg(svg);
    expect(root.attributes['data-chart']).toBe('entropy-scatter');
    // x(v) = 56 + 388 v / 2; y domain [0, 1.05 x 0.5]: y(v) = 276 - 228 v / 0.525.
    const x = (v: number) => 56 + (388 * v) / 2;
    const y = (v: number) => 276 - (228 * v) / 0.525;
    const groups = select(root, 'g', 'set');
    expect(groups.map((g) => [g.attributes['data-name'], attr(g, 'data-count'), g.attributes.fill])).toEqual([[EVIL, 3, '#111'], ['ood', 1, '#222']]);
    const dots = groups.map((g) => g.children.map((c) => [attr(c, 'cx'), attr(c, 'cy')] as [number, number]));
    nearPoints(dots[0], [[x(0.5), y(0.125)], [x(1), y(0.25)], [x(2), y(0.0625)]]); // entropy 3 > 2: on the right edge
    nearPoints(dots[1], [[x(2), y(0.5)]]);
    expect(select(root, 'circle')).toHaveLength(4);
    expect(select(root, 'circle').map((c) => attr(c, 'data-entropy'))).toEqual([0.5, 1, 3, 2]);
    expectEscaped(svg, root, select(root, 'text').map(textOf));
  });

  it('checks the sets', () => {
    expect(() => entropyScatterSvg([{ name: 'a', predictiveEntropy: [1, 2], mutualInformation: [0.1] }]))
      .toThrow(/entropyScatterSvg: argument 'sets\[0\].mutualInformation' expected shape \[2\] \(one per image, as predictiveEntropy\), got \[1\]/);
    expect(() => entropyScatterSvg([{ name: 'a', predictiveEntropy: [1], mutualInformation: [0.1] }], { maxEntropy: -1 })).toThrow(/argument 'options.maxEntropy' expected \[lo, hi\]/);
  });
});

describe('uncertaintyBarsSvg', () => {
  // Per class, epistemic + aleatoric = p (1 - p): 0.21, 0.16, 0.09.
  const u = { mean: [0.7, 0.2, 0.1], epistemic: [0.01, 0.004, 0.002], aleatoric: [0.2, 0.156, 0.088] };

  it('bar widths proportional to the values, p̄ on 0..1 and each variance on its own scale', () => {
    const svg = uncertaintyBarsSvg(u, { classNames: [EVIL, 'cat', 'dog'], title: 'one image', width: 600 });
    const root = parseSvg(svg);
    expect(root.attributes['data-chart']).toBe('uncertainty-bars');
    expect([attr(root, 'data-best'), attr(root, 'data-classes')]).toEqual([0, 3]);
    const tracks = select(root, 'rect', 'track');
    expect(tracks).toHaveLength(9);
    const full = attr(tracks[0], 'width');
    for (const [kind, scale] of [['mean', 1], ['epistemic', 0.01], ['aleatoric', 0.2]] as const) {
      const bars = select(root, 'rect', kind);
      expect(bars.map((b) => attr(b, 'data-value'))).toEqual(u[kind]);
      bars.forEach((b, c) => {
        near(attr(b, 'width'), (full * u[kind][c]) / scale, `${kind} ${c}`);
        // One row per class, 22 px apart.
        near(attr(b, 'y') - attr(bars[0], 'y'), 22 * c);
      });
    }
    // The columns do not overlap and fit into the width.
    const columnX = ['mean', 'epistemic', 'aleatoric'].map((k) => attr(select(root, 'rect', k)[0], 'x'));
    expect(columnX[1] - columnX[0]).toBeGreaterThan(full);
    expect(columnX[2] + full).toBeLessThanOrEqual(600);
    expect(select(root, 'g', 'class').map((g) => [attr(g, 'data-mean'), attr(g, 'data-epistemic'), attr(g, 'data-aleatoric')])).toEqual([[0.7, 0.01, 0.2], [0.2, 0.004, 0.156], [0.1, 0.002, 0.088]]);
    const names = select(root, 'text', 'class-name');
    expect(names.map(textOf)).toEqual([EVIL, 'cat', 'dog']);
    expect(select(root, 'text', 'best').map(textOf)).toEqual([EVIL]);
    expect(textOf(select(root, 'text', 'title')[0])).toBe('one image');
    expectEscaped(svg, root, names.map(textOf));
  });

  it('height sets the row height; without class names the classes are numbered; bad input fails', () => {
    const root = parseSvg(uncertaintyBarsSvg(u, { height: 24 + 3 * 30 + 6 }));
    const bars = select(root, 'rect', 'mean');
    near(attr(bars[1], 'y') - attr(bars[0], 'y'), 30);
    expect(select(root, 'text', 'class-name').map(textOf)).toEqual(['0', '1', '2']);
    expect(() => uncertaintyBarsSvg(u, { classNames: ['a', 'b'] })).toThrow(/uncertaintyBarsSvg: argument 'options.classNames' expected 3 names \(one per class\), got "2 names"/);
    expect(() => uncertaintyBarsSvg({ ...u, epistemic: [0.1] })).toThrow(/uncertaintyBarsSvg: argument 'epistemic' expected shape \[3\] \(one value per class, as mean\), got \[1\]/);
  });
});

describe('regressionChartSvg', () => {
  const xs = [2, 0, 1, 3];
  const mean = [4, 0, 1, 9];
  // x(v) = 56 + 137 v over [0, 4]; y(v) = 356 - 22 (v + 2) over [-2, 12].
  const X = (v: number) => 56 + 137 * v;
  const Y = (v: number) => 356 - 22 * (v + 2);

  it('one band from std: the mean and mean ± 2 std in x order', () => {
    const std = [0.5, 0.1, 0.2, 1];
    const svg = regressionChartSvg({ xs, mean, std, trainX: [0.5, 1.5, 3], trainY: [0.3, 2.1, 20] }, { xDomain: [0, 4], yDomain: [-2, 12], title: EVIL });
    const root = parseSvg(svg);
    expect(root.attributes['data-chart']).toBe('regression');
    const sorted = [[0, 0, 0.1], [1, 1, 0.2], [2, 4, 0.5], [3, 9, 1]];
    nearPoints(points(select(root, 'polyline', 'mean')[0]), sorted.map(([x, m]) => [X(x), Y(m)]));
    const bands = select(root, 'polygon', 'band');
    expect(bands).toHaveLength(1);
    nearPoints(points(bands[0]), [
      ...sorted.map(([x, m, s]) => [X(x), Y(m + 2 * s)] as [number, number]),
      ...sorted.reverse().map(([x, m, s]) => [X(x), Y(m - 2 * s)] as [number, number]),
    ]);
    const train = select(root, 'circle', 'train');
    nearPoints(train.map((c) => [attr(c, 'cx'), attr(c, 'cy')]), [[X(0.5), Y(0.3)], [X(1.5), Y(2.1)], [X(3), 48]]); // 20 > 12: on the top edge
    expect(train.map((c) => attr(c, 'data-y'))).toEqual([0.3, 2.1, 20]);
    expect(select(root, 'g', 'point').map((g) => [attr(g, 'data-x'), attr(g, 'data-mean'), attr(g, 'data-std')])).toEqual([[0, 0, 0.1], [1, 1, 0.2], [2, 4, 0.5], [3, 9, 1]]);
    expect(ticks(root, 'x').map((t) => t.value)).toEqual([0, 1, 2, 3, 4]);
    ticks(root, 'x').forEach((t) => near(t.at, X(t.value)));
    expectEscaped(svg, root, select(root, 'text', 'title').map(textOf));
  });

  it('epistemic and aleatoric parts: a total band sqrt(e + a) around an aleatoric band', () => {
    const epistemicVar = [0.09, 0.16, 0, 0.64];
    const aleatoricVar = [0.16, 0.09, 0.25, 0.36];
    // Total std: 0.5, 0.5, 0.5, 1; aleatoric std: 0.4, 0.3, 0.5, 0.6 (at x = 2, 0, 1, 3).
    const root = parseSvg(regressionChartSvg({ xs, mean, epistemicVar, aleatoricVar, truth: { name: 'x²', values: xs.map((x) => x * x) } }, { xDomain: [0, 4], yDomain: [-2, 12] }));
    const byX = [[0, 0, 0.5, 0.3], [1, 1, 0.5, 0.5], [2, 4, 0.5, 0.4], [3, 9, 1, 0.6]];
    const upper = (k: 2 | 3) => byX.map((r) => [X(r[0]), Y(r[1] + 2 * r[k])] as [number, number]);
    const lower = (k: 2 | 3) => byX.map((r) => [X(r[0]), Y(r[1] - 2 * r[k])] as [number, number]).reverse();
    nearPoints(points(select(root, 'polygon', 'band total')[0]), [...upper(2), ...lower(2)]);
    nearPoints(points(select(root, 'polygon', 'band aleatoric')[0]), [...upper(3), ...lower(3)]);
    nearPoints(points(select(root, 'polyline', 'truth')[0]), [[X(0), Y(0)], [X(1), Y(1)], [X(2), Y(4)], [X(3), Y(9)]]);
    const g = select(root, 'g', 'point');
    g.forEach((e, i) => expect(attr(e, 'data-std')).toBeCloseTo([0.5, 0.5, 0.5, 1][i], 12));
    expect(g.map((e) => attr(e, 'data-epistemic-var'))).toEqual([0.16, 0, 0.09, 0.64]);
    expect(select(root, 'circle')).toHaveLength(0);
  });

  it('checks its data before drawing', () => {
    expect(() => regressionChartSvg({ xs, mean: [1], std: [1, 1, 1, 1] })).toThrow(/regressionChartSvg: argument 'mean' expected shape \[4\] \(one value per x\), got \[1\]/);
    expect(() => regressionChartSvg({ xs, mean, std: [1, 1, 1, 1], trainX: [1], trainY: [] })).toThrow(/argument 'trainY' expected shape \[1\] \(one value per trainX\), got \[0\]/);
    expect(() => regressionChartSvg({ xs, mean })).toThrow(/argument 'std' expected the predictive std per x \(or epistemicVar and aleatoricVar\)/);
    expect(() => regressionChartSvg({ xs, mean, epistemicVar: mean })).toThrow(/argument 'aleatoricVar' expected both epistemicVar and aleatoricVar/);
    expect(() => regressionChartSvg({ xs: [], mean: [], std: [] })).toThrow(/argument 'xs' expected at least one point/);
    expect(() => regressionChartSvg({ xs, mean, std: mean }, { yDomain: [3, 1] })).toThrow(/argument 'options.yDomain' expected \[lo, hi\] with finite lo < hi, got \[3, 1\]/);
  });
});

describe('trainingCurvesSvg', () => {
  it('one line per series at (step, value), markers where asked, the last value in data-last', () => {
    const series = [
      { name: EVIL, points: [[0, 2], [10, 1], [20, Number.NaN], [30, 0.5]] as [number, number][] },
      { name: 'held-out', points: [[10, 0.4], [30, 0.6]] as [number, number][], markers: true },
    ];
    const svg = trainingCurvesSvg(series, { title: 'Loss', xLabel: 'step', yLabel: 'nats', width: 400, height: 220 });
    const root = parseSvg(svg);
    expect(root.attributes['data-chart']).toBe('training-curves');
    // x over [0, 30]: 56 + 328 v / 30; y over [0, 2 + 0.05 x 2 = 2.1]: 176 - 128 v / 2.1.
    const X = (v: number) => 56 + (328 * v) / 30;
    const Y = (v: number) => 176 - (128 * v) / 2.1;
    const lines = select(root, 'polyline', 'line');
    nearPoints(points(lines[0]), [[X(0), Y(2)], [X(10), Y(1)], [X(30), Y(0.5)]]); // NaN left out
    nearPoints(points(lines[1]), [[X(10), Y(0.4)], [X(30), Y(0.6)]]);
    expect(lines.map((l) => l.attributes.stroke)).toEqual([CHART_COLORS[0], CHART_COLORS[1]]);
    nearPoints(select(root, 'circle', 'marker').map((c) => [attr(c, 'cx'), attr(c, 'cy')]), [[X(10), Y(0.4)], [X(30), Y(0.6)]]);
    const g = select(root, 'g', 'series');
    expect(g.map((e) => [e.attributes['data-name'], attr(e, 'data-count'), attr(e, 'data-last')])).toEqual([[EVIL, 3, 0.5], ['held-out', 2, 0.6]]);
    expect(ticks(root, 'x').map((t) => t.value)).toEqual([0, 10, 20, 30]);
    ticks(root, 'x').forEach((t) => near(t.at, X(t.value)));
    ticks(root, 'y').forEach((t) => near(t.at - 4, Y(t.value)));
    expectEscaped(svg, root, select(root, 'text').map(textOf));
  });

  it('a fixed y domain clamps; empty series draw nothing; bad points fail', () => {
    const root = parseSvg(trainingCurvesSvg([{ name: 'acc', points: [[0, 0.5], [4, 1.5]] }, { name: 'none', points: [] }], { yDomain: [0, 1] }));
    // y over [0, 1]: 176 - 128 v; 1.5 sits on the top edge (48).
    nearPoints(points(select(root, 'polyline', 'line')[0]), [[56, 176 - 64], [384, 48]]);
    expect(select(root, 'polyline')).toHaveLength(1);
    expect(select(root, 'g', 'series')[1].attributes['data-last']).toBe('');
    expect(() => trainingCurvesSvg([{ name: 'a', points: [[Number.NaN, 1]] }])).toThrow(/trainingCurvesSvg: argument 'series\[0\].points\[0\]' expected \[x, y\] with a finite x/);
  });
});
