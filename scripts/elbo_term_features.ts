// AUROC of the gradient method (the diagonal Gaussian over per-layer log squared norms) on features
// built from the diffusion bound's terms, FashionMNIST (fit on the first half of the seeded test
// permutation, evaluate on the second) vs MNIST, at B = 1 and B = 5, with the draws of the `ood`
// job (noise from its per-set generator, the strata's steps fixed by nll()'s seed). From one set of
// per-input, per-term gradients (T.grad of each term; the prior KL has none), the variants:
//   bound         ||sum_k g_lk||^2 per layer l (what `--diffusion-score elbo` computes)
//   nolast        the same without the t = T term (`--diffusion-score elbo-nolast`)
//   blocks        ||g_lk||^2 per term k and layer l, as separate features (terms x layers)
//   blocks-nolast the blocks without the t = T term's
//   <term>        one term's ||g_lk||^2 alone
// A group's gradient is the sum of its inputs'. An analysis, not a CLI option: the per-term blocks
// would need one per-group pass per term in the feature pipeline.
//
//   nice -n 10 deno run -A scripts/elbo_term_features.ts [--n 100] [--model weights/diffusion-fashion.safetensors] [--backend wasm] [--json out.json]
import * as T from "../src/autograd/index.ts";
import { parseArgs } from "node:util";
import { type ImageSet, subset } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { type BackendChoice, selectBackend } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { Diffusion } from "../src/models/diffusion.ts";
import { DiagonalGaussian } from "../src/ood/density.ts";
import { inputNoise } from "../src/ood/loop.ts";
import { allMetrics } from "../src/ood/metrics.ts";

const opt = (d?: string) => ({ type: "string" as const, default: d });
const { values: args } = parseArgs({ args: Deno.args, options: { model: opt("weights/diffusion-fashion.safetensors"), n: opt("100"), backend: opt("wasm"), json: opt(), seed: opt("0") } });
const n = Number(args.n), seed = Number(args.seed);
if (!(Number.isInteger(n) && n >= 10 && n % 5 === 0)) throw new Error(`--n '${args.n}': expected a multiple of 5, at least 10`);
const backend = await selectBackend(args.backend as BackendChoice);
const loaded = await loadModel(args.model!, backend);
if (!(loaded instanceof Diffusion)) throw new Error(`--model ${args.model}: a diffusion model is needed`);
const model: Diffusion = loaded;
// The bound with its K + 1 draws per input, each input's from its pixels and --seed (as the features' loop draws them).
const bound = model.objective("elbo");
const ops = model.ops, K = model.cfg.strata, img = model.cfg.image;
const params = model.namedParameters().map(([, p]) => p);
const L = params.length;
const steps = ops.drawSteps(1, K, new T.Generator(12345), true).map((t) => t[0]);
const termNames = ["decoder", ...steps.map((t) => `kl t=${t}`)];
const Kt = termNames.length, LAST = Kt - 1; // the t = T stratum's term

/** Per-term parameter gradients of one input, flattened per layer on the host: [term][layer]. */
function termGrads(x: T.Tensor, noise: T.Tensor): Float32Array[][] {
  const slot = (k: number) => T.reshape(T.slice(noise, [0, k], [1, k + 1]), [1, ...img]);
  const terms: T.Tensor[] = [T.sum(ops.decoderNll(x, slot(0)))];
  steps.forEach((t, k) => {
    const [lo, hi] = model.process.stratum(k, K);
    terms.push(T.mul(T.sum(ops.klTerm(x, [t], slot(k + 1))), hi - lo));
  });
  return terms.map((term) => T.grad(term, params).map((g, l) => g ? Float32Array.from(g.dataSync()) : new Float32Array(params[l].size)));
}

type Variant = { name: string; feats: (g: Float32Array[][]) => number[] };
const sq = (a: Float32Array) => { let s = 0; for (const v of a) s += v * v; return s; };
const sqOfSum = (g: Float32Array[][], l: number, ks: number[]) => {
  const a = g[ks[0]][l];
  let s = 0;
  for (let j = 0; j < a.length; j++) { let v = 0; for (const k of ks) v += g[k][l][j]; s += v * v; }
  return s;
};
const all = [...Array(Kt).keys()], noLast = all.filter((k) => k !== LAST);
const variants: Variant[] = [
  { name: "bound", feats: (g) => params.map((_, l) => sqOfSum(g, l, all)) },
  { name: "nolast", feats: (g) => params.map((_, l) => sqOfSum(g, l, noLast)) },
  { name: "blocks", feats: (g) => all.flatMap((k) => params.map((_, l) => sq(g[k][l]))) },
  { name: "blocks-nolast", feats: (g) => noLast.flatMap((k) => params.map((_, l) => sq(g[k][l]))) },
  ...all.map((k) => ({ name: termNames[k], feats: (g: Float32Array[][]) => params.map((_, l) => sq(g[k][l])) })),
];

/** log features per variant for B = 1 and B = 5 groups of a set. */
function setFeatures(set: ImageSet): Record<number, number[][][]> {
  const out: Record<number, number[][][]> = { 1: variants.map(() => []), 5: variants.map(() => []) };
  let group: Float32Array[][] | null = null;
  for (let i = 0; i < set.n; i++) {
    const g = T.tidy(() => termGrads(model.input(set, [i]), inputNoise(model, bound, set, [i], seed)!));
    variants.forEach((v, j) => out[1][j].push(v.feats(g).map(Math.log)));
    if (!group) group = g;
    else group.forEach((row, k) => row.forEach((a, l) => { const b = g[k][l]; for (let j = 0; j < a.length; j++) a[j] += b[j]; }));
    if (i % 5 === 4) {
      variants.forEach((v, j) => out[5][j].push(v.feats(group!).map(Math.log)));
      group = null;
    }
  }
  return out;
}

const fashion = loadDataset("fashion", "test"), mnist = loadDataset("mnist", "test");
const perm = new T.Generator(1000 + seed).permutation(fashion.n), half = fashion.n / 2;
const t0 = performance.now();
const fit = setFeatures(subset(fashion, perm.subarray(0, n), "fit"));
const inEval = setFeatures(subset(fashion, perm.subarray(half, half + n), "fashion"));
const ood = setFeatures(subset(mnist, new T.Generator(3000 + seed).permutation(mnist.n).subarray(0, n), "mnist"));
const secs = (performance.now() - t0) / 1000;
console.log(`backend ${backend.name}; ${n} fit, ${n} evaluation (FashionMNIST) and ${n} MNIST inputs; ${Kt} terms x ${L} layers; ${secs.toFixed(0)} s`);
const rows: Record<string, unknown>[] = [];
console.log("variant | features | AUROC B=1 [95% CI] | AUROC B=5 [95% CI]");
variants.forEach((v, j) => {
  const cells = [1, 5].map((B) => {
    const d = new DiagonalGaussian(fit[B][j], fit[B][j][0].length);
    const m = allMetrics(inEval[B][j].map((r) => d.score(r)), ood[B][j].map((r) => d.score(r)), seed);
    return m;
  });
  rows.push({ variant: v.name, features: fit[1][j][0].length, B1: cells[0], B5: cells[1] });
  console.log(`${v.name} | ${fit[1][j][0].length} | ${cells.map((m) => `${m.auroc.toFixed(3)} [${m.aurocCI.map((c) => c.toFixed(3)).join(", ")}]`).join(" | ")}`);
});
if (args.json) Deno.writeTextFileSync(args.json, JSON.stringify({ model: args.model, n, steps, seconds: secs, rows }));
Deno.exit(0);
