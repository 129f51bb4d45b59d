// The process of a denoising diffusion model (Ho et al. 2020), for any noise predictor eps (the
// model's U-Net: diffusion.ts): the forward process q(x_t | x_0) with T steps, the eps-prediction
// loss, ancestral (DDPM) and deterministic (DDIM, Song et al. 2021) samplers, and the variational
// bound on the 256 discrete pixel levels in nats (bits/dim after dividing by D ln 2).
//
// Steps are numbered t = 1..T as in Ho et al.; denoising-diffusion-pytorch's index is t - 1.
//
// The schedule: denoising-diffusion-pytorch 1.5.5 (the version the authors used) defaults to the
// *sigmoid* schedule (Jabri et al. 2022, Fig. 8; start -3, end 3, tau 1): on the grid
// s_i = i / T, abar(s) = (sigmoid(3) - sigmoid(6 s - 3)) / (sigmoid(3) - sigmoid(-3)), and
// beta_i = 1 - abar(s_i) / abar(s_{i-1}) clipped to [0, 0.999]. That is our default; Ho's linear
// schedule (1e-4 .. 0.02) and the cosine one are options.
//
// The bound (Ho et al. eq. 5), per image, in nats:
//   L = KL(q(x_T|x_0) || N(0, I))                       prior term, closed form
//     + sum_{t=2}^T KL(q(x_{t-1}|x_t, x_0) || p(x_{t-1}|x_t))   Gaussian KLs, one network call each
//     - log p(x_0 | x_1)                                 discretised Gaussian decoder, 256 levels
// with p(x_{t-1}|x_t) = N(mu_theta, sigma_t^2), sigma_t^2 the posterior variance beta~_t
// (Ho's "fixed small" choice, the one the library samples with), and at t = 1 sigma_1^2 = beta~_2
// (beta~_1 = 0; Ho et al.'s clipped log-variance). The 999 KL terms are estimated by stratified
// sampling: {2..T} is cut into K strata (geometric in t, and {T} alone; see Process.stratum), one t drawn
// uniformly in each, each term weighted by its stratum's size; unbiased for the sum. The decoder
// and prior terms are exact.
import * as T from "../autograd/index.ts";

export type BetaSchedule = "sigmoid" | "linear" | "cosine";

export function betaSchedule(kind: BetaSchedule, T: number): Float64Array {
  if (!(Number.isInteger(T) && T >= 2)) throw new Error(`betaSchedule: steps ${T} must be an integer >= 2`);
  const betas = new Float64Array(T);
  if (kind === "linear") {
    const s = 1000 / T;
    for (let i = 0; i < T; i++) betas[i] = s * 1e-4 + ((s * 0.02 - s * 1e-4) * i) / (T - 1);
    return betas;
  }
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const abar = (u: number) => kind === "sigmoid"
    ? (sig(3) - sig(6 * u - 3)) / (sig(3) - sig(-3))
    : Math.cos(((u + 0.008) / 1.008) * Math.PI * 0.5) ** 2;
  if (kind !== "sigmoid" && kind !== "cosine") throw new Error(`betaSchedule: unknown schedule '${kind}' (sigmoid, linear, cosine)`);
  const a0 = abar(0);
  for (let i = 1; i <= T; i++) betas[i - 1] = Math.min(0.999, Math.max(0, 1 - abar(i / T) / a0 / (abar((i - 1) / T) / a0)));
  return betas;
}

/** Per-step constants of the process in float64; index t - 1 holds step t. */
export class Process {
  readonly T: number;
  readonly betas: Float64Array;
  readonly abar: Float64Array;
  /** Posterior q(x_{t-1} | x_t, x_0) = N(coef0 x_0 + coefT x_t, postVar). */
  readonly postVar: Float64Array;
  readonly coef0: Float64Array;
  readonly coefT: Float64Array;
  /** Reverse-process variance sigma_t^2: postVar, with step 1 taking step 2's (postVar_1 = 0). */
  readonly sigma2: Float64Array;

  constructor(readonly schedule: BetaSchedule, steps: number) {
    this.T = steps;
    this.betas = betaSchedule(schedule, steps);
    const n = steps;
    this.abar = new Float64Array(n);
    this.postVar = new Float64Array(n);
    this.coef0 = new Float64Array(n);
    this.coefT = new Float64Array(n);
    let a = 1;
    for (let i = 0; i < n; i++) {
      const prev = a;
      a *= 1 - this.betas[i];
      this.abar[i] = a;
      this.postVar[i] = (this.betas[i] * (1 - prev)) / (1 - a);
      this.coef0[i] = (this.betas[i] * Math.sqrt(prev)) / (1 - a);
      this.coefT[i] = ((1 - prev) * Math.sqrt(1 - this.betas[i])) / (1 - a);
    }
    this.sigma2 = Float64Array.from(this.postVar, (v, i) => (i === 0 ? this.postVar[1] : v));
  }

  #bounds = new Map<number, number[]>();

  /**
   * Stratum k of K over {2..T}: [lo, hi). The first K - 1 are geometric in t over {2..T-1} (2, 2r,
   * 2r^2, ..., rounded, each at least one step): the KL terms are largest and change fastest at
   * small t, so narrow strata there and wide ones where the terms are small and flat keep the
   * estimator's variance low; the last is {T} alone. K = T - 1 gives one step per stratum (the
   * exact sum).
   */
  stratum(k: number, K: number): [number, number] {
    let b = this.#bounds.get(K);
    if (!b) {
      // The last step is a stratum of its own: beta_T is clipped to 0.999, so alpha_T = 0.001 and
      // its KL term weighs ||eps - eps_hat||^2 by ~500 (every other step: at most ~0.5); drawn
      // from a wide stratum and multiplied by its width it made the bound heavy-tailed.
      const top = this.T, G = K - 1;
      b = [2];
      if (G >= 1) {
        for (let j = 1; j < G; j++) b.push(Math.min(top - (G - j), Math.max(b[j - 1] + 1, Math.round(2 * (top / 2) ** (j / G)))));
        b.push(top);
      }
      b.push(this.T + 1);
      this.#bounds.set(K, b);
    }
    return [b[k], b[k + 1]];
  }
}

type EpsFn = (x: T.Tensor, t: ArrayLike<number>) => T.Tensor;

/** A per-example constant [B, 1, 1, 1] from a step table. */
function perStep(table: Float64Array, t: ArrayLike<number>, like: T.Tensor, f: (v: number) => number = (v) => v): T.Tensor {
  const rest = like.shape.slice(1).map(() => 1);
  return T.tensor(Float64Array.from(t, (s) => f(table[s - 1])), [t.length, ...rest], { backend: like.backend, dtype: like.dtype });
}

const sumPixels = (x: T.Tensor) => T.sum(T.reshape(x, [x.shape[0], -1]), 1);

/** KL(N(m1, v1) || N(m2, v2)) elementwise, log-variances given (tensors broadcasting with the means, or numbers). */
export function gaussianKL(m1: T.Tensor, logv1: T.Tensor | number, m2: T.Tensor, logv2: T.Tensor | number): T.Tensor {
  const lv = (v: T.Tensor | number) => (typeof v === "number" ? T.fullLike(m1, v) : v);
  const l1 = lv(logv1), l2 = lv(logv2);
  const d = T.sub(l1, l2);
  return T.mul(T.add(T.sub(T.add(T.neg(d), T.exp(d)), 1), T.mul(T.square(T.sub(m1, m2)), T.exp(T.neg(l2)))), 0.5);
}

// Phi(a) ~ sigmoid(K1 a + K3 a^3): the tanh form of the normal CDF that Ho et al.'s decoder uses
// (max abs. error ~2e-4); as a sigmoid its tails keep their relative precision in float32.
const K1 = 2 * Math.sqrt(2 / Math.PI), K3 = K1 * 0.044715;
const phiLogit = (a: T.Tensor) => T.add(T.mul(a, K1), T.mul(T.powScalar(a, 3), K3));
/** The approximate normal CDF, for tests. */
export const approxNormalCdf = (a: number) => 1 / (1 + Math.exp(-(K1 * a + K3 * a ** 3)));

const HALF_BIN = 1 / 255; // levels in [-1, 1], 2/255 apart

/**
 * log P(x) of levels x in [-1, 1] under N(mean, sigma^2) discretised to bins of width 2/255, the edge
 * bins taking the tails; elementwise. sigma: [B, 1, 1, 1] or broadcastable.
 */
export function discretizedGaussianLogProb(x: T.Tensor, mean: T.Tensor, sigma: T.Tensor): T.Tensor {
  const c = T.sub(x, mean);
  const inv = T.recip(sigma);
  const zPlus = phiLogit(T.mul(T.add(c, HALF_BIN), inv)), zMin = phiLogit(T.mul(T.sub(c, HALF_BIN), inv));
  const logCdfPlus = T.logSigmoid(zPlus); // x = -1: P(X <= -1 + half bin)
  const logSfMin = T.logSigmoid(T.neg(zMin)); // x = 1: P(X > 1 - half bin)
  // The bin's mass from the nearer tail (upper tail where x is above the mean), no cancellation.
  const delta = T.where(T.gt(c, 0), T.sub(T.sigmoid(T.neg(zMin)), T.sigmoid(T.neg(zPlus))), T.sub(T.sigmoid(zPlus), T.sigmoid(zMin)));
  const u = T.mul(c, inv);
  const logPdfMid = T.sub(T.sub(T.mul(T.square(u), -0.5), T.log(sigma)), 0.5 * Math.log(2 * Math.PI) - Math.log(2 * HALF_BIN));
  const logMid = T.where(T.gt(delta, 1e-5), T.log(T.maximum(delta, 1e-12)), logPdfMid);
  return T.where(T.lt(x, -0.999), logCdfPlus, T.where(T.gt(x, 0.999), logSfMin, logMid));
}

/** The bound's parts per image [B], nats. */
export interface ElboTerms {
  prior: T.Tensor;
  decoder: T.Tensor;
  /** Stratified estimate of sum_{t=2}^T of the KL terms. */
  kl: T.Tensor;
  total: T.Tensor;
}

/** The process with an eps-predictor: losses, the bound, samplers. Works for any EpsFn (tests use exact ones). */
export class DiffusionOps {
  constructor(readonly p: Process, readonly eps: EpsFn) {}

  /** x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise. */
  qSample(x0: T.Tensor, t: ArrayLike<number>, noise: T.Tensor): T.Tensor {
    return T.add(T.mul(x0, perStep(this.p.abar, t, x0, Math.sqrt)), T.mul(noise, perStep(this.p.abar, t, x0, (a) => Math.sqrt(1 - a))));
  }

  /** The eps-prediction loss per image [B]: mean over pixels of |eps - eps_hat| (l1) or its square (l2). */
  epsLoss(x0: T.Tensor, t: ArrayLike<number>, noise: T.Tensor, kind: "l1" | "l2"): T.Tensor {
    const e = T.sub(this.eps(this.qSample(x0, t, noise), t), noise);
    const per = kind === "l1" ? T.abs(e) : T.square(e);
    return T.div(sumPixels(per), per.size / per.shape[0]);
  }

  /** mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(1 - beta_t). */
  modelMean(xt: T.Tensor, t: ArrayLike<number>, epsHat: T.Tensor): T.Tensor {
    const p = this.p;
    const c = Float64Array.from(t, (s) => p.betas[s - 1] / Math.sqrt(1 - p.abar[s - 1]));
    const r = Float64Array.from(t, (s) => 1 / Math.sqrt(1 - p.betas[s - 1]));
    const like = xt;
    const col = (v: Float64Array) => T.tensor(v, [t.length, ...like.shape.slice(1).map(() => 1)], { backend: like.backend, dtype: like.dtype });
    return T.mul(T.sub(xt, T.mul(epsHat, col(c))), col(r));
  }

  /** KL(q(x_T | x_0) || N(0, I)) summed over pixels [B]. */
  priorKL(x0: T.Tensor): T.Tensor {
    const aT = this.p.abar[this.p.T - 1];
    const m = T.mul(x0, Math.sqrt(aT));
    return sumPixels(gaussianKL(m, Math.log(1 - aT), T.zerosLike(m), 0));
  }

  /** KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) summed over pixels [B], t >= 2 per example. */
  klTerm(x0: T.Tensor, t: ArrayLike<number>, noise: T.Tensor): T.Tensor {
    const xt = this.qSample(x0, t, noise);
    return this.#kl(x0, xt, t, this.eps(xt, t));
  }

  #kl(x0: T.Tensor, xt: T.Tensor, t: ArrayLike<number>, epsHat: T.Tensor): T.Tensor {
    const post = T.add(T.mul(x0, perStep(this.p.coef0, t, x0)), T.mul(xt, perStep(this.p.coefT, t, x0)));
    const mu = this.modelMean(xt, t, epsHat);
    return sumPixels(gaussianKL(post, perStep(this.p.postVar, t, x0, Math.log), mu, perStep(this.p.sigma2, t, x0, Math.log)));
  }

  /** -log p(x_0 | x_1) summed over pixels [B]. */
  decoderNll(x0: T.Tensor, noise: T.Tensor): T.Tensor {
    const t = new Array(x0.shape[0]).fill(1);
    const x1 = this.qSample(x0, t, noise);
    return this.#decoder(x0, x1, this.eps(x1, t));
  }

  #decoder(x0: T.Tensor, x1: T.Tensor, epsHat: T.Tensor): T.Tensor {
    const t = new Array(x0.shape[0]).fill(1);
    const mu = this.modelMean(x1, t, epsHat);
    return T.neg(sumPixels(discretizedGaussianLogProb(x0, mu, perStep(this.p.sigma2, t, x0, Math.sqrt))));
  }

  /**
   * The bound with the KL sum estimated from one step per stratum: ts[k][i] is example i's step
   * in stratum k (the strata of Process.stratum), noise [B, K + 1, ...image]: slot 0 for the
   * decoder, slot k + 1 for stratum k. With K = T - 1 every step is its own stratum (the exact sum).
   * `dropLast` leaves out the last stratum's term (and its network call): with K >= 2 that is the
   * t = T term alone; kl and total are then without it.
   */
  elbo(x0: T.Tensor, ts: ArrayLike<number>[], noise: T.Tensor, o: { dropLast?: boolean } = {}): ElboTerms {
    const B = x0.shape[0], K = ts.length, img = x0.shape.slice(1);
    if (noise.shape[0] !== B || noise.shape[1] !== K + 1) throw new Error(`elbo: noise ${T.fmt(noise.shape)} for ${B} images and ${K} strata (need [${B}, ${K + 1}, ...])`);
    const slot = (k: number) => T.reshape(T.slice(noise, [0, k], [B, k + 1]), [B, ...img]);
    for (let k = 0; k < K; k++) {
      const [lo, hi] = this.p.stratum(k, K);
      for (let i = 0; i < B; i++) {
        const s = ts[k][i];
        if (!(Number.isInteger(s) && s >= lo && s < hi)) throw new Error(`elbo: step ${s} outside stratum ${k} [${lo}, ${hi})`);
      }
    }
    if (o.dropLast && K < 2) throw new Error(`elbo: dropLast needs at least 2 strata (the last one is then {T} alone), got ${K}`);
    const used = o.dropLast ? K - 1 : K;
    // One network call on all used noised batches (so each parameter enters the bound once: the
    // per-group norms-only pass needs that), then the terms per slot.
    const steps = [new Array(B).fill(1), ...ts.slice(0, used).map((t) => Array.from(t))];
    const xts = steps.map((t, k) => this.qSample(x0, t, slot(k)));
    const epsAll = this.eps(used ? T.concat(xts, 0) : xts[0], steps.flat());
    const epsAt = (k: number) => T.slice(epsAll, [k * B], [(k + 1) * B]);
    const prior = this.priorKL(x0);
    const decoder = this.#decoder(x0, xts[0], epsAt(0));
    let kl: T.Tensor | null = null;
    for (let k = 0; k < used; k++) {
      const [lo, hi] = this.p.stratum(k, K);
      const term = T.mul(this.#kl(x0, xts[k + 1], ts[k], epsAt(k + 1)), hi - lo);
      kl = kl ? T.add(kl, term) : term;
    }
    kl ??= T.zerosLike(prior);
    return { prior, decoder, kl, total: T.add(T.add(prior, decoder), kl) };
  }

  /** One uniform step per stratum and example, [K][B]; `shared` gives every example the same steps. */
  drawSteps(B: number, K: number, gen: T.Generator, shared = false): number[][] {
    return [...Array(K).keys()].map((k) => {
      const [lo, hi] = this.p.stratum(k, K);
      const one = () => lo + gen.int(hi - lo);
      if (shared) return new Array(B).fill(one());
      return Array.from({ length: B }, one);
    });
  }

  /** x_0 from x_t and eps_hat, clipped to [-1, 1] (the library's clip_denoised). */
  #x0(xt: T.Tensor, t: number, epsHat: T.Tensor): T.Tensor {
    const a = this.p.abar[t - 1];
    return T.clamp(T.mul(T.sub(xt, T.mul(epsHat, Math.sqrt(1 - a))), 1 / Math.sqrt(a)), -1, 1);
  }

  /** Ancestral sampling: T network calls; returns x_0 in [-1, 1]. */
  ddpm(shape: number[], gen: T.Generator, o: { backend?: T.Tensor["backend"]; dtype?: T.Tensor["dtype"] } = {}): T.Tensor {
    return finish(this.ddpmSteps(shape, gen, o));
  }

  /** ddpm one step at a time (see ddimSteps). */
  *ddpmSteps(shape: number[], gen: T.Generator, o: { backend?: T.Tensor["backend"]; dtype?: T.Tensor["dtype"] } = {}): SamplerSteps {
    const p = this.p;
    return yield* stepwise(T.randn(gen, shape, o), p.T, (x, i) => {
      const t = p.T - i, ts = new Array(shape[0]).fill(t);
      const x0 = this.#x0(x, t, this.eps(x, ts));
      const mean = T.add(T.mul(x0, p.coef0[t - 1]), T.mul(x, p.coefT[t - 1]));
      return t > 1 ? T.add(mean, T.mul(T.randn(gen, shape, o), Math.sqrt(p.sigma2[t - 1]))) : mean;
    });
  }

  /** Deterministic DDIM (eta = 0) over `steps` evenly spaced steps; returns x_0 in [-1, 1]. */
  ddim(shape: number[], gen: T.Generator, steps: number, o: { backend?: T.Tensor["backend"]; dtype?: T.Tensor["dtype"] } = {}): T.Tensor {
    return finish(this.ddimSteps(shape, gen, steps, o));
  }

  /**
   * ddim one step at a time: yields x after each step but the last (valid until the next step runs)
   * and returns x_0; stopped early (return()), it disposes its current x.
   */
  *ddimSteps(shape: number[], gen: T.Generator, steps: number, o: { backend?: T.Tensor["backend"]; dtype?: T.Tensor["dtype"] } = {}): SamplerSteps {
    const p = this.p;
    if (!(Number.isInteger(steps) && steps >= 1 && steps <= p.T)) throw new Error(`ddim: steps ${steps} must be an integer in [1, ${p.T}]`);
    const times = [...Array(steps + 1).keys()].map((i) => Math.round(p.T - (i * p.T) / steps)); // T .. 0
    return yield* stepwise(T.randn(gen, shape, o), steps, (x, i) => {
      const t = times[i], s = times[i + 1];
      const x0 = this.#x0(x, t, this.eps(x, new Array(shape[0]).fill(t)));
      if (s === 0) return x0;
      const a = p.abar[t - 1], as = p.abar[s - 1];
      const e = T.mul(T.sub(x, T.mul(x0, Math.sqrt(a))), 1 / Math.sqrt(1 - a)); // eps consistent with the clipped x_0
      return T.add(T.mul(x0, Math.sqrt(as)), T.mul(e, Math.sqrt(1 - as)));
    });
  }
}

/** A sampler run step by step: yields the intermediate x, returns the final one. */
type SamplerSteps = Generator<T.Tensor, T.Tensor, undefined>;

/** The one step loop of both samplers: x_{i+1} = step(x_i, i), the previous x freed; stopped early, the current x is freed. */
function* stepwise(x0: T.Tensor, n: number, step: (x: T.Tensor, i: number) => T.Tensor): SamplerSteps {
  let x = x0, done = false;
  try {
    for (let i = 0; i < n; i++) {
      const next = T.tidy(() => T.noGrad(() => step(x, i)));
      x.dispose();
      x = next;
      if (i < n - 1) yield x;
    }
    done = true;
    return x;
  } finally {
    if (!done) x.dispose();
  }
}

function finish(steps: SamplerSteps): T.Tensor {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}
