// The diffusion model: the U-Net's gradients against float64 central differences, the schedule and
// the eps-loss against plain float64 computations, training lowers the loss; the bound's parts
// (KL terms, decoder, prior) against closed forms, the whole bound on a data distribution whose
// NLL is known (two images, exact denoiser), the stratified estimator's mean; samplers.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { makeSet, range } from "../src/data/dataset.ts";
import { betaSchedule, Diffusion, DiffusionOps, Process, resolveConfig } from "../src/models/diffusion.ts";
import { train } from "../src/models/train.ts";
import type { UnetConfig } from "../src/models/unet.ts";
import { gen, rand64 } from "./helpers.ts";

const S = suite("diffusion");
const f64 = { backend: T.cpu, dtype: "float64" as const };
const tinyUnet: UnetConfig = { image: [1, 4, 4], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 2 };

/** A tiny model in float64 with every parameter perturbed (zero-initialised layers would hide gradients). */
function tinyModel(seed = 1, steps = 50) {
  const m = new Diffusion(resolveConfig({ unet: tinyUnet, steps, strata: 4 }), { ...f64, gen: gen(seed) });
  m.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(gen(100 + i), [...p.shape], { ...f64, std: 0.2 }))));
  return m;
}

/** Central differences of loss() at a few entries of a tensor, by assigning perturbed values. */
function fdEntries(p: T.Tensor, loss: () => number, picks: number[], eps = 1e-6): number[] {
  const base = Float64Array.from(p.dataSync());
  return picks.map((i) => {
    const at = (v: number) => {
      const d = base.slice();
      d[i] = v;
      p.assign(T.tensor(d, [...p.shape], f64));
      return loss();
    };
    const num = (at(base[i] + eps) - at(base[i] - eps)) / (2 * eps);
    p.assign(T.tensor(base, [...p.shape], f64));
    return num;
  });
}

S("U-Net eps-loss: gradients w.r.t. every parameter tensor and the input vs central differences (float64)", () => {
  const m = tinyModel();
  const x = rand64(3, [2, 1, 4, 4]);
  const noise = T.randn(gen(4), [2, 1, 4, 4], f64);
  const t = [3, 41];
  const xl = T.tensor(x.dataSync(), x.shape, { ...f64, requiresGrad: true });
  const lossT = (xx: T.Tensor) => T.sum(m.ops.epsLoss(xx, t, noise, "l2"));
  const named = m.namedParameters();
  const grads = T.grad(lossT(xl), [xl, ...named.map(([, p]) => p)]);
  const lossN = () => T.noGrad(() => lossT(x).dataSync()[0]);
  let worst = 0;
  for (const [k, [name, p]] of named.entries()) {
    const picks = [0, Math.floor(p.size / 2), p.size - 1];
    const num = fdEntries(p, lossN, picks);
    const an = grads[k + 1]!.dataSync();
    picks.forEach((i, j) => {
      const e = Math.abs(num[j] - an[i]) / Math.max(1, Math.abs(num[j]));
      worst = Math.max(worst, e);
      assert.ok(e < 1e-6, `${name}[${i}]: analytic ${an[i]}, numeric ${num[j]}`);
    });
  }
  const numX = fdEntries(x, lossN, [0, 7, 31]);
  [0, 7, 31].forEach((i, j) => assert.ok(Math.abs(numX[j] - grads[0]!.dataSync()[i]) < 1e-6, `input[${i}]`));
  assert.ok(worst < 1e-6);
});

S("beta schedules: the sigmoid default against its formula, linear endpoints, cosine bounds", () => {
  const b = betaSchedule("sigmoid", 1000);
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const abar = (u: number) => (sig(3) - sig(6 * u - 3)) / (sig(3) - sig(-3));
  for (const i of [1, 2, 500, 999]) assert.ok(Math.abs(b[i - 1] - (1 - abar(i / 1000) / abar((i - 1) / 1000))) < 1e-15, `beta_${i}`);
  assert.is(b[999], 0.999); // abar(1) = 0, clipped
  assert.ok(b.every((v, i) => v > 0 && v <= 0.999 && (i === 0 || v >= b[i - 1] - 1e-12)), "betas in (0, 0.999], increasing");
  const l = betaSchedule("linear", 1000);
  assert.ok(Math.abs(l[0] - 1e-4) < 1e-15 && Math.abs(l[999] - 0.02) < 1e-15);
  const c = betaSchedule("cosine", 1000);
  assert.ok(c.every((v) => v >= 0 && v <= 0.999));
  assert.throws(() => betaSchedule("quadratic" as "linear", 10), /unknown schedule/);
  const p = new Process("sigmoid", 1000);
  let a = 1;
  for (let i = 0; i < 1000; i++) {
    a *= 1 - b[i];
    assert.ok(Math.abs(p.abar[i] - a) < 1e-15);
  }
});

S("q_sample and the eps-loss against plain float64 loops (l1 and l2)", () => {
  const p = new Process("sigmoid", 1000);
  const eps = (x: T.Tensor) => T.mul(x, 0.3); // a stand-in predictor
  const ops = new DiffusionOps(p, eps);
  const x0 = rand64(10, [2, 1, 2, 3]), noise = rand64(11, [2, 1, 2, 3]);
  const t = [1, 700];
  const xs = x0.dataSync(), ns = noise.dataSync();
  for (const kind of ["l1", "l2"] as const) {
    const got = ops.epsLoss(x0, t, noise, kind).dataSync();
    for (let i = 0; i < 2; i++) {
      const a = p.abar[t[i] - 1];
      let s = 0;
      for (let k = 0; k < 6; k++) {
        const xt = Math.sqrt(a) * xs[i * 6 + k] + Math.sqrt(1 - a) * ns[i * 6 + k];
        const e = 0.3 * xt - ns[i * 6 + k];
        s += kind === "l1" ? Math.abs(e) : e * e;
      }
      assert.ok(Math.abs(got[i] - s / 6) < 1e-14, `${kind} image ${i}: ${got[i]} vs ${s / 6}`);
    }
  }
});

S("training the tiny U-Net lowers the eps-loss (cpu backend, float32)", async () => {
  // 8x8 images: a bright square at one of four places, so the data have structure to learn.
  const n = 64, imgs = new Uint8Array(n * 64);
  for (let i = 0; i < n; i++) {
    const oy = (i % 2) * 4, ox = (Math.floor(i / 2) % 2) * 4;
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) imgs[i * 64 + (oy + y) * 8 + ox + x] = 255;
  }
  const data = makeSet("squares", imgs, new Uint8Array(n), 1, 8, 8);
  const m = new Diffusion(resolveConfig({ unet: { image: [1, 8, 8], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 4 }, steps: 100 }), { backend: T.cpu, gen: gen(2) });
  const lossOn = () => T.tidy(() => T.noGrad(() => {
    let s = 0;
    for (let r = 0; r < 4; r++) s += T.mean(m.trainingLoss(m.input(data, range(0, n)), gen(77 + r))).dataSync()[0];
    return s / 4;
  }));
  const before = lossOn();
  const tmp = Deno.makeTempDirSync();
  await train(m, data, {
    steps: 60, batch: 16, lr: 3e-3, seed: 1, optimizer: "adam", clip: 1, warmup: 1, checkpointEvery: 1000,
    checkpointPath: `${tmp}/d.safetensors`, data: "squares", quiet: true,
  });
  const after = lossOn();
  Deno.removeSync(tmp, { recursive: true });
  assert.ok(after < before * 0.8, `eps-loss ${before.toFixed(3)} -> ${after.toFixed(3)}`);
});

S.run();
