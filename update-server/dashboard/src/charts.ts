import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from './dom.ts';

export interface Series {
  label: string;
  values: Array<number | null>;
}

export interface ChartSpec {
  testid: string;
  title: string;
  unit: string;
  /** Window start times, seconds since the epoch. */
  times: number[];
  series: Series[];
  /** Width of a window, seconds: the x range around a single window (default 60). */
  stepSec?: number;
  /** A horizontal reference line (e.g. the PSI drift threshold). */
  threshold?: number;
}

const PALETTE = ['#1f6feb', '#d29922', '#cf222e', '#2da44e', '#8250df', '#bf3989', '#0a7f8f', '#6e7781'];

/**
 * One time-series chart, or its empty state when there is nothing to draw. The container carries
 * data-state (empty | drawn) and the number of points, so tests can tell which one rendered.
 */
export function chart(spec: ChartSpec): HTMLElement {
  const box = h('figure', { class: 'chart', 'data-testid': spec.testid }, h('figcaption', {}, spec.title));
  const hasData = spec.times.length > 0 && spec.series.some((s) => s.values.some((v) => v !== null));
  box.dataset.state = hasData ? 'drawn' : 'empty';
  box.dataset.points = String(spec.times.length);
  if (!hasData) {
    box.append(h('p', { class: 'empty' }, 'No telemetry in this period.'));
    return box;
  }
  const series: uPlot.Series[] = [
    {},
    ...spec.series.map((s, i) => ({
      label: s.label,
      stroke: PALETTE[i % PALETTE.length],
      width: 2,
      spanGaps: false,
      points: { show: spec.times.length < 40 },
      value: (_u: uPlot, v: number | null) => (v === null ? '—' : `${round(v)} ${spec.unit}`),
    })),
  ];
  const data: uPlot.AlignedData = [spec.times, ...spec.series.map((s) => s.values)];
  if (spec.threshold !== undefined) {
    // Kept as a series for the legend and the y range, but drawn across the whole plot: as a line
    // through the data it would vanish when there is only one window (one point makes no line).
    const level = spec.threshold;
    series.push({
      label: 'threshold',
      stroke: '#cf222e',
      dash: [6, 4],
      width: 1,
      points: { show: false },
      paths: (u) => {
        const y = Math.round(u.valToPos(level, 'y', true));
        const line = new Path2D();
        line.moveTo(u.bbox.left, y);
        line.lineTo(u.bbox.left + u.bbox.width, y);
        return { stroke: line, fill: null, clip: null, flags: 0 };
      },
    });
    data.push(spec.times.map(() => level));
  }
  const [only] = spec.times.length === 1 ? spec.times : [];
  const pad = spec.stepSec ?? 60;
  const opts: uPlot.Options = {
    width: 560,
    height: 220,
    series,
    scales: {
      // uPlot spans a single time over 1000 days with the point on the left edge; centre it instead.
      x: { time: true, ...(only !== undefined ? { range: () => [only - pad, only + pad] } : {}) },
      y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
    },
    axes: [{}, { label: spec.unit, size: 60 }],
    legend: { live: true },
  };
  // Drawn once it is in the document, at the width it was given there.
  queueMicrotask(() => {
    const width = Math.max(320, Math.min(box.clientWidth || 560, 900));
    new uPlot({ ...opts, width }, data, box);
  });
  return box;
}

function round(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
