// Glow: a multi-scale flow with exact log-likelihood. Each level squeezes, runs K flow steps and
// (except the last) splits off half the channels under a learned conditional Gaussian prior.
import * as T from "../autograd/index.ts";
import { type ImageSet, toTensor } from "../data/dataset.ts";
import { type Init, Module } from "../nn/module.ts";
import { type ActNorm, FlowStep, gaussianLogProb, LogitPreprocess, SplitPrior, depthToSpace, spaceToDepth } from "./glow_layers.ts";
import type { Backend, DType } from "../kernels/backend.ts";
import { parseImageShape, type GenerativeModel, type ImageShape, type SampleOptions } from "./model.ts";
import { makeObjective, type Objective, unknownObjective } from "./objective.ts";

export interface GlowConfig {
  levels: number;
  steps: number;
  hidden: number;
  /** Input image shape [C, H, W]. */
  image: [number, number, number];
  /**
   * The flow models logit(alpha + (1 - 2 alpha) p) of the pixels p in [0, 1) (LogitPreprocess) when
   * this alpha is given and > 0; absent or 0: the pixels minus 1/2, as the shipped weights were trained.
   */
  logit?: number;
}

/** Sized for 2 CPU cores (lavapipe). */
export const GLOW_DEFAULT: GlowConfig = { levels: 2, steps: 4, hidden: 32, image: [1, 28, 28] };

class Level extends Module {
  readonly steps: FlowStep[];
  readonly prior: SplitPrior | null;
  constructor(readonly channels: number, K: number, hidden: number, split: boolean, o: Init) {
    super();
    this.steps = [...Array(K).keys()].map((k) => this.child(`steps.${k}`, new FlowStep(channels, hidden, o)));
    this.prior = split ? this.child("prior", new SplitPrior(channels, o)) : null;
  }
}

export interface Encoded {
  /** Latents per level: the split-off halves, then the top. */
  zs: T.Tensor[];
  /** log|det| of the whole flow, [B]. */
  logdet: T.Tensor;
  /** log p(z) under the priors, [B]. */
  logpz: T.Tensor;
}

export class Glow extends Module implements GenerativeModel {
  readonly kind = "glow";
  readonly imageShape: ImageShape;
  readonly dims: number;
  readonly backend: Backend;
  readonly dtype: DType;
  readonly config: Record<string, unknown>;
  readonly levels: Level[];
  readonly logit: LogitPreprocess | null;

  constructor(readonly cfg: GlowConfig, o: Init) {
    super();
    this.config = { ...cfg };
    const [C, H, W] = this.imageShape = parseImageShape("Glow", cfg.image);
    this.backend = o.backend ?? T.defaultBackend();
    this.dtype = o.dtype ?? "float32";
    if (H % 2 ** cfg.levels || W % 2 ** cfg.levels) throw new Error(`Glow: image ${H}x${W} not divisible by 2^${cfg.levels}`);
    this.dims = C * H * W;
    this.logit = cfg.logit ? new LogitPreprocess(cfg.logit) : null;
    this.levels = [];
    let c = C;
    for (let l = 0; l < cfg.levels; l++) {
      c *= 4;
      const split = l < cfg.levels - 1;
      this.levels.push(this.child(`levels.${l}`, new Level(c, cfg.steps, cfg.hidden, split, o)));
      if (split) c /= 2;
    }
  }

  /** Pixels v -> (v + u) / 256 - 0.5 with uniform dequantisation noise u (bin centres without a generator). */
  input(s: ImageSet, idx: ArrayLike<number>, gen?: T.Generator): T.Tensor {
    return toTensor(s, idx, { backend: this.backend, dequantize: gen, shift: -0.5 });
  }

  noiseShape(): null {
    return null;
  }

  readonly objectives = "nll";
  readonly defaultObjective = "nll";
  /** "nll": the exact NLL of the pixels at their bin centres (no dequantisation noise, so nothing is drawn). */
  objective(name = "nll"): Objective {
    if (name !== "nll") throw unknownObjective("glow", name, this.objectives);
    return makeObjective({
      name, dims: this.dims, noiseShape: () => null, value: (x) => this.nll(x),
      measure: { kind: "nll", short: "NLL", label: "NLL, bits/dim (exact, pixels at their bin centres)", unit: "bits/dim" },
    });
  }

  actnorms(): ActNorm[] {
    return this.levels.flatMap((l) => l.steps.map((s) => s.actnorm));
  }

  /** Data-dependent ActNorm initialisation from a batch (each layer from the activations reaching it). */
  initialize(x: T.Tensor): void {
    for (const a of this.actnorms()) a.initNext = true;
    T.tidy(() => T.noGrad(() => this.encode(x)));
  }

  /** Marks ActNorm as initialised (after loading weights). */
  markInitialized(): void {
    for (const a of this.actnorms()) a.initialized = true;
  }

  encode(x: T.Tensor): Encoded {
    let h = x;
    let logdet: T.Tensor = T.zeros([x.shape[0]], { backend: x.backend, dtype: x.dtype });
    let logpz: T.Tensor = logdet;
    if (this.logit) {
      const r = this.logit.forward(x);
      h = r.y;
      logdet = r.logdet;
    }
    const zs: T.Tensor[] = [];
    for (const level of this.levels) {
      h = spaceToDepth(h);
      for (const step of level.steps) {
        const r = step.forward(h);
        h = r.y;
        logdet = T.add(logdet, r.logdet);
      }
      if (level.prior) {
        const [B, C, H, W] = h.shape;
        const z1 = T.slice(h, [0, 0, 0, 0], [B, C / 2, H, W]), z2 = T.slice(h, [0, C / 2, 0, 0], [B, C, H, W]);
        const { mean, logs } = level.prior.params(z1);
        logpz = T.add(logpz, gaussianLogProb(z2, mean, logs));
        zs.push(z2);
        h = z1;
      }
    }
    zs.push(h);
    logpz = T.add(logpz, gaussianLogProb(h));
    return { zs, logdet, logpz };
  }

  /** Exact inverse of encode. */
  async decode(zs: T.Tensor[]): Promise<T.Tensor> {
    return await this.#reverse((l) => zs[l], () => zs[zs.length - 1]);
  }

  /** From the top latent down: each split level takes back its half from z2At, then the steps run in reverse. */
  async #reverse(z2At: (l: number, mean: T.Tensor, logs: T.Tensor) => T.Tensor, top: () => T.Tensor): Promise<T.Tensor> {
    let h = top();
    for (let l = this.levels.length - 1; l >= 0; l--) {
      const level = this.levels[l];
      if (level.prior) {
        const { mean, logs } = level.prior.params(h);
        h = T.concat([h, z2At(l, mean, logs)], 1);
      }
      for (let k = level.steps.length - 1; k >= 0; k--) h = await level.steps[k].reverse(h);
      h = depthToSpace(h);
    }
    return this.logit ? this.logit.reverse(h) : h;
  }

  /**
   * Negative log-likelihood of the 8-bit images behind x (dequantised, in [-0.5, 0.5)), in nats:
   * -log p(x) + D log 256, the discretisation correction that makes it a bound on -log P(pixels).
   */
  nll(x: T.Tensor): T.Tensor {
    const { logdet, logpz } = this.encode(x);
    return T.add(T.neg(T.add(logpz, logdet)), this.dims * Math.log(256));
  }

  readonly sampleOptions = ["temperature"] as const;
  describeSampling(o: SampleOptions): string {
    const t = o.temperature ?? 1;
    if (!(t >= 0 && Number.isFinite(t))) throw new Error(`temperature ${t}: expected a finite number >= 0`);
    return `at temperature ${t}`;
  }

  /** n samples at a temperature (o.temperature, default 1), as 0..255 levels [n*C*H*W]. */
  async sample(n: number, gen: T.Generator, o: SampleOptions = {}): Promise<Uint8Array> {
    const { backend, dtype } = this, temperature = o.temperature ?? 1;
    const [C, H, W] = this.imageShape;
    const f = 2 ** this.levels.length;
    const topC = this.levels.length === 1 ? C * 4 : (C * 4 ** this.levels.length) / 2 ** (this.levels.length - 1);
    const x = await T.noGrad(() =>
      this.#reverse(
        (_l, mean, logs) => T.add(mean, T.mul(T.exp(logs), T.randn(gen, [...mean.shape], { backend, dtype, std: temperature }))),
        () => T.randn(gen, [n, topC, H / f, W / f], { backend, dtype, std: temperature }))
    );
    const d = await x.data();
    x.dispose();
    return Uint8Array.from(d, (v) => Math.min(255, Math.max(0, Math.floor((v + 0.5) * 256))));
  }
}
