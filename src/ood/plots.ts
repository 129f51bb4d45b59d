// SVG figures for the report: ROC curves, histograms of log f_l (in vs out), a feature
// correlation heatmap, and scatter panels (NLL against the features' common factor). Scales and paths from d3-scale / d3-shape; the SVG skeleton is ours.
import { scaleLinear, scaleSequential } from "d3-scale";
import { line } from "d3-shape";
import { interpolateRdBu } from "d3-scale-chromatic";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function frame(w: number, h: number, body: string, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">
<rect width="${w}" height="${h}" fill="white"/>
<text x="${w / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>
${body}
</svg>
`;
}

function axes(x0: number, y0: number, x1: number, y1: number, xs: (v: number) => number, ys: (v: number) => number, xt: number[], yt: number[], xl: string, yl: string): string {
  let s = `<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="black"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="black"/>`;
  for (const t of xt) s += `<line x1="${xs(t)}" y1="${y0}" x2="${xs(t)}" y2="${y0 + 4}" stroke="black"/><text x="${xs(t)}" y="${y0 + 15}" text-anchor="middle">${+t.toPrecision(3)}</text>`;
  for (const t of yt) s += `<line x1="${x0 - 4}" y1="${ys(t)}" x2="${x0}" y2="${ys(t)}" stroke="black"/><text x="${x0 - 6}" y="${ys(t) + 4}" text-anchor="end">${+t.toPrecision(3)}</text>`;
  s += `<text x="${(x0 + x1) / 2}" y="${y0 + 30}" text-anchor="middle">${esc(xl)}</text>`;
  s += `<text transform="translate(${x0 - 30},${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(yl)}</text>`;
  return s;
}

/** ROC curves, one per method, with AUROC in the legend (right of the plot, so it hides no curve). */
export function rocSvg(title: string, curves: { label: string; points: [number, number][]; auroc: number }[]): string {
  const W = 600, H = 380, m = { l: 55, r: 195, t: 30, b: 45 };
  const xs = scaleLinear().domain([0, 1]).range([m.l, W - m.r]), ys = scaleLinear().domain([0, 1]).range([H - m.b, m.t]);
  let body = axes(m.l, H - m.b, W - m.r, m.t, xs, ys, xs.ticks(5), ys.ticks(5), "false positive rate (OOD kept)", "true positive rate (in-dist kept)");
  body += `<line x1="${xs(0)}" y1="${ys(0)}" x2="${xs(1)}" y2="${ys(1)}" stroke="#bbb" stroke-dasharray="4 3"/>`;
  const path = line<[number, number]>().x((d) => xs(d[0])).y((d) => ys(d[1]));
  curves.forEach((c, i) => {
    const col = PALETTE[i % PALETTE.length];
    body += `<path d="${path(c.points)}" fill="none" stroke="${col}" stroke-width="1.6"/>`;
    body += `<rect x="${W - m.r + 15}" y="${m.t + 15 * i}" width="10" height="10" fill="${col}"/><text x="${W - m.r + 30}" y="${m.t + 9 + 15 * i}">${esc(c.label)} (${c.auroc.toFixed(3)})</text>`;
  });
  return frame(W, H, body, title);
}

/** Overlaid histograms of one feature for several sets. */
function histPanel(x: number, y: number, w: number, h: number, label: string, series: { name: string; values: number[] }[]): string {
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  if (!all.length) return "";
  let lo = Math.min(...all), hi = Math.max(...all);
  if (lo === hi) { lo -= 1; hi += 1; }
  const bins = 30, bw = (hi - lo) / bins;
  const counts = series.map((s) => {
    const c = new Array(bins).fill(0);
    for (const v of s.values) if (Number.isFinite(v)) c[Math.min(bins - 1, Math.floor((v - lo) / bw))] += 1 / s.values.length;
    return c;
  });
  const ymax = Math.max(...counts.flat(), 1e-9);
  const xs = scaleLinear().domain([lo, hi]).range([x + 40, x + w - 5]), ys = scaleLinear().domain([0, ymax]).range([y + h - 25, y + 15]);
  let s = axes(x + 40, y + h - 25, x + w - 5, y + 15, xs, ys, xs.ticks(4), ys.ticks(3), label, "fraction");
  counts.forEach((c, i) => {
    const col = PALETTE[i % PALETTE.length];
    const pts: [number, number][] = [];
    c.forEach((v, b) => { pts.push([xs(lo + b * bw), ys(v)], [xs(lo + (b + 1) * bw), ys(v)]); });
    s += `<path d="M${xs(lo)},${ys(0)}L${pts.map((p) => p.join(",")).join("L")}L${xs(hi)},${ys(0)}Z" fill="${col}" fill-opacity="0.25" stroke="${col}"/>`;
  });
  return s;
}

export function histogramsSvg(title: string, features: { label: string; series: { name: string; values: number[] }[] }[]): string {
  const pw = 300, ph = 190, cols = 2, rows = Math.ceil(features.length / cols);
  const W = pw * cols, H = ph * rows + 50;
  let body = "";
  features.forEach((f, i) => { body += histPanel((i % cols) * pw, 25 + Math.floor(i / cols) * ph, pw, ph, f.label, f.series); });
  const names = features[0]?.series.map((s) => s.name) ?? [];
  const step = (W - 20) / Math.max(1, names.length);
  names.forEach((n, i) => { body += `<rect x="${10 + i * step}" y="${H - 18}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}" fill-opacity="0.5"/><text x="${24 + i * step}" y="${H - 9}">${esc(n)}</text>`; });
  return frame(W, H, body, title);
}

/** Correlation matrix of the features across layers (Pearson, on the fit data). */
export function correlationSvg(title: string, names: string[], rows: ArrayLike<number>[]): string {
  const L = names.length, n = rows.length;
  const mean = new Float64Array(L), sd = new Float64Array(L);
  for (const r of rows) for (let l = 0; l < L; l++) mean[l] += r[l] / n;
  for (const r of rows) for (let l = 0; l < L; l++) sd[l] += (r[l] - mean[l]) ** 2 / n;
  for (let l = 0; l < L; l++) sd[l] = Math.sqrt(sd[l]);
  const cell = Math.max(4, Math.min(18, Math.floor(600 / L))), off = 40;
  const color = scaleSequential(interpolateRdBu).domain([1, -1]);
  let body = "";
  for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) {
    let c = 0;
    for (const r of rows) c += ((r[i] - mean[i]) * (r[j] - mean[j])) / n;
    const rho = sd[i] && sd[j] ? c / (sd[i] * sd[j]) : 0;
    body += `<rect x="${off + j * cell}" y="${off + i * cell}" width="${cell}" height="${cell}" fill="${color(rho)}"><title>${esc(names[i])} / ${esc(names[j])}: ${rho.toFixed(3)}</title></rect>`;
  }
  const W = off + L * cell + 110, H = off + L * cell + 20;
  for (let k = 0; k <= 10; k++) {
    const v = 1 - k / 5;
    body += `<rect x="${W - 80}" y="${off + k * 14}" width="14" height="14" fill="${color(v)}"/><text x="${W - 60}" y="${off + k * 14 + 11}">${v.toFixed(1)}</text>`;
  }
  body += `<text x="${off}" y="${off - 6}">parameter tensors in model order (hover for names)</text>`;
  return frame(W, H, body, title);
}

/**
 * Small multiples of scatter plots: each panel overlays its point sets, on its own axes. A series
 * longer than maxPoints is drawn as an evenly strided subset (the axes still span every point).
 */
export function scatterSvg(title: string, xl: string, yl: string, panels: { label: string; series: { name: string; points: [number, number][] }[] }[], maxPoints = 300): string {
  const pw = 300, ph = 240, cols = 2, rows = Math.ceil(panels.length / cols);
  const W = pw * cols, H = ph * rows + 30;
  let body = "";
  panels.forEach((p, k) => {
    const x = (k % cols) * pw, y = 25 + Math.floor(k / cols) * ph;
    const pts = p.series.flatMap((s) => s.points).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    if (!pts.length) return;
    const ext = (i: 0 | 1) => {
      let lo = Math.min(...pts.map((q) => q[i])), hi = Math.max(...pts.map((q) => q[i]));
      if (lo === hi) (lo -= 1), (hi += 1);
      return [lo, hi];
    };
    const xs = scaleLinear().domain(ext(0)).range([x + 45, x + pw - 10]).nice(), ys = scaleLinear().domain(ext(1)).range([y + ph - 45, y + 20]).nice();
    body += axes(x + 45, y + ph - 45, x + pw - 10, y + 20, xs, ys, xs.ticks(4), ys.ticks(4), xl, yl);
    body += `<text x="${x + pw / 2}" y="${y + 12}" text-anchor="middle">${esc(p.label)}</text>`;
    p.series.forEach((s, i) => {
      const col = PALETTE[i % PALETTE.length];
      const stride = Math.max(1, Math.ceil(s.points.length / maxPoints));
      for (const [a, b] of s.points.filter((_, j) => j % stride === 0)) if (Number.isFinite(a) && Number.isFinite(b)) body += `<circle cx="${xs(a).toFixed(1)}" cy="${ys(b).toFixed(1)}" r="1.6" fill="${col}" fill-opacity="0.45"/>`;
      body += `<rect x="${x + pw - 95}" y="${y + 24 + 13 * i}" width="8" height="8" fill="${col}"/><text x="${x + pw - 83}" y="${y + 32 + 13 * i}">${esc(s.name)}</text>`;
    });
  });
  return frame(W, H, body, title);
}

/** Lines with markers over a log2 x axis (e.g. AUROC against the diffusion step t), one per series. */
export function lineLog2Svg(title: string, xl: string, yl: string, series: { name: string; points: [number, number][] }[]): string {
  const W = 560, H = 360, x0 = 55, y0 = H - 45, x1 = W - 150, y1 = 30;
  const pts = series.flatMap((s) => s.points).filter(([a, b]) => a > 0 && Number.isFinite(b));
  if (!pts.length) return frame(W, H, "", title);
  const lx = pts.map(([a]) => Math.log2(a));
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (lo === hi) (lo -= 0.05), (hi += 0.05);
  const xs = scaleLinear().domain([Math.min(...lx), Math.max(Math.max(...lx), Math.min(...lx) + 1)]).range([x0, x1]);
  const ys = scaleLinear().domain([lo, hi]).range([y0, y1]).nice();
  const ticks = [...new Set(lx.map(Math.round))].sort((a, b) => a - b);
  let body = axes(x0, y0, x1, y1, xs, ys, ticks, ys.ticks(5), xl, yl).replace(/>(-?[\d.]+)<\/text>/g, (m, v) => (ticks.includes(Number(v)) ? `>${2 ** Number(v)}</text>` : m));
  series.forEach((s, i) => {
    const col = PALETTE[i % PALETTE.length];
    const p = s.points.filter(([a, b]) => a > 0 && Number.isFinite(b)).map(([a, b]) => [xs(Math.log2(a)), ys(b)] as [number, number]);
    body += `<path d="${line()(p) ?? ""}" fill="none" stroke="${col}" stroke-width="1.5"/>`;
    for (const [a, b] of p) body += `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="2.5" fill="${col}"/>`;
    body += `<rect x="${x1 + 15}" y="${y1 + 14 * i}" width="9" height="9" fill="${col}"/><text x="${x1 + 28}" y="${y1 + 8 + 14 * i}">${esc(s.name)}</text>`;
  });
  return frame(W, H, body, title);
}

/**
 * Small multiples of lines over a log2 x axis with an interval per point (e.g. AUROC and its
 * bootstrap interval against the training step): each panel overlays its series on a y range
 * shared by all panels, so panels compare at a glance.
 */
export function intervalsLog2Svg(title: string, xl: string, yl: string, panels: { label: string; series: { name: string; points: { x: number; y: number; lo: number; hi: number }[] }[] }[], yRange?: [number, number]): string {
  const pw = 340, ph = 250, cols = Math.min(2, Math.max(1, panels.length)), rows = Math.ceil(panels.length / cols), legend = 150;
  const W = pw * cols + legend, H = ph * rows + 30;
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.points)).filter((q) => q.x > 0 && Number.isFinite(q.y));
  if (!all.length) return frame(W, H, "", title);
  const lx = all.map((q) => Math.log2(q.x)), pad = 0.04 * Math.max(1, Math.max(...lx) - Math.min(...lx)), xlo = Math.min(...lx) - pad, xhi = Math.max(...lx) + pad;
  const [ylo, yhi] = yRange ?? [Math.min(...all.map((q) => Number.isFinite(q.lo) ? q.lo : q.y)), Math.max(...all.map((q) => Number.isFinite(q.hi) ? q.hi : q.y))];
  // Ticks at the x values themselves (the steps), labelled by value.
  const ticks = [...new Set(all.map((q) => q.x))].sort((a, b) => a - b);
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  let body = "";
  panels.forEach((p, k) => {
    const x0 = (k % cols) * pw + 50, y0 = 25 + Math.floor(k / cols) * ph + ph - 45, x1 = (k % cols) * pw + pw - 10, y1 = 25 + Math.floor(k / cols) * ph + 20;
    const xs = scaleLinear().domain([xlo, xhi]).range([x0, x1]), ys = scaleLinear().domain([ylo, yhi === ylo ? ylo + 0.1 : yhi]).range([y0, y1]).nice();
    body += axes(x0, y0, x1, y1, xs, ys, [], ys.ticks(5), xl, yl);
    for (const t of ticks) body += `<line x1="${xs(Math.log2(t))}" y1="${y0}" x2="${xs(Math.log2(t))}" y2="${y0 + 4}" stroke="black"/><text x="${xs(Math.log2(t))}" y="${y0 + 14}" text-anchor="middle" font-size="8">${t}</text>`;
    body += `<text x="${(x0 + x1) / 2}" y="${y1 - 6}" text-anchor="middle">${esc(p.label)}</text>`;
    p.series.forEach((s, i) => {
      const col = PALETTE[names.indexOf(s.name) % PALETTE.length], off = (i - (p.series.length - 1) / 2) * 2.5;
      const pts = s.points.filter((q) => q.x > 0 && Number.isFinite(q.y));
      body += `<path d="${line()(pts.map((q) => [xs(Math.log2(q.x)) + off, ys(q.y)] as [number, number])) ?? ""}" fill="none" stroke="${col}" stroke-width="1.4"/>`;
      for (const q of pts) {
        const cx = (xs(Math.log2(q.x)) + off).toFixed(1);
        if (Number.isFinite(q.lo) && Number.isFinite(q.hi)) body += `<line x1="${cx}" y1="${ys(q.lo).toFixed(1)}" x2="${cx}" y2="${ys(q.hi).toFixed(1)}" stroke="${col}" stroke-opacity="0.6"/>`;
        body += `<circle cx="${cx}" cy="${ys(q.y).toFixed(1)}" r="2.2" fill="${col}"/>`;
      }
    });
  });
  names.forEach((n, i) => { body += `<rect x="${W - legend + 10}" y="${40 + 14 * i}" width="9" height="9" fill="${PALETTE[i % PALETTE.length]}"/><text x="${W - legend + 23}" y="${48 + 14 * i}">${esc(n)}</text>`; });
  return frame(W, H, body, title);
}
