// Which of the bound's terms dominates its parameter gradient? (issue 12, the README's "the bound
// as the feature" paragraph.) For a few inputs, the gradient of each of the bound's terms on its
// own (T.grad per term): the decoder -log p(x_0|x_1), each stratum's weighted KL term, and the
// prior KL (which has no parameters: its gradient is zero), with the very draws the OOD features
// use (noise from the feature pipeline's generator, the strata's steps fixed by nll()'s seed).
// Prints, per term, its share of each layer's ||g_l||^2 (the sum of the terms' squared norms, and
// the bound's own ||g_l||^2 beside it: they differ by the cross terms) and how often it is the
// largest.
//
//   nice -n 10 deno run -A scripts/elbo_terms.ts [--model weights/diffusion-fashion.safetensors] [--n 4] [--sets fashion,mnist] [--backend wasm] [--json out.json]
import * as T from "../src/autograd/index.ts";
import { parseArgs } from "node:util";
import { subset } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { selectBackend, type BackendChoice } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { Diffusion } from "../src/models/diffusion.ts";
import { inputNoise } from "../src/ood/loop.ts";

const opt = (d?: string) => ({ type: "string" as const, default: d });
const { values: args } = parseArgs({ args: Deno.args, options: { model: opt("weights/diffusion-fashion.safetensors"), n: opt("4"), sets: opt("fashion,mnist"), backend: opt("wasm"), json: opt(), seed: opt("0") } });
const n = Number(args.n), seed = Number(args.seed);
if (!(Number.isInteger(n) && n >= 1)) throw new Error(`--n '${args.n}': expected an integer >= 1`);
const backend = await selectBackend(args.backend as BackendChoice);
const loaded = await loadModel(args.model!, backend);
if (!(loaded instanceof Diffusion)) throw new Error(`--model ${args.model}: a diffusion model is needed`);
const model: Diffusion = loaded;
// The bound with its K + 1 draws per input, each input's from its pixels and --seed (as the features' loop draws them).
const bound = model.objective("elbo");
const ops = model.ops, K = model.cfg.strata, img = model.cfg.image;
const named = model.namedParameters();
const params = named.map(([, p]) => p);
// The steps nll() uses for the features (no generator given, noise given): one seeded step per stratum.
const steps = ops.drawSteps(1, K, new T.Generator(12345), true).map((t) => t[0]);
const termNames = ["decoder", ...steps.map((t, k) => { const [lo, hi] = model.process.stratum(k, K); return `kl[${lo},${hi}) t=${t}`; }), "prior"];
console.log(`backend ${backend.name}; ${named.length} parameter tensors; the strata's steps: ${steps.join(", ")}`);

/** Per term (decoder, strata, prior) and layer: squared gradient norm; also the bound's own per layer, and the terms' values. */
function termNorms(x: T.Tensor, noise: T.Tensor): { sq: number[][]; full: number[]; value: number[]; check: number } {
  const slot = (k: number) => T.reshape(T.slice(noise, [0, k], [1, k + 1]), [1, ...img]);
  const terms: T.Tensor[] = [T.sum(ops.decoderNll(x, slot(0)))];
  steps.forEach((t, k) => {
    const [lo, hi] = model.process.stratum(k, K);
    terms.push(T.mul(T.sum(ops.klTerm(x, [t], slot(k + 1))), hi - lo));
  });
  const prior = T.sum(ops.priorKL(x));
  const sq = terms.map((term) => T.grad(term, params).map((g) => g ? T.sumSquares(g).dataSync()[0] : 0));
  sq.push(params.map(() => 0)); // the prior KL has no parameters
  const value = [...terms, prior].map((v) => v.dataSync()[0]);
  // The bound as the features see it (model.nll: one network call on all slots): its per-layer norms, and its value against the terms' sum.
  const total = T.sum(bound.value(x, noise));
  const full = T.grad(total, params).map((g) => g ? T.sumSquares(g).dataSync()[0] : 0);
  const check = Math.abs(total.dataSync()[0] - value.reduce((s, v) => s + v, 0)) / Math.abs(total.dataSync()[0]);
  return { sq, full, value, check };
}

const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const out: Record<string, unknown> = { model: args.model, steps, terms: termNames, layers: named.map(([nm]) => nm), sets: {} };
for (const name of args.sets!.split(",")) {
  const test = loadDataset(name, "test");
  // The ood job's sets: the in-distribution evaluation half of a seeded permutation; another dataset's first images of its permutation.
  const idx = name === "fashion" ? new T.Generator(1000 + seed).permutation(test.n).subarray(test.n / 2, test.n / 2 + n) : new T.Generator(3000 + seed).permutation(test.n).subarray(0, n);
  const set = subset(test, idx, name);
  const perInput: ReturnType<typeof termNorms>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    perInput.push(T.tidy(() => {
      const x = model.input(set, [i]);
      const noise = inputNoise(model, bound, set, [i], seed)!;
      return termNorms(x, noise);
    }));
  }
  const secs = (performance.now() - t0) / 1000;
  const L = named.length, Kt = termNames.length;
  // share[k][l] per input: term k's ||g_lk||^2 over sum_k ||g_lk||^2; then medians over inputs.
  const shares = perInput.map((r) => termNames.map((_, k) => named.map((_, l) => r.sq[k][l] / r.sq.reduce((s, row) => s + row[l], 0))));
  const wins = termNames.map(() => 0);
  for (const s of shares) for (let l = 0; l < L; l++) { let b = 0; for (let k = 1; k < Kt; k++) if (s[k][l] > s[b][l]) b = k; wins[b]++; }
  console.log(`\n${name}: ${n} inputs, ${secs.toFixed(1)} s; |bound - sum of terms| / |bound| at most ${Math.max(...perInput.map((r) => r.check)).toExponential(1)}`);
  console.log(`term | value (nats, median) | share of ||g_l||^2: median over layers and inputs | min | max | layers where largest (of ${L * n})`);
  for (let k = 0; k < Kt; k++) {
    const all = shares.flatMap((s) => s[k]);
    console.log(`${termNames[k]} | ${median(perInput.map((r) => r.value[k])).toFixed(2)} | ${median(all).toFixed(4)} | ${Math.min(...all).toFixed(4)} | ${Math.max(...all).toFixed(4)} | ${wins[k]}`);
  }
  // The cross terms: the bound's own ||g_l||^2 against the sum of the terms' (1 = orthogonal terms).
  const ratio = perInput.flatMap((r) => r.full.map((f, l) => f / r.sq.reduce((s, row) => s + row[l], 0)));
  console.log(`||g_l||^2 of the bound / sum over terms of ||g_lk||^2: median ${median(ratio).toFixed(3)}, min ${Math.min(...ratio).toFixed(3)}, max ${Math.max(...ratio).toFixed(3)}`);
  // Per layer (input-median share of the top two terms), the ten layers with the largest bound gradient.
  const byLayer = named.map(([nm], l) => ({ nm, full: median(perInput.map((r) => r.full[l])), sh: termNames.map((_, k) => median(shares.map((s) => s[k][l]))) }));
  console.log("largest layers (median ||g_l||^2 of the bound): the two largest terms' median shares");
  for (const b of [...byLayer].sort((p, q) => q.full - p.full).slice(0, 10)) {
    const top = b.sh.map((v, k) => [v, k]).sort((p, q) => q[0] - p[0]).slice(0, 2);
    console.log(`  ${b.nm}: ${b.full.toExponential(2)}; ${top.map(([v, k]) => `${termNames[k]} ${v.toFixed(3)}`).join(", ")}`);
  }
  (out.sets as Record<string, unknown>)[name] = { n, seconds: secs, perInput: perInput.map((r) => ({ sq: r.sq, full: r.full, value: r.value })) };
}
if (args.json) Deno.writeTextFileSync(args.json, JSON.stringify(out));
Deno.exit(0);
