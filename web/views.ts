// The page's charts, as SVG text drawn at the width they are shown at (so their 12 px text stays
// 12 px on a phone), linked by one selected layer. Meaning never rests on colour alone: |z| > 2
// is hatched, points outside 2 SD are diamonds, the selected layer is outlined and marked with a
// triangle, the two sets of the evaluation differ in fill pattern and line dash, and every series is
// named in a legend. Unlike src/ood/plots.ts (the report's fixed-size figures) these are
// interactive: elements carry data-layer for the page's click and hover handlers.
import { scaleLinear } from "d3-scale";
import type { Layer } from "./engine.ts";

export const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const FONT = 12;
const C = { bar: "#3b6ea8", out: "#a61c1c", band1: "#b7cde6", band2: "#e3edf7", mean: "#3b6ea8", grey: "#595959", sel: "#111" };
const num = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "–");

function svg(width: number, height: number, label: string, body: string, defs = ""): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(label)}" font-family="system-ui, sans-serif" font-size="${FONT}">` +
    `<defs>${defs}</defs>${body}</svg>`;
}

/** A chart's title and legend in HTML, so they wrap on a narrow screen; swatches are small inline SVGs. */
function head(title: string, items: [string, string][], defs = ""): string {
  // Only the swatch that uses the pattern defines it (ids are unique in a document).
  const sw = (shape: string) => `<svg aria-hidden="true" width="14" height="12" viewBox="0 0 14 12">${defs && shape.includes("url(#") ? `<defs>${defs}</defs>` : ""}${shape}</svg>`;
  return `<p class="chart-title">${title}</p>` + (items.length ? `<p class="legend">${items.map(([shape, text]) => `<span>${sw(shape)} ${text}</span>`).join(" ")}</p>` : "");
}

/** A diagonal hatch pattern (id unique per chart). */
const hatch = (id: string, color: string) =>
  `<pattern id="${id}" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="${color}"/><line x1="0" y1="0" x2="0" y2="5" stroke="white" stroke-width="2"/></pattern>`;

/** Short block labels: Glow "L0 step 3", U-Net blocks without "unet.". */
export function shortBlock(block: string): string {
  const g = /^levels\.(\d+)\.steps\.(\d+)$/.exec(block);
  if (g) return `L${g[1]} step ${g[2]}`;
  const p = /^levels\.(\d+)\.prior$/.exec(block);
  if (p) return `L${p[1]} prior`;
  return block.replace(/^unet\./, "");
}

/** x positions of the layers, with a gap between blocks; the blocks' spans. */
function layerAxis(layers: Layer[], x0: number, x1: number) {
  const blocks: { block: string; from: number; to: number }[] = [];
  for (const l of layers) {
    const b = blocks[blocks.length - 1];
    if (b && b.block === l.block) b.to = l.index;
    else blocks.push({ block: l.block, from: l.index, to: l.index });
  }
  const gap = Math.min(4, Math.max(0, ((x1 - x0) * 0.15) / Math.max(1, blocks.length - 1)));
  const bw = (x1 - x0 - gap * (blocks.length - 1)) / layers.length;
  const xs = new Array<number>(layers.length);
  blocks.forEach((b, k) => {
    for (let l = b.from; l <= b.to; l++) xs[l] = x0 + l * bw + k * gap;
  });
  return { xs, bw, blocks };
}

/** Block labels under an axis, skipping those that would overlap their neighbour. */
function blockLabels(ax: ReturnType<typeof layerAxis>, y: number): string {
  let s = "", lastEnd = -Infinity;
  for (const b of ax.blocks) {
    const a = ax.xs[b.from], e = ax.xs[b.to] + ax.bw, mid = (a + e) / 2, text = shortBlock(b.block);
    s += `<line x1="${a}" x2="${e}" y1="${y}" y2="${y}" stroke="#999"/>`;
    const w = text.length * FONT * 0.6;
    // Kept inside the chart: a label at either end is pulled in.
    const cx = Math.min(Math.max(mid, ax.xs[0] + w / 2), ax.xs[ax.xs.length - 1] + ax.bw - w / 2);
    if (cx - w / 2 > lastEnd + 4) {
      s += `<text x="${cx}" y="${y + FONT + 2}" text-anchor="middle" fill="#333">${esc(text)}</text>`;
      lastEnd = cx + w / 2;
    }
  }
  return s;
}

/** An axis tick label, centred on x but kept inside [x0, x1]. */
function tick(x: number, y: number, text: string, x0: number, x1: number): string {
  const half = text.length * FONT * 0.3;
  const anchor = x - half < x0 ? "start" : x + half > x1 ? "end" : "middle";
  return `<text x="${anchor === "start" ? Math.max(x, x0) : anchor === "end" ? Math.min(x, x1) : x}" y="${y}" text-anchor="${anchor}">${esc(text)}</text>`;
}

/** A triangle marker pointing down at x, tip at y. */
const marker = (x: number, y: number, cls = "sel-marker") => `<path class="${cls}" d="M${x - 5},${y - 8}L${x + 5},${y - 8}L${x},${y}Z" fill="${C.sel}"/>`;

export interface LayerView {
  layers: Layer[];
  /** z per layer (NaN: not scored). */
  z: number[];
  logf: ArrayLike<number>;
  mean: number[];
  variance: number[];
  kept: Set<number>;
  selected: number | null;
}

/** z-scores of log f_l per parameter tensor, grouped by block. */
export function zBars(v: LayerView, width: number, id: string): string {
  const H = 200, top = 12, bottom = 26, x0 = 40, x1 = width - 8;
  const ax = layerAxis(v.layers, x0, x1);
  const fin = v.z.filter(Number.isFinite).map(Math.abs);
  const lim = Math.max(3, ...fin);
  const y = scaleLinear().domain([-lim, lim]).range([H - bottom, top]);
  let s = "";
  for (const t of [-lim, -2, 0, 2, lim]) {
    s += `<line x1="${x0}" x2="${x1}" y1="${y(t)}" y2="${y(t)}" stroke="${t === 0 ? "#000" : "#ccc"}" ${Math.abs(t) === 2 ? 'stroke-dasharray="4 3"' : ""}/>`;
    s += `<text x="${x0 - 4}" y="${y(t) + 4}" text-anchor="end">${+t.toFixed(1)}</text>`;
  }
  v.layers.forEach((l, i) => {
    const z = v.z[i], x = ax.xs[i], w = Math.max(1, ax.bw - (ax.bw > 3 ? 1 : 0));
    const title = `<title>${esc(l.name)}: z = ${num(z)}</title>`;
    // A full-height hit area, so thin bars are easy to click.
    s += `<rect class="hit" data-layer="${i}" x="${x}" y="${top}" width="${ax.bw}" height="${H - bottom - top}" fill="transparent">${title}</rect>`;
    if (!Number.isFinite(z)) {
      s += `<text x="${x + ax.bw / 2}" y="${y(0) + 4}" text-anchor="middle" fill="${C.grey}" data-layer="${i}">×</text>`;
    } else {
      const yy = Math.min(y(z), y(0)), h = Math.max(0.5, Math.abs(y(z) - y(0)));
      const out = Math.abs(z) > 2;
      s += `<rect class="zbar${out ? " out" : ""}${i === v.selected ? " selected" : ""}" data-layer="${i}" x="${x}" y="${yy}" width="${w}" height="${h}" fill="${out ? `url(#${id}-h)` : C.bar}"` +
        (i === v.selected ? ` stroke="${C.sel}" stroke-width="2"` : "") + `>${title}</rect>`;
    }
  });
  if (v.selected !== null) s += marker(ax.xs[v.selected] + ax.bw / 2, top + 1);
  s += blockLabels(ax, H - bottom + 4);
  const out = v.z.filter((z) => Math.abs(z) > 2).length, na = v.z.filter((z) => !Number.isFinite(z)).length;
  return head("z<sub>l</sub> per parameter tensor, grouped by block (blocks in model order)", [
    [`<rect width="12" height="12" fill="${C.bar}"/>`, "|z| ≤ 2"],
    [`<rect width="12" height="12" fill="url(#${id}-sw)"/>`, "|z| &gt; 2 (hatched)"],
    [`<path d="M1,1L13,1L7,11Z" fill="${C.sel}"/>`, "selected"],
    ...(na ? [[`<text x="7" y="11" text-anchor="middle" font-size="12" fill="${C.grey}">×</text>`, "not scored (zero fit variance)"] as [string, string]] : []),
  ], hatch(`${id}-sw`, C.out)) +
    svg(width, H, `Bar chart of the z-scores of ${v.layers.length} parameter tensors; ${out} have |z| above 2` + (v.selected !== null ? `; selected: ${v.layers[v.selected].name}, z = ${num(v.z[v.selected])}` : ""), s, hatch(`${id}-h`, C.out));
}

/** log f_l of this input against the fit's mean ± 1 and 2 SD, per tensor. */
export function fitBands(v: LayerView, width: number): string {
  const H = 200, top = 12, bottom = 26, x0 = 48, x1 = width - 8;
  const ax = layerAxis(v.layers, x0, x1);
  const vals: number[] = [];
  v.layers.forEach((_, i) => {
    if (v.kept.has(i)) vals.push(v.mean[i] - 2 * Math.sqrt(v.variance[i]), v.mean[i] + 2 * Math.sqrt(v.variance[i]));
    if (Number.isFinite(v.logf[i])) vals.push(v.logf[i]);
  });
  const lo = Math.min(...vals), hi = Math.max(...vals);
  const y = scaleLinear().domain([lo, hi === lo ? lo + 1 : hi]).range([H - bottom, top]).nice();
  let s = "";
  for (const t of y.ticks(4)) s += `<line x1="${x0}" x2="${x1}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/><text x="${x0 - 4}" y="${y(t) + 4}" text-anchor="end">${t}</text>`;
  if (v.selected !== null) {
    const x = ax.xs[v.selected];
    s += `<rect class="sel-column" data-layer="${v.selected}" x="${x - 1}" y="${top}" width="${ax.bw + 2}" height="${H - bottom - top}" fill="none" stroke="${C.sel}" stroke-width="1.5"/>` + marker(x + ax.bw / 2, top + 1);
  }
  v.layers.forEach((l, i) => {
    const x = ax.xs[i], cx = x + ax.bw / 2, w = Math.max(1, ax.bw - (ax.bw > 3 ? 1 : 0));
    const sd = Math.sqrt(v.variance[i]), m = v.mean[i], f = v.logf[i];
    const title = `<title>${esc(l.name)}: log f = ${num(f)}; fit μ = ${num(m)}, σ = ${num(sd)}</title>`;
    s += `<rect class="hit" data-layer="${i}" x="${x}" y="${top}" width="${ax.bw}" height="${H - bottom - top}" fill="transparent">${title}</rect>`;
    if (v.kept.has(i)) {
      s += `<rect data-layer="${i}" class="band${i === v.selected ? " selected" : ""}" x="${x}" y="${y(m + 2 * sd)}" width="${w}" height="${Math.max(0.5, y(m - 2 * sd) - y(m + 2 * sd))}" fill="${C.band2}">${title}</rect>`;
      s += `<rect data-layer="${i}" x="${x}" y="${y(m + sd)}" width="${w}" height="${Math.max(0.5, y(m - sd) - y(m + sd))}" fill="${C.band1}">${title}</rect>`;
    }
    if (Number.isFinite(f)) {
      const out = Math.abs((f - m) / sd) > 2, r = Math.max(1.5, Math.min(3.5, ax.bw / 2));
      s += out
        ? `<path data-layer="${i}" d="M${cx},${y(f) - r - 1}l${r + 1},${r + 1}l${-r - 1},${r + 1}l${-r - 1},${-r - 1}Z" fill="${C.out}">${title}</path>`
        : `<circle data-layer="${i}" cx="${cx}" cy="${y(f)}" r="${r}" fill="#222">${title}</circle>`;
    }
  });
  s += blockLabels(ax, H - bottom + 4);
  const sel = v.selected;
  return head("log f<sub>l</sub> of this input against the in-distribution fit, per tensor, grouped by block", [
    [`<rect width="12" height="12" fill="${C.band1}"/>`, "μ ± σ"], [`<rect width="12" height="12" fill="${C.band2}" stroke="#bbb"/>`, "μ ± 2σ"],
    [`<circle cx="7" cy="6" r="4" fill="#222"/>`, "this input"], [`<path d="M7,0l6,6l-6,6l-6,-6Z" fill="${C.out}"/>`, "outside 2σ"],
    [`<path d="M1,1L13,1L7,11Z" fill="${C.sel}"/>`, "selected"],
  ]) + svg(width, H, `Chart of log f_l per tensor against the fit's mean plus or minus one and two standard deviations` +
    (sel !== null ? `; selected ${v.layers[sel].name}: log f = ${num(v.logf[sel])}, fit mean ${num(v.mean[sel])}, SD ${num(Math.sqrt(v.variance[sel]))}` : ""), s);
}

/** The model's parameter tensors in model order, one row per block, each tensor a box as wide as its parameter count. */
export function architecture(v: LayerView, width: number, kind: string): string {
  const rowH = 20, labelW = Math.min(170, Math.max(112, width * 0.3)), x0 = labelW + 6, x1 = width - 8, top = 6;
  const rows: { block: string; layers: Layer[]; size: number }[] = [];
  for (const l of v.layers) {
    const r = rows[rows.length - 1];
    if (r && r.block === l.block) (r.layers.push(l), r.size += l.size);
    else rows.push({ block: l.block, layers: [l], size: l.size });
  }
  const maxSize = Math.max(...rows.map((r) => r.size)), n = rows.length;
  const H = top + n * rowH + 4;
  const compact = (k: number) => (k >= 1e4 ? `${(k / 1e3).toFixed(0)}k` : k >= 1e3 ? `${(k / 1e3).toFixed(1)}k` : String(k));
  let s = "";
  rows.forEach((r, k) => {
    const yy = top + k * rowH + 4;
    s += `<text x="4" y="${yy + 11}" fill="#333">${esc(shortBlock(r.block))}</text><text x="${labelW}" y="${yy + 11}" text-anchor="end" fill="#666">${compact(r.size)}</text>`;
    let x = x0;
    for (const l of r.layers) {
      const w = Math.max(3, ((x1 - x0) * l.size) / maxSize - 1), big = l.shape.length > 1, sel = l.index === v.selected;
      s += `<rect class="tensor${sel ? " selected" : ""}" data-layer="${l.index}" x="${x}" y="${yy}" width="${w}" height="14" fill="${big ? "#8aa9c9" : "#d5dfe9"}" stroke="${sel ? C.sel : "#8aa9c9"}" stroke-width="${sel ? 3 : 0.5}">` +
        `<title>${esc(l.name)} [${l.shape.join("×")}]: ${l.size.toLocaleString("en")} parameters</title></rect>`;
      if (sel) s += marker(x + w / 2, yy - 1);
      x += w + 1;
    }
  });
  const sel = v.selected !== null ? v.layers[v.selected] : null;
  return head(`${esc(kind)}: ${v.layers.length} parameter tensors in ${n} blocks, in model order; each box as wide as its parameter count (a row's total on its left)`, [
    [`<rect width="12" height="12" fill="#8aa9c9"/>`, "weight"], [`<rect width="12" height="12" fill="#d5dfe9" stroke="#8aa9c9"/>`, "bias, scale or other one-axis tensor"],
    [`<path d="M1,1L13,1L7,11Z" fill="${C.sel}"/>`, "selected (thick outline)"],
  ]) + `<p class="chart-note">${sel ? `selected: ${esc(sel.name)} [${sel.shape.join("×")}], ${sel.size.toLocaleString("en")} parameters` : "click a box to select its tensor"}</p>` + svg(width, H, `Architecture of the ${kind}: ${v.layers.length} parameter tensors in ${n} blocks` + (sel ? `; selected ${sel.name}, shape ${sel.shape.join(" by ")}, ${sel.size} parameters` : ""), s);
}

/**
 * The held-out in-distribution scores (from the detector file's 101 percentiles: each gap between
 * neighbouring percentiles holds 1% of the images) with the threshold and this input marked.
 */
export function scoreHistogram(quantiles: number[], score: number, threshold: number, width: number, id: string): string {
  const H = 170, top = 34, bottom = 24, x0 = 12, x1 = width - 12;
  const q1 = quantiles[1], q99 = quantiles[99], span = q99 - q1 || 1;
  let lo = Math.min(q1 - 0.25 * span, threshold), hi = Math.max(q99 + 0.1 * span, threshold);
  const off = score < lo - 0.5 * span ? "left" : score > hi + 0.5 * span ? "right" : null;
  if (!off) (lo = Math.min(lo, score), hi = Math.max(hi, score));
  const x = scaleLinear().domain([lo, hi]).range([x0, x1]).nice();
  const [dlo, dhi] = x.domain() as [number, number];
  const bins = Math.max(12, Math.min(40, Math.floor((x1 - x0) / 12))), bw = (dhi - dlo) / bins, mass = new Array<number>(bins).fill(0);
  for (let p = 0; p < 100; p++) {
    const a = quantiles[p], b = quantiles[p + 1];
    if (b <= a) {
      const k = Math.floor((a - dlo) / bw);
      if (k >= 0 && k < bins) mass[k] += 0.01;
      continue;
    }
    for (let k = 0; k < bins; k++) {
      const ov = Math.min(b, dlo + (k + 1) * bw) - Math.max(a, dlo + k * bw);
      if (ov > 0) mass[k] += (0.01 * ov) / (b - a);
    }
  }
  const y = scaleLinear().domain([0, Math.max(...mass, 1e-9)]).range([H - bottom, top]);
  let s = `<rect x="${x0}" y="${top}" width="${Math.max(0, x(threshold) - x0)}" height="${H - bottom - top}" fill="url(#${id}-h)" opacity="0.35"/>`;
  mass.forEach((m, k) => {
    s += `<rect x="${x(dlo + k * bw)}" y="${y(m)}" width="${Math.max(0.5, x(dlo + (k + 1) * bw) - x(dlo + k * bw) - 1)}" height="${y(0) - y(m)}" fill="#9bb3cc"/>`;
  });
  s += `<line x1="${x0}" x2="${x1}" y1="${y(0)}" y2="${y(0)}" stroke="#000"/>`;
  for (const t of x.ticks(Math.max(2, Math.floor((x1 - x0) / 90)))) s += `<line x1="${x(t)}" x2="${x(t)}" y1="${y(0)}" y2="${y(0) + 4}" stroke="#000"/>` + tick(x(t), y(0) + 16, String(t), x0, x1);
  const label = (px: number, yy: number, text: string, bold = false) => {
    const right = px < (x0 + x1) / 2;
    return `<text x="${px + (right ? 6 : -6)}" y="${yy}" text-anchor="${right ? "start" : "end"}"${bold ? ' font-weight="bold"' : ""}>${esc(text)}</text>`;
  };
  const tx = x(threshold);
  s += `<line class="threshold" x1="${tx}" x2="${tx}" y1="2" y2="${y(0)}" stroke="#000" stroke-dasharray="5 3" stroke-width="1.5"/>` + label(tx, 12, `threshold ${num(threshold, 1)}`);
  const sx = off === "left" ? x0 + 2 : off === "right" ? x1 - 2 : x(score);
  s += `<line class="input-marker" x1="${sx}" x2="${sx}" y1="${top - 6}" y2="${y(0)}" stroke="#111" stroke-width="3"/>` + marker(sx, top - 6, "input-marker-head");
  s += label(sx, 28, `this input ${num(score, 1)}${off ? " (off the scale)" : ""}`, true);
  return head("The score of held-out in-distribution images (higher = more in-distribution), with this input and the threshold", [
    [`<rect width="12" height="12" fill="#9bb3cc"/>`, "held-out in-distribution images"], [`<path d="M7,0V12" stroke="#000" stroke-width="2" stroke-dasharray="3 2"/>`, "threshold"],
    [`<path d="M7,4V12" stroke="#111" stroke-width="3"/><path d="M2,0L12,0L7,6Z" fill="#111"/>`, "this input"],
    [`<rect width="12" height="12" fill="url(#${id}-sw)" opacity="0.5"/>`, "flagged OOD (below the threshold)"],
  ], hatch(`${id}-sw`, C.out)) +
    svg(width, H, `Histogram of the held-out in-distribution images' scores; threshold ${num(threshold, 1)}; this input scores ${num(score, 1)}${off ? ", far off the scale" : ""}`, s, hatch(`${id}-h`, C.out));
}

/** A blue-white-red colour bar for the saliency map, with the value it saturates at. */
export function saliencyLegend(max: number, width: number): string {
  const W = Math.min(width, 280), x0 = 10, x1 = W - 10, H = 38;
  let stops = "";
  for (const [o, c] of [[0, "rgb(0,0,255)"], [0.5, "rgb(255,255,255)"], [1, "rgb(255,0,0)"]] as const) stops += `<stop offset="${o}" stop-color="${c}"/>`;
  const g = `<linearGradient id="sal-grad">${stops}</linearGradient>`;
  const m = max.toExponential(1);
  const s = `<rect x="${x0}" y="6" width="${x1 - x0}" height="12" fill="url(#sal-grad)" stroke="#999"/>` +
    `<text x="${x0}" y="32">−${m}</text><text x="${(x0 + x1) / 2}" y="32" text-anchor="middle">0</text><text x="${x1}" y="32" text-anchor="end">+${m}</text>`;
  return svg(W, H, `Colour scale of the saliency map: blue is negative, white zero, red positive, saturating at plus or minus ${m}`, s, g) +
    `<p class="chart-note">blue: raising the pixel lowers the target; red: raises it; white: no effect</p>`;
}

/** ROC curves of the evaluation: each method its own dash pattern and marker, named in the legend. */
export function rocChart(methods: { label: string; auroc: number; points: [number, number][] }[], width: number, title: string): string {
  const top = 8, plot = Math.max(200, Math.min(width - 60, 300)), W = plot + 60;
  const x0 = 46, y0 = top + plot, H = y0 + 40;
  const x = scaleLinear().domain([0, 1]).range([x0, x0 + plot]), y = scaleLinear().domain([0, 1]).range([y0, top]);
  const dashes = ["", "7 4", "2 3"];
  const mk = (k: number, cx: number, cy: number) =>
    k === 0 ? `<circle cx="${cx}" cy="${cy}" r="3" fill="#222"/>` : k === 1 ? `<rect x="${cx - 3}" y="${cy - 3}" width="6" height="6" fill="#222"/>` : `<path d="M${cx},${cy - 4}l4,4l-4,4l-4,-4Z" fill="#222"/>`;
  const dash = (k: number) => (dashes[k] ? `stroke-dasharray="${dashes[k]}"` : "");
  let s = "";
  for (const t of [0, 0.5, 1]) {
    s += `<line x1="${x(t)}" x2="${x(t)}" y1="${y0}" y2="${y0 + 4}" stroke="#000"/><text x="${x(t)}" y="${y0 + 16}" text-anchor="middle">${t}</text>`;
    s += `<line x1="${x0 - 4}" x2="${x0}" y1="${y(t)}" y2="${y(t)}" stroke="#000"/><text x="${x0 - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`;
  }
  s += `<rect x="${x0}" y="${top}" width="${plot}" height="${plot}" fill="none" stroke="#000"/><line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#bbb" stroke-dasharray="3 3"/>`;
  s += `<text x="${x0 + plot / 2}" y="${y0 + 32}" text-anchor="middle">false positive rate (OOD kept)</text>`;
  s += `<text transform="translate(12,${top + plot / 2}) rotate(-90)" text-anchor="middle">true positive rate</text>`;
  methods.forEach((m, k) => {
    const pts = m.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join("L");
    s += `<path class="roc" d="M${pts}" fill="none" stroke="#222" stroke-width="1.8" ${dash(k)}/>`;
    for (const f of [0.3, 0.6]) {
      const p = m.points[Math.floor((m.points.length - 1) * (f + 0.07 * k))] ?? m.points[0];
      s += mk(k, x(p[0]), y(p[1]));
    }
  });
  return `<div>` + head(esc(title), methods.map((m, k) => [`<path d="M0,6H14" stroke="#222" stroke-width="1.8" ${dash(k)}/>` + mk(k, 7, 6), `${esc(m.label)}: AUROC ${m.auroc.toFixed(3)}`] as [string, string])) +
    svg(W, H, `ROC curves. ${methods.map((m) => `${m.label}: AUROC ${m.auroc.toFixed(3)}`).join("; ")}`, s) + "</div>";
}

/** Two overlaid histograms (in-distribution solid, OOD hatched and dashed), named in the legend. */
export function pairHistogram(label: string, a: { name: string; values: number[] }, b: { name: string; values: number[] }, width: number, id: string): string {
  const W = Math.min(width, 420), H = 150, top = 8, bottom = 24, x0 = 12, x1 = W - 12;
  const all = [...a.values, ...b.values].filter(Number.isFinite);
  if (!all.length) return "";
  const sorted = all.sort((p, q) => p - q);
  // The 1st to 99th percentile, so one extreme input does not squash the rest (the count beyond is shown).
  let lo = sorted[Math.floor(0.01 * (sorted.length - 1))], hi = sorted[Math.ceil(0.99 * (sorted.length - 1))];
  if (lo === hi) (lo -= 1, hi += 1);
  const x = scaleLinear().domain([lo, hi]).range([x0, x1]).nice();
  const [dlo, dhi] = x.domain() as [number, number];
  const bins = 24, bw = (dhi - dlo) / bins;
  const hist = (v: number[]) => {
    const c = new Array<number>(bins).fill(0);
    let beyond = 0;
    for (const t of v) {
      const k = Math.floor((t - dlo) / bw);
      if (k >= 0 && k < bins) c[k] += 1 / v.length;
      else if (Number.isFinite(t)) beyond++;
    }
    return { c, beyond };
  };
  const ha = hist(a.values), hb = hist(b.values);
  const y = scaleLinear().domain([0, Math.max(...ha.c, ...hb.c, 1e-9)]).range([H - bottom, top]);
  const area = (c: number[]) => `M${x(dlo)},${y(0)}` + c.map((v, k) => `L${x(dlo + k * bw)},${y(v)}L${x(dlo + (k + 1) * bw)},${y(v)}`).join("") + `L${x(dhi)},${y(0)}Z`;
  let s = `<path d="${area(ha.c)}" fill="#9bb3cc" fill-opacity="0.7" stroke="#3b6ea8"/>`;
  s += `<path d="${area(hb.c)}" fill="url(#${id}-h)" fill-opacity="0.6" stroke="${C.out}" stroke-dasharray="4 2" stroke-width="1.5"/>`;
  s += `<line x1="${x0}" x2="${x1}" y1="${y(0)}" y2="${y(0)}" stroke="#000"/>`;
  for (const t of x.ticks(Math.max(2, Math.floor((x1 - x0) / 80)))) s += tick(x(t), y(0) + 15, String(+t.toPrecision(4)), x0, x1);
  return `<div>` + head(esc(label), [
    [`<rect width="12" height="12" fill="#9bb3cc" stroke="#3b6ea8"/>`, `${esc(a.name)} (in-distribution)${ha.beyond ? `, ${ha.beyond} off the scale` : ""}`],
    [`<rect width="12" height="12" fill="url(#${id}-sw)" stroke="${C.out}" stroke-dasharray="3 2"/>`, `${esc(b.name)} (OOD, hatched, dashed)${hb.beyond ? `, ${hb.beyond} off the scale` : ""}`],
  ], hatch(`${id}-sw`, "#d99")) + svg(W, H, `Histograms of ${label} for ${a.name} and ${b.name}`, s, hatch(`${id}-h`, "#d99")) + "</div>";
}
