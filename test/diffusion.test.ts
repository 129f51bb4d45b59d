// The diffusion model: the U-Net's gradients against float64 central differences, the schedule and
// the eps-loss against plain float64 computations, training lowers the loss; the bound's parts
// (KL terms, decoder, prior) against closed forms, the whole bound on a data distribution whose
// NLL is known (two images, exact denoiser), the stratified estimator's mean; samplers.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { makeSet, range } from "../src/data/dataset.ts";
import { Diffusion, diffusionConfig } from "../src/models/diffusion.ts";
import { approxNormalCdf, betaSchedule, discretizedGaussianLogProb, DiffusionOps, gaussianKL, Process } from "../src/models/diffusion_process.ts";
import type { UnetConfig } from "../src/models/unet.ts";
import { featuresBatched, featuresLoop } from "../src/ood/features.ts";
import { saveTensors } from "../src/io/safetensors.ts";
import { metadataOf, train } from "../src/models/train.ts";
import { gen, rand64, webgpu, drawsOf } from "./helpers.ts";

const S = suite("diffusion");
const f64 = { backend: T.cpu, dtype: "float64" as const };
const tinyUnet: UnetConfig = { image: [1, 4, 4], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 2 };

/** A tiny model in float64 with every parameter perturbed (zero-initialised layers would hide gradients). */
function tinyModel(seed = 1, steps = 50) {
  const m = new Diffusion(diffusionConfig({ ...tinyUnet, steps, strata: 4 }), { ...f64, gen: gen(seed) });
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

S("the bound's gradient w.r.t. parameters vs central differences (float64; decoder, KL and prior terms)", () => {
  const m = tinyModel(8);
  // Inputs on pixel levels, edge levels included (the decoder's tail branches).
  const levels = [0, 255, 128, 3, 250, 77, 180, 0, 255, 64, 10, 200, 90, 140, 33, 255];
  const x = T.tensor([...levels, ...levels.reverse()].map((v) => (2 * v) / 255 - 1), [2, 1, 4, 4], f64);
  const noise = T.randn(gen(70), m.noiseShape(2), f64);
  const loss = () => T.sum(m.nll(x, { noise }));
  const named = m.namedParameters();
  const grads = T.grad(loss(), named.map(([, p]) => p));
  const lossN = () => T.noGrad(() => loss().dataSync()[0]);
  for (const k of [0, 5, Math.floor(named.length / 2), named.length - 2, named.length - 1]) {
    const [name, p] = named[k];
    const picks = [0, p.size - 1];
    const num = fdEntries(p, lossN, picks, 1e-5);
    const an = grads[k]!.dataSync();
    picks.forEach((i, j) => assert.ok(Math.abs(num[j] - an[i]) < 1e-5 * Math.max(1, Math.abs(num[j])), `${name}[${i}]: analytic ${an[i]}, numeric ${num[j]}`));
  }
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
  const m = new Diffusion(diffusionConfig({ image: [1, 8, 8], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 4, steps: 100 }), { backend: T.cpu, gen: gen(2) });
  const lossOn = () => T.tidy(() => T.noGrad(() => {
    let s = 0;
    for (let r = 0; r < 4; r++) s += T.mean(m.trainingLoss(m.input(data, range(0, n)), gen(77 + r))).dataSync()[0];
    return s / 4;
  }));
  const before = lossOn();
  const tmp = Deno.makeTempDirSync();
  await train(m, data, {
    steps: 60, batch: 16, lr: 3e-3, seed: 1, optimizer: "adam", clip: 1, warmup: 1, checkpointEvery: 1000,
    checkpointPath: `${tmp}/d.safetensors`, data: "squares",
  });
  const after = lossOn();
  Deno.removeSync(tmp, { recursive: true });
  assert.ok(after < before * 0.8, `eps-loss ${before.toFixed(3)} -> ${after.toFixed(3)}`);
});


// ---- the bound ----

const klClosed = (m1: number, v1: number, m2: number, v2: number) => 0.5 * (Math.log(v2 / v1) + v1 / v2 + (m1 - m2) ** 2 / v2 - 1);

/** erf to ~1e-16 by its Taylor series (|x| < 3) or the continued fraction of erfc (beyond). */
function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (a + f);
  return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f));
}

S("Gaussian KL, the posterior q(x_{t-1}|x_t,x_0) and the prior term against closed forms (float64)", () => {
  const m1 = rand64(20, [5]), m2 = rand64(21, [5]), l1 = rand64(22, [5], -3, 1), l2 = rand64(23, [5], -3, 1);
  const kl = gaussianKL(m1, l1, m2, l2).dataSync();
  const [a, b, c, d] = [m1, m2, l1, l2].map((t) => t.dataSync());
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(kl[i] - klClosed(a[i], Math.exp(c[i]), b[i], Math.exp(d[i]))) < 1e-14, `KL ${i}`);
  // The posterior by Bayes' rule: prior N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}), likelihood N(x_t; sqrt(alpha_t) x_{t-1}, beta_t).
  const p = new Process("sigmoid", 1000);
  for (const t of [2, 3, 100, 500, 999, 1000]) {
    const ap = p.abar[t - 2], al = 1 - p.betas[t - 1];
    const prec = 1 / (1 - ap) + al / p.betas[t - 1];
    const v = 1 / prec;
    assert.ok(Math.abs(p.postVar[t - 1] - v) < 1e-12 * v, `posterior variance at ${t}`);
    assert.ok(Math.abs(p.coef0[t - 1] - v * Math.sqrt(ap) / (1 - ap)) < 1e-12, `coefficient of x0 at ${t}`);
    assert.ok(Math.abs(p.coefT[t - 1] - v * Math.sqrt(al) / p.betas[t - 1]) < 1e-12, `coefficient of x_t at ${t}`);
  }
  assert.is(p.sigma2[0], p.postVar[1]);
  // The KL term for a stand-in predictor, against Bayes + the closed-form KL, and Ho et al.'s eps-weighting.
  const ops = new DiffusionOps(p, (x) => T.mul(x, 0.7));
  const x0 = rand64(24, [2, 1, 1, 3]), noise = rand64(25, [2, 1, 1, 3]), t = [2, 640];
  const got = ops.klTerm(x0, t, noise).dataSync();
  const xs = x0.dataSync(), ns = noise.dataSync();
  for (let i = 0; i < 2; i++) {
    const s = t[i], ab = p.abar[s - 1], ap = p.abar[s - 2], be = p.betas[s - 1], al = 1 - be;
    const v = 1 / (1 / (1 - ap) + al / be);
    let want = 0, viaEps = 0;
    for (let k = 0; k < 3; k++) {
      const x = xs[i * 3 + k], e = ns[i * 3 + k];
      const xt = Math.sqrt(ab) * x + Math.sqrt(1 - ab) * e;
      const post = v * (Math.sqrt(ap) * x / (1 - ap) + Math.sqrt(al) * xt / be);
      const epsHat = 0.7 * xt;
      const mu = (xt - be / Math.sqrt(1 - ab) * epsHat) / Math.sqrt(al);
      want += klClosed(post, v, mu, v);
      viaEps += (be * be) / (2 * v * al * (1 - ab)) * (e - epsHat) ** 2;
    }
    assert.ok(Math.abs(got[i] - want) < 1e-10 * Math.max(1, want), `KL term ${i}: ${got[i]} vs ${want}`);
    assert.ok(Math.abs(want - viaEps) < 1e-9 * Math.max(1, want), `eps form ${i}`);
  }
  // Prior term.
  const pr = ops.priorKL(x0).dataSync(), aT = p.abar[999];
  for (let i = 0; i < 2; i++) {
    let want = 0;
    for (let k = 0; k < 3; k++) want += klClosed(Math.sqrt(aT) * xs[i * 3 + k], 1 - aT, 0, 1);
    assert.ok(Math.abs(pr[i] - want) < 1e-13, `prior ${i}`);
  }
});

S("discretised Gaussian decoder: a probability mass function over the 256 levels; its CDF within 3e-4 of the exact one", () => {
  for (const a of [-6, -3, -1, -0.3, 0, 0.5, 2, 4]) {
    const exact = 0.5 * (1 + erf(a / Math.SQRT2));
    assert.ok(Math.abs(approxNormalCdf(a) - exact) < 3e-4, `Phi(${a}): ${approxNormalCdf(a)} vs ${exact}`);
  }
  const levels = T.tensor(Float64Array.from({ length: 256 }, (_, v) => (2 * v) / 255 - 1), [256], f64);
  for (const [mu, sigma] of [[0.1, 0.01], [-0.99, 0.05], [1.2, 0.2], [0.3, 0.002], [-0.5, 1]]) {
    const lp = discretizedGaussianLogProb(levels, T.full([256], mu, f64), T.full([1], sigma, f64)).dataSync();
    const total = Array.from(lp).reduce((s, v) => s + Math.exp(v), 0);
    assert.ok(Math.abs(total - 1) < 1e-4, `mu ${mu} sigma ${sigma}: masses sum to ${total}`);
    // An interior bin against Phi differences.
    const v = 128, x = (2 * v) / 255 - 1;
    const want = Math.log(approxNormalCdf((x + 1 / 255 - mu) / sigma) - approxNormalCdf((x - 1 / 255 - mu) / sigma));
    if (Math.exp(want) > 1e-5) assert.ok(Math.abs(lp[v] - want) < 1e-9, `bin ${v}: ${lp[v]} vs ${want}`);
  }
});

// Two equally likely 2x2 images: the exact denoiser E[eps | x_t] is known in closed form.
const IMG_A = [0, 255, 100, 30], IMG_B = [255, 0, 140, 200];
const lv = (v: number[]) => v.map((x) => (2 * x) / 255 - 1);
function exactEps(p: Process) {
  const A = lv(IMG_A), Bm = lv(IMG_B);
  return (x: T.Tensor, t: ArrayLike<number>) => {
    const B = x.shape[0], xs = x.dataSync(), out = new Float64Array(B * 4);
    for (let i = 0; i < B; i++) {
      const ab = p.abar[t[i] - 1];
      let da = 0, db = 0;
      for (let k = 0; k < 4; k++) {
        da += (xs[i * 4 + k] - Math.sqrt(ab) * A[k]) ** 2;
        db += (xs[i * 4 + k] - Math.sqrt(ab) * Bm[k]) ** 2;
      }
      const wa = 1 / (1 + Math.exp((da - db) / (2 * (1 - ab)))); // P(x0 = A | x_t)
      for (let k = 0; k < 4; k++) out[i * 4 + k] = (xs[i * 4 + k] - Math.sqrt(ab) * (wa * A[k] + (1 - wa) * Bm[k])) / Math.sqrt(1 - ab);
    }
    return T.tensor(out, [...x.shape], f64);
  };
}

/** The whole bound in plain float64 loops, every step, the same noise: [T][4] (slot 0 the decoder's). */
function boundByHand(p: Process, img: number[], noise: Float64Array | Float32Array, eps: ReturnType<typeof exactEps>): number {
  const x = lv(img), n = p.T;
  let total = 0;
  for (let k = 0; k < 4; k++) total += klClosed(Math.sqrt(p.abar[n - 1]) * x[k], 1 - p.abar[n - 1], 0, 1);
  const at = (s: number, slot: number) => {
    const ab = p.abar[s - 1];
    const xt = x.map((v, k) => Math.sqrt(ab) * v + Math.sqrt(1 - ab) * noise[slot * 4 + k]);
    const e = eps(T.tensor(xt, [1, 1, 2, 2], f64), [s]).dataSync();
    const be = p.betas[s - 1];
    return { xt, mu: xt.map((v, k) => (v - (be / Math.sqrt(1 - ab)) * e[k]) / Math.sqrt(1 - be)) };
  };
  const d = at(1, 0), sd = Math.sqrt(p.postVar[1]);
  for (let k = 0; k < 4; k++) {
    const lo = x[k] < -0.999 ? 0 : approxNormalCdf((x[k] - 1 / 255 - d.mu[k]) / sd);
    const hi = x[k] > 0.999 ? 1 : approxNormalCdf((x[k] + 1 / 255 - d.mu[k]) / sd);
    total -= Math.log(hi - lo);
  }
  for (let s = 2; s <= n; s++) {
    const { xt, mu } = at(s, s - 1);
    const ap = p.abar[s - 2], be = p.betas[s - 1], al = 1 - be;
    const v = 1 / (1 / (1 - ap) + al / be);
    for (let k = 0; k < 4; k++) total += klClosed(v * (Math.sqrt(ap) * x[k] / (1 - ap) + Math.sqrt(al) * xt[k] / be), v, mu[k], v);
  }
  return total;
}

S("the whole bound on a known two-image distribution: equals a plain float64 computation; averages above the true NLL log 2; the stratified estimate is unbiased", () => {
  const p = new Process("sigmoid", 1000);
  const eps = exactEps(p);
  const ops = new DiffusionOps(p, eps);
  const x = T.tensor([...lv(IMG_A), ...lv(IMG_B)], [2, 1, 2, 2], f64);
  const K = p.T - 1;
  const noise = T.randn(gen(30), [2, K + 1, 1, 2, 2], f64);
  const ts = [...Array(K).keys()].map((k) => [k + 2, k + 2]);
  const exact = ops.elbo(x, ts, noise).total.dataSync();
  const nd = noise.dataSync();
  const byHand = [IMG_A, IMG_B].map((img, i) => boundByHand(p, img, nd.subarray(i * (K + 1) * 4, (i + 1) * (K + 1) * 4), eps));
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(exact[i] - byHand[i]) < 1e-9 * byHand[i], `image ${i}: ${exact[i]} vs ${byHand[i]}`);
  assert.ok((exact[0] + exact[1]) / 2 >= Math.LN2, `mean bound ${(exact[0] + exact[1]) / 2} below the data entropy log 2`);
  // Stratified (K = 10, 60 draws) against every step (4 noise draws): the same expectation.
  const R = 60, strata = 10;
  const xa = T.tensor(Array.from({ length: R }, () => lv(IMG_A)).flat(), [R, 1, 2, 2], f64);
  const est = ops.elbo(xa, ops.drawSteps(R, strata, gen(31)), T.randn(gen(32), [R, strata + 1, 1, 2, 2], f64)).total.dataSync();
  const full = [0, 1, 2, 3].map((r) => ops.elbo(T.slice(xa, [0], [1]), ts.map((s) => [s[0]]), T.randn(gen(40 + r), [1, K + 1, 1, 2, 2], f64)).total.dataSync()[0]);
  const mean = (v: ArrayLike<number>) => Array.from(v).reduce((s, a) => s + a, 0) / v.length;
  const se = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, a) => s + (a - mean(v)) ** 2, 0) / (v.length - 1) / v.length);
  const gap = Math.abs(mean(est) - mean(full)), tol = 4 * Math.hypot(se(est), se(full));
  assert.ok(gap < tol, `stratified mean ${mean(est).toFixed(4)} vs full ${mean(full).toFixed(4)} (4 SE = ${tol.toFixed(4)})`);
  assert.throws(() => ops.elbo(xa, [[1]], T.randn(gen(1), [R, 2, 1, 2, 2], f64)), /outside stratum/);
});

S("samplers with the exact denoiser of the two-image distribution draw those two images (DDPM and DDIM)", () => {
  const p = new Process("sigmoid", 1000);
  const ops = new DiffusionOps(p, exactEps(p));
  const toLevels = (x: T.Tensor) => Array.from(x.dataSync(), (v) => Math.round((Math.min(1, Math.max(-1, v)) + 1) * 127.5));
  for (const [name, x] of [["ddpm", ops.ddpm([20, 1, 2, 2], gen(60), f64)], ["ddim", ops.ddim([20, 1, 2, 2], gen(61), 50, f64)]] as const) {
    const lv = toLevels(x);
    let a = 0, b = 0;
    for (let i = 0; i < 20; i++) {
      const img = lv.slice(i * 4, i * 4 + 4);
      const near = (ref: number[]) => img.every((v, k) => Math.abs(v - ref[k]) <= 1);
      if (near(IMG_A)) a++;
      else if (near(IMG_B)) b++;
      else assert.unreachable(`${name} sample ${i}: ${img} is neither image`);
    }
    assert.ok(a > 0 && b > 0, `${name}: ${a} of A, ${b} of B`);
  }
});

S("objectives: per-input draws, so a batch gives each input what it gets alone (bound, bound without t = T, eps-loss)", () => {
  const m = tinyModel(5);
  const x = rand64(50, [3, 1, 4, 4]);
  for (const name of ["elbo", "elbo-nolast", "l1-t1", "l2-t7"]) {
    const o = m.objective(name);
    const noise = T.randn(gen(51), o.noiseShape(3)!, f64);
    const all = o.value(x, noise).dataSync();
    for (let i = 0; i < 3; i++) {
      const one = o.value(T.slice(x, [i], [i + 1]), T.slice(noise, [i], [i + 1])).dataSync()[0];
      assert.ok(Math.abs(one - all[i]) < 1e-12 * Math.max(1, Math.abs(one)), `${name} input ${i}`);
    }
  }
  // "nll" is the bound; the model's own nll() with the same draws gives the same values.
  const noise = T.randn(gen(52), m.noiseShape(3), f64);
  assert.equal(Array.from(m.objective("nll").value(x, noise).dataSync()), Array.from(m.nll(x, { noise }).dataSync()));
  assert.is(m.objective("nll").name, "elbo");
  assert.is(m.defaultObjective, "l1-t1");
  assert.throws(() => m.objective("l1-t0"), /step 0 is outside 1\.\.50/);
  assert.throws(() => m.objective("l1-t51"), /step 51 is outside 1\.\.50/);
  assert.throws(() => m.objective("l3-t1"), /objective 'l3-t1' is not one of the diffusion model's \(allowed: l1-t<t>, l2-t<t>/);
  assert.throws(() => m.objective("l1-t1").value(x), /needs its per-input draws/);
  assert.throws(() => m.nll(x, { noise: T.randn(gen(1), [3, 2, 4, 4], f64) }), /noise \[3,2,4,4\], expected \[3,5,1,4,4\]/);
  // The eps-loss reports itself as it is; the bound in bits/dim.
  assert.is(m.objective("l1-t1").measure.kind, "loss");
  assert.is(m.objective("l1-t1").report(0.5), 0.5);
  assert.ok(Math.abs(m.objective("elbo").report(16 * Math.LN2) - 1) < 1e-15);
});

S("the bound without its t = T term (elbo-nolast): the bound less that term, value and parameter gradient (float64); refused with one stratum", () => {
  const m = tinyModel(11); // steps 50, strata 4: the last stratum is {50}
  const K = m.cfg.strata, ops = m.ops;
  assert.equal(m.process.stratum(K - 1, K), [50, 51]);
  const x = rand64(60, [2, 1, 4, 4]);
  const noise = T.randn(gen(61), m.noiseShape(2), f64);
  const params = m.namedParameters().map(([, p]) => p);
  const full = m.objective("elbo").value(x, noise);
  const gFull = T.grad(T.sum(full), params);
  assert.equal(m.objective("elbo-nolast").noiseShape(2), [2, K + 1, 1, 4, 4]); // the same draws as the bound's, the last slot unused
  const part = m.objective("elbo-nolast").value(x, noise);
  const gPart = T.grad(T.sum(part), params);
  // The left-out term on its own: stratum K - 1 (width 1) at t = 50 with noise slot K.
  const last = ops.klTerm(x, [50, 50], T.reshape(T.slice(noise, [0, K], [2, K + 1]), [2, 1, 4, 4]));
  const gLast = T.grad(T.sum(last), params);
  const f = full.dataSync(), p = part.dataSync(), l = last.dataSync();
  for (let i = 0; i < 2; i++) {
    assert.ok(l[i] > 1e-3, `the t = T term matters here: ${l[i]}`);
    assert.ok(Math.abs(f[i] - l[i] - p[i]) < 1e-10 * Math.abs(f[i]), `input ${i}: bound ${f[i]} - last ${l[i]} vs ${p[i]}`);
  }
  let worst = 0;
  params.forEach((_, k) => {
    const a = gFull[k]!.dataSync(), b = gPart[k]!.dataSync(), c = gLast[k]!.dataSync();
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - c[j] - b[j]) / Math.max(1, Math.abs(a[j])));
  });
  assert.ok(worst < 1e-10, `gradient: bound - last vs elbo-nolast, worst ${worst}`);
  assert.is(m.objective("elbo-nolast").measure.short, "NLL bound w/o t = T");
  assert.throws(() => m.objective("elbo-last"), /objective 'elbo-last' is not one of the diffusion model's/);
  const one = new Diffusion(diffusionConfig({ ...tinyUnet, steps: 50, strata: 1 }), { ...f64, gen: gen(12) });
  assert.throws(() => one.objective("elbo-nolast"), /elbo-nolast': needs at least 2 strata .* this model has 1/);
  assert.throws(() => one.ops.elbo(x, [[2, 2]], T.randn(gen(1), [2, 2, 1, 4, 4], f64), { dropLast: true }), /dropLast needs at least 2 strata/);
});

S("samplers: shapes, range, determinism under a seed (DDIM and DDPM)", async () => {
  const m = tinyModel(6, 20);
  const a = await m.sample(3, gen(1), { steps: 5 }), b = await m.sample(3, gen(1), { steps: 5 }), c = await m.sample(3, gen(2), { steps: 5 });
  assert.is(a.length, 3 * 16);
  assert.equal([...a], [...b]);
  assert.not.equal([...a], [...c]);
  const d = await m.sample(2, gen(3), { sampler: "ddpm" }), e = await m.sample(2, gen(3), { sampler: "ddpm" });
  assert.is(d.length, 2 * 16);
  assert.equal([...d], [...e]);
  const x = m.ops.ddim([2, 1, 4, 4], gen(4), 4, f64);
  assert.equal(x.shape, [2, 1, 4, 4]);
  assert.ok(x.dataSync().every((v) => v >= -1 && v <= 1));
  assert.throws(() => m.ops.ddim([1, 1, 4, 4], gen(1), 0), /steps 0 must be an integer in \[1, 20\]/);
});

S("samplers step by step (signal, onStep): the same images; an abort stops between steps and frees the step's tensor", async () => {
  const m = tinyModel(6, 20);
  for (const o of [{ steps: 5 }, { sampler: "ddpm" as const }]) {
    const total = o.steps ?? 20, seen: number[] = [];
    const plain = await m.sample(3, gen(1), o);
    const hooked = await m.sample(3, gen(1), { ...o, signal: new AbortController().signal, onStep: (k, n) => seen.push(k, n) });
    assert.equal([...hooked], [...plain], `${o.sampler ?? "ddim"}: hooks change nothing`);
    assert.equal(seen.filter((_, i) => i % 2 === 0), [...range(1, total + 1)], "onStep counts every step once");
    assert.ok(seen.filter((_, i) => i % 2 === 1).every((n) => n === total));
    // Abort after step 2: rejected with the signal's reason, no step after it, the live x freed.
    const ac = new AbortController(), steps: number[] = [];
    const live: T.Tensor[] = [];
    const gen0 = o.sampler === "ddpm" ? m.ops.ddpmSteps([3, 1, 4, 4], gen(1), f64) : m.ops.ddimSteps([3, 1, 4, 4], gen(1), total, f64);
    live.push(gen0.next().value);
    gen0.return(undefined as never);
    assert.ok(live[0].disposed, "a sampler stopped early frees its current x");
    const err = await m.sample(3, gen(1), { ...o, signal: ac.signal, onStep: (k) => (steps.push(k), k === 2 && ac.abort(new Error("cancelled here"))) }).then(() => null, (e) => e);
    assert.match(String(err), /cancelled here/);
    assert.equal(steps, [1, 2]);
  }
});

S("batched per-group features equal the per-input loop on every tensor (each score, B = 1 and 3; cpu and webgpu)", async () => {
  for (const [name, backend] of [["cpu", T.cpu], ["webgpu", await webgpu()]] as const) {
    if (!backend) continue;
    const m = new Diffusion(diffusionConfig({ ...tinyUnet, steps: 50, strata: 3 }), { backend, gen: gen(7) });
    m.parameters().forEach((p, i) => p.assign(T.add(p, T.randn(gen(200 + i), [...p.shape], { backend, std: 0.1 }))));
    m.eval();
    const x = T.rand(gen(8), [6, 1, 4, 4], { backend, low: -1, high: 1 });
    for (const score of ["l1-t1", "elbo", "elbo-nolast"]) {
      const o = m.objective(score);
      const noise = drawsOf(m, o, 6, gen(9));
      for (const B of [1, 3]) {
        const a = await featuresBatched(m, o, x, B, noise), r = await featuresLoop(m, o, x, B, noise);
        assert.is(a.names.length, m.namedParameters().length);
        let zeros = 0;
        for (let i = 0; i < a.sq.length; i++) {
          // An L1 loss's output-bias gradient is exactly 0 when as many pixels err up as down.
          if (r.sq[i] === 0) zeros++;
          const ok = r.sq[i] === 0 ? a.sq[i] < 1e-12 : Math.abs(a.sq[i] - r.sq[i]) / Math.abs(r.sq[i]) < 2e-4;
          assert.ok(ok, `${name} ${JSON.stringify(score)} B=${B} ${a.names[i % a.names.length]} group ${Math.floor(i / a.names.length)}: batched ${a.sq[i]} vs loop ${r.sq[i]}`);
        }
        assert.ok(zeros <= a.groups, `${zeros} zero norms`);
        for (let g = 0; g < a.groups; g++) assert.ok(Math.abs(a.value[g] - r.value[g]) < 1e-4 * Math.abs(r.value[g]), `${name} ${score} B=${B} value ${g}`);
      }
    }
  }
});

S("the ood and timestep-ablation commands run on a tiny diffusion model and write their files", async () => {
  const dir = Deno.makeTempDirSync();
  const m = new Diffusion(diffusionConfig({ image: [1, 28, 28], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 4, steps: 100 }), { backend: T.cpu, gen: gen(3) });
  m.parameters().forEach((p, i) => p.assign(T.add(p, T.randn(gen(300 + i), [...p.shape], { backend: T.cpu, std: 0.05 }))));
  const wpath = `${dir}/tiny-diffusion.safetensors`;
  await saveTensors(wpath, m.namedState(), metadataOf(m, { data: "fashion" }));
  const run = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", ...args], stdout: "piped", stderr: "piped" }).output();
    return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
  };
  const ood = await run("src/cli/ood.ts", "--model", wpath, "--diffusion-fit", "10", "--diffusion-eval", "10", "--B", "1", "--ood", "noise", "--backend", "cpu", "--out", `${dir}/ood`);
  assert.is(ood.code, 0, ood.out);
  assert.match(ood.out, /tiny-diffusion-l1-t1\s+1\s+noise/);
  const csv = Deno.readTextFileSync(`${dir}/ood/features-tiny-diffusion-l1-t1-B1.csv`).trim().split("\n");
  assert.is(csv.length, 1 + 10 + 10 + 10);
  const abl = await run("src/cli/ablation.ts", "--model", wpath, "--t", "1,4", "--fit", "10", "--eval", "10", "--backend", "cpu", "--out", `${dir}/abl`);
  assert.is(abl.code, 0, abl.out);
  const json = JSON.parse(Deno.readTextFileSync(`${dir}/abl/table.json`));
  assert.equal(json.rows.map((r: { t: number }) => r.t), [1, 4]);
  assert.ok(json.rows.every((r: { gradient: number; typicality: number }) => r.gradient >= 0 && r.gradient <= 1 && r.typicality >= 0 && r.typicality <= 1));
  assert.is((Deno.readTextFileSync(`${dir}/abl/auroc-vs-t.svg`).match(/<circle /g) ?? []).length, 4);
  const bad = await run("src/cli/ablation.ts", "--model", wpath, "--t", "1,200", "--backend", "cpu", "--out", `${dir}/abl2`);
  assert.is(bad.code, 1);
  assert.match(bad.out, /error: ablation: --t '1,200': objective 'l1-t200': step 200 is outside 1\.\.100/);
  const badScore = await run("src/cli/ood.ts", "--model", wpath, "--diffusion-score", "l3", "--backend", "cpu");
  assert.is(badScore.code, 1);
  assert.match(badScore.out, /error: ood: --diffusion-score 'l3'.*elbo-nolast/);
  // A diffusion-only option on a run without a diffusion model, and --fit on a run of diffusion models only: refused, not ignored.
  const glowPath = `${dir}/tiny-glow.safetensors`;
  const { createModel } = await import("../src/models/registry.ts");
  const g = await createModel("glow", { levels: 1, steps: 1, hidden: 4, image: [1, 28, 28] }, T.cpu, 1);
  await saveTensors(glowPath, g.namedState(), metadataOf(g, { data: "fashion" }));
  const notDiff = await run("src/cli/ood.ts", "--model", glowPath, "--diffusion-t", "5", "--backend", "cpu", "--out", `${dir}/ood4`);
  assert.is(notDiff.code, 1);
  assert.match(notDiff.out, /error: ood: --diffusion-t '5': applies to diffusion models only, and none of the models is one/);
  const fitOnDiff = await run("src/cli/ood.ts", "--model", wpath, "--fit", "20", "--backend", "cpu", "--out", `${dir}/ood5`);
  assert.is(fitOnDiff.code, 1);
  assert.match(fitOnDiff.out, /error: ood: --fit '20': applies to VAE and Glow models; every model here is a diffusion model \(use --diffusion-fit\)/);
  // The bound without its t = T term needs that term in a stratum of its own: refused before work for a one-stratum model.
  const one = new Diffusion(diffusionConfig({ image: [1, 28, 28], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 4, steps: 100, strata: 1 }), { backend: T.cpu, gen: gen(4) });
  const onePath = `${dir}/one-stratum.safetensors`;
  await saveTensors(onePath, one.namedState(), metadataOf(one, { data: "fashion" }));
  const badStrata = await run("src/cli/ood.ts", "--model", onePath, "--diffusion-score", "elbo-nolast", "--backend", "cpu", "--out", `${dir}/ood3`);
  assert.is(badStrata.code, 1);
  assert.match(badStrata.out, /error: ood: --diffusion-score 'elbo-nolast': .*needs at least 2 strata.*this model has 1/);
  assert.throws(() => Deno.statSync(`${dir}/ood3`), (e: unknown) => e instanceof Deno.errors.NotFound, "nothing written");
  Deno.removeSync(dir, { recursive: true });
});

S.run();
