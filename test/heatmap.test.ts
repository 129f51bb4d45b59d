// The per-layer AUROC heatmap: a layer whose feature moves for one OOD set scores high for that
// set only; the SVG has one cell per (layer, set).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { DiagonalGaussian } from "../src/ood/density.ts";
import { heatmapSvg, layerAurocs } from "../src/ood/heatmap.ts";

const S = suite("heatmap");

S("per-layer AUROC: the shifted layer detects its set, the others stay near 0.5", () => {
  const g = new T.Generator(4);
  const rows = (n: number, shifts: number[]) => Array.from({ length: n }, () => Float64Array.from({ length: 3 }, (_, l) => g.normal() + shifts[l]));
  const d = new DiagonalGaussian(rows(400, [0, 0, 0]), 3);
  const h = layerAurocs(d, rows(300, [0, 0, 0]), [{ name: "a", rows: rows(300, [3, 0, 0]) }, { name: "b", rows: rows(300, [0, 0, -3]) }]);
  assert.equal(h.sets, ["a", "b"]);
  assert.equal(h.layers, [0, 1, 2]);
  assert.ok(h.auroc[0][0] > 0.9 && h.auroc[2][1] > 0.9, JSON.stringify(h.auroc));
  for (const [l, s] of [[0, 1], [1, 0], [1, 1], [2, 0]]) assert.ok(Math.abs(h.auroc[l][s] - 0.5) < 0.08, `${l},${s}: ${h.auroc[l][s]}`);
  const svg = heatmapSvg("t", ["x", "y", "z"], h.sets, h.auroc);
  assert.is((svg.match(/<rect [^>]*><title>/g) ?? []).length, 6);
  assert.match(svg, /<title>x \/ a: 0\.9\d\d<\/title>/);
});

S.run();
