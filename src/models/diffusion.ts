// The diffusion model as a GenerativeModel: its U-Net (unet.ts) predicting the noise, the process
// and its bound, losses and samplers (diffusion_process.ts), the config (the U-Net's shape, the
// steps, the schedule, the training loss, the bound's strata) and its defaults.
import * as T from "../autograd/index.ts";
import { type ImageSet, toTensor } from "../data/dataset.ts";
import { type Init, Module } from "../nn/module.ts";
import type { Backend, DType } from "../kernels/backend.ts";
import { parseImageShape, type GenerativeModel, type ImageShape, type NllOptions, type SampleOptions } from "./model.ts";
import { makeObjective, type Objective, unknownObjective } from "./objective.ts";
import { Unet, UNET_DEFAULT, UNET_PAPER, type UnetConfig } from "./unet.ts";
import { type BetaSchedule, DiffusionOps, Process } from "./diffusion_process.ts";

/** The U-Net's shape (UnetConfig) and the process; flat, so the config checker sees every key. */
export interface DiffusionConfig extends UnetConfig {
  /** Diffusion steps T. */
  steps: number;
  schedule: BetaSchedule;
  /** Training loss on the predicted noise: mean squared error (default) or mean absolute error (the paper's). */
  trainLoss: "l2" | "l1";
  /** Strata K of the bound's KL terms (network calls per image: K + 1). */
  strata: number;
}

export const DIFFUSION_DEFAULT: DiffusionConfig = { ...UNET_DEFAULT, steps: 1000, schedule: "sigmoid", trainLoss: "l2", strata: 10 };
/**
 * The paper's size (for a GPU): denoising-diffusion-pytorch Unet(dim=32, dim_mults=(1,2,4,8)) on
 * 32x32 images, L1 loss: `--config '{"image":[3,32,32],"dim":32,"dimMults":[1,2,4,8],"resBlocks":2,"trainLoss":"l1"}'`.
 */
export const DIFFUSION_PAPER: DiffusionConfig = { ...UNET_PAPER, steps: 1000, schedule: "sigmoid", trainLoss: "l1", strata: 10 };

/**
 * A config as stored: flat, or (checkpoints written before configs were flat) with the U-Net's
 * keys under "unet"; returned flat and merged with the defaults.
 */
export function flattenConfig(c: Record<string, unknown> = {}): Record<string, unknown> {
  const { unet, ...rest } = c;
  return unet && typeof unet === "object" && !Array.isArray(unet) ? { ...(unet as object), ...rest } : c;
}

export function diffusionConfig(c: Partial<DiffusionConfig> = {}): DiffusionConfig {
  return { ...DIFFUSION_DEFAULT, ...flattenConfig(c as Record<string, unknown>) } as DiffusionConfig;
}

export class Diffusion extends Module implements GenerativeModel {
  readonly kind = "diffusion";
  readonly evalBatch = 4;
  readonly imageShape: ImageShape;
  readonly dims: number;
  readonly backend: Backend;
  readonly dtype: DType;
  readonly config: Record<string, unknown>;
  readonly unet: Unet;
  readonly process: Process;
  readonly ops: DiffusionOps;

  constructor(readonly cfg: DiffusionConfig, o: Init) {
    super();
    this.config = { ...cfg };
    const [C, H, W] = this.imageShape = parseImageShape("Diffusion", cfg.image);
    this.dims = C * H * W;
    this.backend = o.backend ?? T.defaultBackend();
    this.dtype = o.dtype ?? "float32";
    if (!(Number.isInteger(cfg.strata) && cfg.strata >= 1 && cfg.strata <= cfg.steps - 1)) throw new Error(`Diffusion: strata ${cfg.strata} must be an integer in [1, ${cfg.steps - 1}]`);
    this.unet = this.child("unet", new Unet(cfg, o));
    this.process = new Process(cfg.schedule, cfg.steps);
    this.ops = new DiffusionOps(this.process, (x, t) => this.unet.forward(x, t));
  }

  /** Pixels to [-1, 1] levels (2v/255 - 1), no dequantisation (the decoder is discrete). */
  input(s: ImageSet, idx: ArrayLike<number>): T.Tensor {
    return toTensor(s, idx, { backend: this.backend, offset: 0, divisor: 255, scale: 2, shift: -1 });
  }

  /** The bound's draws: [B, K + 1, ...image] (slot 0 the decoder's, slot k + 1 stratum k's). */
  noiseShape(B: number): number[] {
    return [B, this.cfg.strata + 1, ...this.cfg.image];
  }

  #noise(B: number, x: T.Tensor, o: NllOptions): T.Tensor {
    if (o.noise) {
      const want = this.noiseShape(B);
      if (o.noise.shape.join() !== want.join()) throw new Error(`diffusion nll: noise ${T.fmt(o.noise.shape)}, expected ${T.fmt(want)}`);
      return o.noise;
    }
    return T.randn(o.gen ?? new T.Generator(0), this.noiseShape(B), { backend: x.backend, dtype: x.dtype });
  }

  /**
   * The negative bound in nats per image [B] (bits/dim after / (D ln 2)). Draws: noise from o.noise
   * (per input) or o.gen; the steps from o.gen per image when a generator is given, else one fixed
   * seeded step per stratum for all images (so given noise gives a deterministic value).
   */
  nll(x: T.Tensor, o: NllOptions = {}): T.Tensor {
    return this.#bound(x, this.#noise(x.shape[0], x, o), o.gen && !o.noise ? o.gen : null, false);
  }

  #bound(x: T.Tensor, noise: T.Tensor, gen: T.Generator | null, dropLast: boolean): T.Tensor {
    const B = x.shape[0], K = this.cfg.strata;
    const ts = gen ? this.ops.drawSteps(B, K, gen) : this.ops.drawSteps(B, K, new T.Generator(12345), true);
    return this.ops.elbo(x, ts, noise, { dropLast }).total;
  }

  get objectives(): string {
    return `l1-t<t>, l2-t<t> (the eps-loss at step t, t in 1..${this.process.T}), elbo (or nll)${this.cfg.strata >= 2 ? ", elbo-nolast" : ""}`;
  }
  /** The paper's feature: the L1 eps-loss at the first step, one noise draw per input. */
  readonly defaultObjective = "l1-t1";

  /**
   * Every model's "nll" is here "elbo". "l1-t<t>" | "l2-t<t>": the eps-loss at step t (mean over pixels of |eps - eps_hat| or its
   * square; one noise draw [B, ...image]); "elbo": the negative bound (its K + 1 draws per input);
   * "elbo-nolast": the bound without its t = T term (and its network call), whose gradient
   * dominates every layer's norm of the bound's (scripts/elbo_terms.ts; docs/diffusion.md).
   */
  objective(name: string = this.defaultObjective): Objective {
    const m = /^(l1|l2)-t(\d+)$/.exec(name);
    if (m) {
      const loss = m[1] as "l1" | "l2", t = Number(m[2]);
      if (!(t >= 1 && t <= this.process.T)) throw new Error(`objective '${name}': step ${t} is outside 1..${this.process.T}, the steps of this diffusion model (allowed: ${this.objectives})`);
      const what = loss === "l1" ? "|eps - eps_hat|" : "(eps - eps_hat)^2";
      return makeObjective({
        name, dims: this.dims, noiseShape: (B) => [B, ...this.cfg.image],
        value: (x, noise) => this.ops.epsLoss(x, new Array(x.shape[0]).fill(t), noise!, loss),
        measure: {
          kind: "loss", short: `${loss.toUpperCase()} eps-loss, t = ${t}`, unit: "",
          label: `${loss.toUpperCase()} eps-loss at t = ${t}: the mean over pixels of ${what} for one noise draw (what stands in for the likelihood; not a likelihood)`,
        },
      });
    }
    if (name === "nll") name = "elbo"; // every model's "nll": here the negative bound
    if (name !== "elbo" && name !== "elbo-nolast") throw unknownObjective("diffusion", name, this.objectives);
    const dropLast = name === "elbo-nolast";
    if (dropLast && this.cfg.strata < 2) throw new Error(`objective 'elbo-nolast': needs at least 2 strata (the last one is then t = ${this.process.T} alone); this model has ${this.cfg.strata} (allowed: ${this.objectives})`);
    return makeObjective({
      name, dims: this.dims, maxBatch: this.evalBatch, noiseShape: (B) => this.noiseShape(B),
      value: (x, noise) => this.#bound(x, noise!, null, dropLast),
      measure: dropLast
        ? { kind: "nll", short: "NLL bound w/o t = T", label: "negative variational bound without its t = T KL term, bits/dim (stratified estimate)", unit: "bits/dim" }
        : { kind: "nll", short: "NLL bound", label: "negative variational bound, bits/dim (stratified estimate)", unit: "bits/dim" },
    });
  }

  /** The negative bound in nats [B] with fresh draws from gen (steps per image). */
  elboNll(x: T.Tensor, gen: T.Generator): T.Tensor {
    const B = x.shape[0];
    const noise = T.randn(gen, [B, this.cfg.strata + 1, ...this.cfg.image], { backend: x.backend, dtype: x.dtype });
    return this.ops.elbo(x, this.ops.drawSteps(B, this.cfg.strata, gen), noise).total;
  }

  /** The training objective per image [B]: the eps-loss at a uniform step t in 1..T. */
  trainingLoss(x: T.Tensor, gen: T.Generator): T.Tensor {
    const B = x.shape[0];
    const t = Array.from({ length: B }, () => 1 + gen.int(this.process.T));
    const noise = T.randn(gen, [...x.shape], { backend: x.backend, dtype: x.dtype });
    return this.ops.epsLoss(x, t, noise, this.cfg.trainLoss);
  }

  readonly sampleOptions = ["sampler", "steps"] as const;
  describeSampling(o: SampleOptions): string {
    if (o.sampler === "ddpm") return "(ancestral DDPM, every step)";
    const steps = o.steps ?? 100;
    if (!(Number.isInteger(steps) && steps >= 1 && steps <= this.process.T)) throw new Error(`steps ${steps}: at most ${this.process.T} (the steps of this diffusion model)`);
    return `(DDIM, ${steps} steps)`;
  }

  /** n images as 0..255 levels: DDIM with o.steps steps (default 100; deterministic given gen), or ancestral DDPM. */
  async sample(n: number, gen: T.Generator, o: SampleOptions = {}): Promise<Uint8Array> {
    const { backend, dtype } = this;
    const shape = [n, ...this.cfg.image];
    const ddpm = o.sampler === "ddpm", total = ddpm ? this.process.T : o.steps ?? 100;
    const steps = ddpm ? this.ops.ddpmSteps(shape, gen, { backend, dtype }) : this.ops.ddimSteps(shape, gen, total, { backend, dtype });
    let r = steps.next(), done = 0;
    if (o.signal || o.onStep) {
      // Each step finishes before the next is queued, so a cancel leaves nothing running.
      try {
        while (!r.done) {
          await r.value.data();
          o.signal?.throwIfAborted();
          o.onStep?.(++done, total);
          r = steps.next();
        }
      } catch (e) {
        steps.return(undefined as never);
        throw e;
      }
    }
    while (!r.done) r = steps.next();
    const x = r.value;
    const d = await x.data();
    if (o.signal?.aborted) {
      x.dispose();
      o.signal.throwIfAborted();
    }
    o.onStep?.(total, total);
    x.dispose();
    return Uint8Array.from(d, (v) => Math.round(Math.min(1, Math.max(-1, v)) * 127.5 + 127.5));
  }
}
