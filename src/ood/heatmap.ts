// Per-layer attribution as a figure: the AUROC of each layer's own term of the diagonal Gaussian
// (the per-feature log density, -(log f_l - mean)^2 / 2 var + const) alone, in-distribution
// evaluation vs each OOD set; layers as rows, OOD sets as columns. Which layers detect which sets.
import { scaleSequential } from "d3-scale";
import { interpolateRdBu } from "d3-scale-chromatic";
import type { DiagonalGaussian } from "./density.ts";
import { auroc } from "./metrics.ts";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** AUROC per (kept layer, OOD set) of the layer's log-density term alone. */
export function layerAurocs(d: DiagonalGaussian, inEval: ArrayLike<number>[], ood: { name: string; rows: ArrayLike<number>[] }[]): { layers: number[]; sets: string[]; auroc: number[][] } {
  const term = (l: number) => (r: ArrayLike<number>) => -((r[l] - d.mean[l]) ** 2) / d.variance[l];
  return {
    layers: d.kept,
    sets: ood.map((o) => o.name),
    auroc: d.kept.map((l) => ood.map((o) => auroc(inEval.map(term(l)), o.rows.map(term(l))))),
  };
}

/** A heatmap: values in [0, 1] coloured around 0.5 (blue above, red below), printed in each cell. */
export function heatmapSvg(title: string, rows: string[], cols: string[], values: number[][], note = ""): string {
  const cw = 62, ch = 14, left = Math.min(330, 12 + 6.2 * Math.max(...rows.map((r) => r.length), 4)), top = 58;
  const W = left + cw * cols.length + 90, H = top + ch * rows.length + 30;
  const color = scaleSequential(interpolateRdBu).domain([0, 1]);
  let body = `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>`;
  if (note) body += `<text x="${W / 2}" y="32" text-anchor="middle" fill="#555">${esc(note)}</text>`;
  cols.forEach((c, j) => { body += `<text x="${left + j * cw + cw / 2}" y="${top - 6}" text-anchor="middle">${esc(c)}</text>`; });
  rows.forEach((r, i) => {
    const y = top + i * ch;
    body += `<text x="${left - 4}" y="${y + ch - 3}" text-anchor="end" font-size="10">${esc(r)}</text>`;
    values[i].forEach((v, j) => {
      const dark = Math.abs(v - 0.5) > 0.3;
      body += `<rect x="${left + j * cw}" y="${y}" width="${cw - 1}" height="${ch - 1}" fill="${color(v)}"><title>${esc(r)} / ${esc(cols[j])}: ${v.toFixed(3)}</title></rect>`;
      body += `<text x="${left + j * cw + cw / 2}" y="${y + ch - 3}" text-anchor="middle" font-size="9" fill="${dark ? "white" : "black"}">${v.toFixed(2)}</text>`;
    });
  });
  const lx = left + cw * cols.length + 20;
  for (let k = 0; k <= 10; k++) {
    const v = 1 - k / 10;
    body += `<rect x="${lx}" y="${top + k * 14}" width="14" height="14" fill="${color(v)}"/><text x="${lx + 18}" y="${top + k * 14 + 11}">${v.toFixed(1)}</text>`;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">
<rect width="${W}" height="${H}" fill="white"/>
${body}
</svg>
`;
}
