// Charts drawn as SVG: sparklines for the overview, per-minute throughput bars for a queue.

import { s } from './dom.js';
import { count, time } from './format.js';

/**
 * A sparkline of recent values (oldest first). `max` fixes the scale (e.g. 1 for rates of failure).
 * The label says what it shows, for screen readers.
 */
export function sparkline(values, { label, max = null, width = 120, height = 28, kind = 'rate' } = {}) {
  const svg = s('svg', {
    class: `sparkline sparkline-${kind}`, viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-label': label, preserveAspectRatio: 'none',
  });
  svg.append(s('title', {}, label));
  if (values.length < 2) {
    svg.append(s('line', { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: 'sparkline-empty' }));
    return svg;
  }
  const top = Math.max(max ?? 0, ...values, 1e-9);
  const step = width / (values.length - 1);
  const points = values.map((v, i) => [i * step, height - 2 - (Math.max(0, v) / top) * (height - 4)]);
  const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  svg.append(s('polygon', { points: `0,${height} ${line} ${width},${height}`, class: 'sparkline-area' }));
  svg.append(s('polyline', { points: line, class: 'sparkline-line' }));
  return svg;
}

const CHART = { width: 1100, height: 220, left: 44, right: 8, top: 10, bottom: 24 };

function niceMax(value) {
  if (value <= 5) return 5;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const steps = [1, 2, 2.5, 5, 10];
  return steps.map((step) => step * magnitude).find((candidate) => candidate >= value);
}

/**
 * Completed and failed jobs per minute as stacked bars: `minutes` is [{start, completed, failed}], oldest first.
 */
export function throughputChart(minutes, { title = 'Jobs finished per minute' } = {}) {
  const { width, height, left, right, top, bottom } = CHART;
  const total = minutes.reduce((sum, m) => sum + m.completed + m.failed, 0);
  const failed = minutes.reduce((sum, m) => sum + m.failed, 0);
  const label = `${title}: ${count(total - failed)} completed and ${count(failed)} failed over ${minutes.length} minutes`;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  svg.append(s('title', {}, label));
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const peak = niceMax(Math.max(0, ...minutes.map((m) => m.completed + m.failed)));
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH - fraction * plotH;
    svg.append(s('line', { x1: left, x2: width - right, y1: y, y2: y, class: 'chart-grid' }));
    svg.append(s('text', { x: left - 6, y: y + 4, class: 'chart-axis', 'text-anchor': 'end' }, count(peak * fraction)));
  }
  const slot = plotW / Math.max(1, minutes.length);
  const barW = Math.max(1, slot - 2);
  minutes.forEach((m, i) => {
    const x = left + i * slot + 1;
    const hc = (m.completed / peak) * plotH;
    const hf = (m.failed / peak) * plotH;
    const group = s('g', {}, s('title', {}, `${time(m.start)}: ${count(m.completed)} completed, ${count(m.failed)} failed`));
    if (hc > 0) group.append(s('rect', { x, y: top + plotH - hc, width: barW, height: hc, class: 'bar-completed' }));
    if (hf > 0) group.append(s('rect', { x, y: top + plotH - hc - hf, width: barW, height: hf, class: 'bar-failed' }));
    svg.append(group);
    if (i % 15 === 0 || i === minutes.length - 1) {
      svg.append(s('text', { x: x + barW / 2, y: height - 6, class: 'chart-axis', 'text-anchor': 'middle' },
        time(m.start).slice(0, 5)));
    }
  });
  return svg;
}
