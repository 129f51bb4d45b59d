// Why the pixel-space Glow's saliency maps sit on the image's left and right edge columns
// (docs/page.md, "The Glow's edge columns"). For the shipped Glows and a few of the page's test
// images: the share of |d score / d pixel| (and of |d NLL / d pixel|) in the outer columns and rows;
// the map checked against float64 central differences on an edge pixel and an interior pixel; and
// how often FashionMNIST's training images are not black in those columns and rows.
//   deno run -A scripts/web/glow_edges.ts [--models glow-fashion,glow-fashion-large]
import "../../src/cli/errors.ts";
import { parseOptions, text } from "../../src/io/options.ts";
import * as T from "../../src/autograd/index.ts";
import { makeSet } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/mnist.ts";
import { Glow, type GlowConfig } from "../../src/models/glow.ts";
import { loadModelBytes } from "../../src/models/from_bytes.ts";
import type { GenerativeModel } from "../../src/models/model.ts";
import { checkDetector, type DiagonalDetector, inspectInput } from "../../src/ood/inspect.ts";

const a = parseOptions("glow_edges", { models: text().default("glow-fashion,glow-fashion-large") });
const S = 28;
const image = (set: string, i: number) => Deno.readFileSync(`web/data/${set}.u8`).slice(i * 784, (i + 1) * 784);
const inputs: [string, Uint8Array][] = [
  ...[0, 1, 2, 3].map((i) => [`fashion #${i}`, image("fashion", i)] as [string, Uint8Array]),
  ...[0, 7].map((i) => [`mnist #${i}`, image("mnist", i)] as [string, Uint8Array]),
];

/** Shares of sum |v| in the two outer columns, the two outer rows, and the mean |v| there over the interior's. */
function edges(v: ArrayLike<number>) {
  let total = 0, cols = 0, rows = 0, inner = 0, nInner = 0;
  for (let r = 0; r < S; r++) {
    for (let c = 0; c < S; c++) {
      const m = Math.abs(v[r * S + c]);
      total += m;
      if (c === 0 || c === S - 1) cols += m;
      if (r === 0 || r === S - 1) rows += m;
      if (r > 1 && r < S - 2 && c > 1 && c < S - 2) (inner += m, nInner++);
    }
  }
  return { cols: cols / total, rows: rows / total, colRatio: (cols / (2 * S)) / (inner / nInner), rowRatio: (rows / (2 * S)) / (inner / nInner) };
}
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

// The training data: how often each outer column / row is not black.
const train = loadDataset("fashion", "train");
const lit = { left: 0, right: 0, top: 0, bottom: 0 };
for (let n = 0; n < train.n; n++) {
  const im = train.images.subarray(n * 784, (n + 1) * 784);
  let l = false, r = false, t = false, b = false;
  for (let k = 0; k < S; k++) {
    l ||= im[k * S] > 0;
    r ||= im[k * S + S - 1] > 0;
    t ||= im[k] > 0;
    b ||= im[(S - 1) * S + k] > 0;
  }
  lit.left += +l, lit.right += +r, lit.top += +t, lit.bottom += +b;
}
console.log(`FashionMNIST train (${train.n} images): not black somewhere in column 0 ${pct(lit.left / train.n)}, column 27 ${pct(lit.right / train.n)}, row 0 ${pct(lit.top / train.n)}, row 27 ${pct(lit.bottom / train.n)}`);

/** The same weights as a float64 model on the CPU, for central differences. */
async function f64Copy(model: GenerativeModel): Promise<GenerativeModel> {
  const g = new Glow(model.config as unknown as GlowConfig, { backend: T.cpu, dtype: "float64", gen: new T.Generator(0) });
  const src = new Map(model.namedParameters());
  for (const [n, p] of g.namedParameters()) p.assign(T.tensor(Float64Array.from(await src.get(n)!.data()), [...p.shape], { backend: T.cpu, dtype: "float64" }));
  g.markInitialized();
  g.eval();
  return g;
}

for (const id of a.models.split(",")) {
  const { model } = await loadModelBytes(Deno.readFileSync(`weights/${id}.safetensors`), T.cpu, id);
  const det: DiagonalDetector = checkDetector(JSON.parse(Deno.readTextFileSync(`web/data/${id}.detector.json`)), model.namedParameters().map(([n]) => n), id);
  console.log(`\n${id} (${model.config.logit ? "logit space" : "pixel space"})`);
  console.log("| input | score saliency: outer columns | outer rows | mean |s| outer columns / interior | outer rows / interior | d NLL/dx: outer columns | outer rows |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const [name, img] of inputs) {
    const x = model.input(makeSet("x", img, new Uint8Array([0]), 1, S, S), [0]);
    const r = await inspectInput(model, x, det, { saliency: "score" });
    const xs = x.detach().requireGrad();
    const [gx] = T.grad(T.sum(model.nll(xs)), [xs]);
    const dn = Float64Array.from(await gx!.data());
    gx!.dispose();
    x.dispose();
    const s = edges(r.saliency!), n = edges(dn);
    console.log(`| ${name} | ${pct(s.cols)} | ${pct(s.rows)} | ${s.colRatio.toFixed(1)}x | ${s.rowRatio.toFixed(1)}x | ${pct(n.cols)} | ${pct(n.rows)} |`);
  }
  // Central differences in float64 on an edge pixel and an interior one (fashion #0).
  const m64 = await f64Copy(model);
  const base = Float64Array.from(await model.input(makeSet("x", inputs[0][1], new Uint8Array([0]), 1, S, S), [0]).data());
  const f64 = { backend: T.cpu, dtype: "float64" as const };
  const r64 = await inspectInput(m64, T.tensor(base, [1, 1, S, S], f64), det, { saliency: "score" });
  for (const [rr, cc] of [[14, 0], [13, 27], [0, 14], [14, 14]]) {
    const i = rr * S + cc, h = 1e-4, p = base.slice(), q = base.slice();
    p[i] += h;
    q[i] -= h;
    const sp = (await inspectInput(m64, T.tensor(p, [1, 1, S, S], f64), det, { saliency: "none" })).score;
    const sq = (await inspectInput(m64, T.tensor(q, [1, 1, S, S], f64), det, { saliency: "none" })).score;
    const fd = (sp - sq) / (2 * h);
    console.log(`  fashion #0 pixel (row ${rr}, column ${cc}): d score/dx ${r64.saliency![i].toExponential(4)} by double backprop, ${fd.toExponential(4)} by central differences (h = ${h})`);
  }
}
