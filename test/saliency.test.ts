// Input saliency by double backprop against float64 central differences of the same objective
// (log f_l of one layer, and the diagonal Gaussian's score) on a small Glow, a small VAE and a tiny
// diffusion U-Net (its eps-loss features with the per-input noise draw held fixed).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { drawsOf } from "./helpers.ts";
import { Glow } from "../src/models/glow.ts";
import { DiagonalGaussian } from "../src/ood/density.ts";
import { overlayRgb, saliency, type SaliencyTarget, saliencyPng } from "../src/ood/saliency.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { decode } from "fast-png";

const S = suite("saliency");
const f64 = { backend: T.cpu, dtype: "float64" as const };

function perturb(m: GenerativeModel, seed: number) {
  m.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(new T.Generator(seed + i), [...p.shape], { ...f64, std: 0.1 }))));
  m.eval();
}

async function check(m: GenerativeModel, x: T.Tensor, target: SaliencyTarget, pixels: number[], noise?: T.Tensor, eps = 1e-5, objective = m.objective()) {
  const { grad } = await saliency(m, objective, x, target, noise);
  const base = x.dataSync();
  let worst = 0, biggest = 0;
  for (const i of pixels) {
    const at = async (d: number) => {
      const v = Float64Array.from(base);
      v[i] += d;
      return (await saliency(m, objective, T.tensor(v, x.shape, f64), target, noise)).value;
    };
    const num = (await at(eps) - await at(-eps)) / (2 * eps);
    worst = Math.max(worst, Math.abs(num - grad[i]) / Math.max(1e-3, Math.abs(num)));
    biggest = Math.max(biggest, Math.abs(num));
  }
  assert.ok(biggest > 1e-3, "the objective depends on the pixels checked");
  return worst;
}

S("Glow: d log f_l / dx and d score / dx match central differences", async () => {
  const m = new Glow({ levels: 1, steps: 1, hidden: 3, image: [1, 4, 4] }, { ...f64, gen: new T.Generator(1) });
  m.initialize(T.rand(new T.Generator(2), [8, 1, 4, 4], { ...f64, low: -0.5, high: 0.5 }));
  perturb(m, 10);
  const x = T.rand(new T.Generator(3), [1, 1, 4, 4], { ...f64, low: -0.5, high: 0.5 });
  const names = m.namedParameters().map(([n]) => n);
  const all = [...Array(16).keys()];
  for (const name of ["steps.0.coupling.conv1.weight", "steps.0.invconv.lower", "steps.0.actnorm.logs"]) {
    const layer = names.findIndex((n) => n.endsWith(name));
    assert.ok(layer >= 0, `${name} in ${names}`);
    const err = await check(m, x, { kind: "layer", layer }, all);
    assert.ok(err < 1e-5, `${name}: relative error ${err}`);
  }
  // The detector's score: a diagonal Gaussian with arbitrary means and variances over every layer.
  const L = names.length;
  const density = { mean: Float64Array.from({ length: L }, (_, l) => -2 + 0.1 * l), variance: Float64Array.from({ length: L }, (_, l) => 0.5 + 0.05 * l), kept: [...Array(L).keys()] };
  const err = await check(m, x, { kind: "score", density, floor: new Float64Array(L).fill(-1e9) }, all);
  assert.ok(err < 1e-5, `score: relative error ${err}`);
});

S("VAE (fixed noise): d score / dx matches central differences on sampled pixels", async () => {
  const { VAE, VAE_DEFAULT } = await import("../src/models/vae.ts");
  const m = new VAE({ ...VAE_DEFAULT, latent: 2, channels: [2, 2], outChannels: 2 }, { ...f64, gen: new T.Generator(4) });
  perturb(m, 30);
  const x = T.rand(new T.Generator(5), [1, 1, 28, 28], { ...f64, low: -1, high: 1 });
  const noise = drawsOf(m, m.objective(), 1, new T.Generator(6));
  const noise64 = noise && T.tensor(Float64Array.from(noise.dataSync()), noise.shape, f64);
  const rows = Array.from({ length: 5 }, (_, i) => Float64Array.from({ length: m.namedParameters().length }, (_, l) => -1 + 0.3 * ((i * 7 + l) % 5)));
  const density = new DiagonalGaussian(rows, m.namedParameters().length);
  const g = new T.Generator(7);
  const pixels = Array.from({ length: 12 }, () => g.int(784));
  const err = await check(m, x, { kind: "score", density, floor: new Float64Array(density.mean.length).fill(-1e9) }, pixels, noise64, 1e-5);
  assert.ok(err < 1e-4, `relative error ${err}`);
});

S("diffusion (tiny U-Net, fixed per-input noise): d log f_l / dx and d score / dx match central differences", async () => {
  const { Diffusion, diffusionConfig } = await import("../src/models/diffusion.ts");
  const m = new Diffusion(diffusionConfig({ image: [1, 4, 4], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 2, steps: 50, strata: 4 }), { ...f64, gen: new T.Generator(40) });
  perturb(m, 50);
  const x = T.rand(new T.Generator(41), [1, 1, 4, 4], { ...f64, low: -1, high: 1 });
  const names = m.namedParameters().map(([n]) => n), L = names.length;
  const all = [...Array(16).keys()];
  // The detector's feature (the paper's L1 eps-loss at t = 1) and the L2 loss at a later step, each
  // with its one noise draw per input, held fixed under the perturbation.
  for (const score of [{ t: 1, loss: "l1" as const }, { t: 20, loss: "l2" as const }]) {
    const objective = m.objective(`${score.loss}-t${score.t}`);
    const noise = drawsOf(m, objective, 1, new T.Generator(42))!;
    const noise64 = T.tensor(Float64Array.from(noise.dataSync()), noise.shape, f64);
    for (const name of ["unet.in.weight", "unet.mid.attn.qkv.weight", "unet.down.0.0.norm1.weight"]) {
      const layer = names.indexOf(name);
      assert.ok(layer >= 0, `${name} in ${names}`);
      const err = await check(m, x, { kind: "layer", layer }, all, noise64, 1e-5, objective);
      assert.ok(err < 1e-5, `${score.loss} t=${score.t} ${name}: relative error ${err}`);
    }
    const density = { mean: Float64Array.from({ length: L }, (_, l) => -3 + 0.05 * l), variance: Float64Array.from({ length: L }, (_, l) => 0.4 + 0.02 * l), kept: [...Array(L).keys()] };
    const err = await check(m, x, { kind: "score", density, floor: new Float64Array(L).fill(-1e9) }, all, noise64, 1e-5, objective);
    assert.ok(err < 1e-5, `${score.loss} t=${score.t} score: relative error ${err}`);
  }
});

S("overlay: red where the saliency is, the image elsewhere; the PNG decodes to the grid", () => {
  const img = new Uint8Array(16).fill(100), grad = new Float64Array(16);
  grad[5] = 3;
  const o = overlayRgb(img, grad, 1, 4, 4);
  assert.equal([o[5], o[16 + 5], o[32 + 5]], [255, 40, 0]);
  assert.equal([o[0], o[16], o[32]], [60, 60, 60]);
  const png = decode(saliencyPng([[{ image: img, grad }], [{ image: img, grad }, { image: img, grad }]], 1, 4, 4));
  assert.equal([png.width, png.height, png.channels], [4 * (4 + 2) + 2, 2 * (4 + 2) + 2, 3]);
});

S.run();
