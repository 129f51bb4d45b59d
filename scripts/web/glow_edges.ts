// Why the Glows' saliency maps sit on the image's left and right edge columns (docs/page.md, "The
// Glow's edge columns"). For the shipped Glows and a few of the page's test images: how |d score /
// d pixel| (and |d NLL / d pixel|) spreads over the columns and rows; the map checked against
// float64 central differences on edge and interior pixels, at several steps h; and how often
// FashionMNIST's training images are not black in each column and row.
//   deno run -A scripts/web/glow_edges.ts [--models glow-fashion,glow-fashion-large] [--n 12]
// test/page_engine.test.ts uses its functions.
import * as T from "../../src/autograd/index.ts";
import { makeSet } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/mnist.ts";
import { loadModelBytes } from "../../src/models/from_bytes.ts";
import type { GenerativeModel } from "../../src/models/model.ts";
import { createModel } from "../../src/models/registry.ts";
import { inspectInput } from "../../src/ood/inspect.ts";
import { type Detector, readDetectorText } from "../../src/ood/detector.ts";

const S = 28;
const f64 = { backend: T.cpu, dtype: "float64" as const };
export const pageImage = (set: string, i: number) => Deno.readFileSync(`web/data/${set}.u8`).slice(i * S * S, (i + 1) * S * S);

/** A shipped model on the CPU and its page detector. */
export async function shipped(id: string): Promise<{ model: GenerativeModel; det: Detector }> {
  const { model } = await loadModelBytes(Deno.readFileSync(`weights/${id}.safetensors`), T.cpu, id);
  return { model, det: readDetectorText(Deno.readTextFileSync(`web/data/${id}.detector.json`), id) };
}

/** Shares of sum |v| per column and per row (each sums to 1). */
export function profile(v: ArrayLike<number>): { cols: Float64Array; rows: Float64Array } {
  const cols = new Float64Array(S), rows = new Float64Array(S);
  let total = 0;
  for (let i = 0; i < S * S; i++) total += Math.abs(v[i]);
  for (let i = 0; i < S * S; i++) {
    cols[i % S] += Math.abs(v[i]) / total;
    rows[Math.floor(i / S)] += Math.abs(v[i]) / total;
  }
  return { cols, rows };
}

/** The 4 outermost columns on each side, and the 4 outermost rows: their shares of a profile. */
export const EDGE = [0, 1, 2, 3, 24, 25, 26, 27];
export const edgeShare = (p: Float64Array) => EDGE.reduce((s, k) => s + p[k], 0);

/** d score / d pixel (model space) and d NLL / d pixel of one page image. */
export async function maps(model: GenerativeModel, det: Detector, img: Uint8Array): Promise<{ score: Float64Array; nll: Float64Array }> {
  const x = model.input(makeSet("x", img, new Uint8Array([0]), 1, S, S), [0]);
  const r = await inspectInput(model, model.objective(), x, undefined, det, { saliency: "score" }); // a Glow draws nothing
  const xs = x.detach().requireGrad();
  const [gx] = T.tidy(() => T.grad(T.sum(model.nll(xs)), [xs]));
  const nll = Float64Array.from(await gx!.data());
  gx!.dispose();
  x.dispose();
  return { score: r.saliency!, nll };
}

/** The same model and weights in float64 on the CPU (built from its kind and config by the registry), for central differences. */
export async function f64Copy(model: GenerativeModel): Promise<GenerativeModel> {
  const g = await createModel(model.kind, model.config, T.cpu, 0, `${model.kind} config`, "float64");
  const src = new Map(model.namedState());
  for (const [n, p] of g.namedState()) p.assign(T.tensor(Float64Array.from(await src.get(n)!.data()), [...p.shape], f64));
  (g as { markInitialized?: () => void }).markInitialized?.();
  g.eval();
  return g;
}

/** Double backprop's d score / d x at pixel (r, c) of x (model space, float64), and central differences at each step h. */
export async function centralDifferences(m64: GenerativeModel, det: Detector, x: Float64Array, r: number, c: number, hs: number[]) {
  const i = r * S + c, o = m64.objective();
  const score = async (v: Float64Array) => (await inspectInput(m64, o, T.tensor(v, [1, 1, S, S], f64), undefined, det, { saliency: "none" })).score;
  const exact = (await inspectInput(m64, o, T.tensor(x, [1, 1, S, S], f64), undefined, det, { saliency: "score" })).saliency![i];
  const fd: number[] = [];
  for (const h of hs) {
    const p = x.slice(), q = x.slice();
    p[i] += h;
    q[i] -= h;
    fd.push(((await score(p)) - (await score(q))) / (2 * h));
  }
  return { exact, fd };
}

if (import.meta.main) {
  await import("../../src/cli/errors.ts");
  const { int, parseOptions, text } = await import("../../src/io/options.ts");
  const a = parseOptions("glow_edges", { models: text().default("glow-fashion,glow-fashion-large"), n: int({ min: 1, max: 256 }).default(12) });
  const pct = (v: number) => (100 * v).toFixed(1);
  const line = (label: string, v: Float64Array, scale = 100) => `| ${label} | ${Array.from(v, (x) => (x * scale).toFixed(1)).join(" | ")} |`;
  // The training data: how often each column / row is not black.
  const train = loadDataset("fashion", "train");
  const litC = new Float64Array(S), litR = new Float64Array(S);
  for (let n = 0; n < train.n; n++) {
    const im = train.images.subarray(n * S * S, (n + 1) * S * S);
    for (let k = 0; k < S; k++) {
      let col = false, row = false;
      for (let j = 0; j < S; j++) (col ||= im[j * S + k] > 0, row ||= im[k * S + j] > 0);
      litC[k] += +col / train.n;
      litR[k] += +row / train.n;
    }
  }
  console.log(`| index | ${[...Array(S).keys()].join(" | ")} |\n| --- |${" --- |".repeat(S)}`);
  console.log(line("FashionMNIST train: % of images not black in the column", litC));
  console.log(line("... in the row", litR));
  for (const id of a.models.split(",")) {
    const { model, det } = await shipped(id);
    const sc = new Float64Array(S), sr = new Float64Array(S), nc = new Float64Array(S);
    for (let k = 0; k < a.n; k++) {
      const m = await maps(model, det, pageImage("fashion", k));
      const ps = profile(m.score), pn = profile(m.nll);
      for (let j = 0; j < S; j++) (sc[j] += ps.cols[j] / a.n, sr[j] += ps.rows[j] / a.n, nc[j] += pn.cols[j] / a.n);
    }
    console.log(line(`${id}: % of \\|d score/dx\\| per column (mean of ${a.n} page FashionMNIST images)`, sc));
    console.log(line(`${id}: ... per row`, sr));
    console.log(line(`${id}: % of \\|d NLL/dx\\| per column`, nc));
    console.log(`${id}: the 8 outer columns (0-3, 24-27, 29% of the pixels) hold ${pct(edgeShare(sc))}% of |d score/dx|, the 8 outer rows ${pct(edgeShare(sr))}%`);
    const m64 = await f64Copy(model);
    const x = Float64Array.from(await model.input(makeSet("x", pageImage("fashion", 0), new Uint8Array([0]), 1, S, S), [0]).data());
    const hs = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7];
    for (const [r, c] of [[14, 0], [13, 27], [0, 14], [14, 14]]) {
      const { exact, fd } = await centralDifferences(m64, det, x, r, c, hs);
      console.log(`${id} fashion #0 pixel (row ${r}, column ${c}): double backprop ${exact.toExponential(4)}; central differences ${fd.map((v, k) => `h=${hs[k]}: ${v.toExponential(4)}`).join(", ")}`);
    }
  }
}
