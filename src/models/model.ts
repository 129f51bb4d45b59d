// What every generative model offers the trainer and the OOD method.
import type * as T from "../autograd/index.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { Backend, DType } from "../kernels/backend.ts";
import type { Module } from "../nn/module.ts";
import type { Objective } from "./objective.ts";

/** One image's shape: channels, height, width. */
export type ImageShape = readonly [number, number, number];

export interface SampleOptions {
  /** Scale of the latent noise, where the model has one (Glow; default 1). */
  temperature?: number;
  /** Each pixel's mean instead of a draw from the pixel distribution, where the model has one (the VAE's decoder; default false). */
  mean?: boolean;
  /** The diffusion model's sampler: deterministic DDIM with `steps` steps (default), or ancestral DDPM over every step. */
  sampler?: "ddim" | "ddpm";
  /** DDIM steps (default 100). */
  steps?: number;
  /**
   * Stops a many-step sampler (the diffusion model's) between steps: with a signal or onStep each step
   * is awaited before the next is queued, and an aborted signal rejects with its reason, nothing left
   * queued or allocated. Models that sample in one pass ignore them.
   */
  signal?: AbortSignal;
  /** Called after each step of a many-step sampler: steps done, of total. */
  onStep?: (done: number, total: number) => void;
}

export interface NllOptions {
  /** Randomness of stochastic estimates (VAE samples); fixed per call for reproducible features. */
  gen?: T.Generator;
  /** Explicit standard-normal noise, one row per example (shape from noiseShape), instead of gen. */
  noise?: T.Tensor;
}

export interface GenerativeModel extends Module {
  readonly kind: string;
  /** JSON-serialisable constructor options, stored in checkpoints. */
  readonly config: Record<string, unknown>;
  /** The images the model is for: [C, H, W]. */
  readonly imageShape: ImageShape;
  /** Pixels per example (C*H*W), for bits/dim. */
  readonly dims: number;
  /** Where the parameters live and their element type; inputs and noise are made to match. */
  readonly backend: Backend;
  readonly dtype: DType;
  /** Data to model input: a batch [B, C, H, W] of the images at idx. `gen` adds dequantisation noise where the model uses it. */
  input(s: ImageSet, idx: ArrayLike<number>, gen?: T.Generator): T.Tensor;
  /** Per-example negative log-likelihood (estimate) of 8-bit images, in nats: shape [B]. */
  nll(x: T.Tensor, o?: NllOptions): T.Tensor;
  /** Shape of the per-example noise nll() draws for a batch of B ([B, ...]), or null if it draws none. */
  noiseShape(B: number): number[] | null;
  /** The sample options this model takes (the others do not apply to it). */
  readonly sampleOptions: readonly (keyof SampleOptions)[];
  /** How `sample` draws with these options, for messages ("at temperature 0.7"); throws one line when an option is out of range for this model. */
  describeSampling(o: SampleOptions): string;
  /** n samples from the model, as 8-bit images (n*C*H*W bytes, planar, in imageShape). */
  sample(n: number, gen: T.Generator, o?: SampleOptions): Promise<Uint8Array>;
  /**
   * The per-example training objective where it is not the NLL (the diffusion model's eps-loss at a
   * random step); the trainer minimises its mean. Absent: the trainer minimises nll in bits/dim.
   */
  trainingLoss?(x: T.Tensor, gen: T.Generator): T.Tensor;
  /** The largest batch evaluation should pass to nll (the diffusion bound runs K + 1 U-Net passes per image). */
  readonly evalBatch?: number;
  /** The objectives this model offers, for messages: "nll", or the diffusion model's "l1-t<t>, l2-t<t> (t in 1..T), elbo, elbo-nolast". */
  readonly objectives: string;
  /** What the OOD features differentiate unless told otherwise: the NLL; for the diffusion model the paper's L1 eps-loss at t = 1. */
  readonly defaultObjective: string;
  /** An objective by name (default: defaultObjective; every model offers "nll", its NLL or bound on it); throws one line naming the allowed ones. */
  objective(name?: string): Objective;
  /** Data-dependent initialisation on a first batch (ActNorm); a no-op where none is needed. */
  initialize?(x: T.Tensor): void;
}

export const LN2: number = Math.log(2);

/** [C, H, W] checked: positive integers. */
export function parseImageShape(model: string, s: readonly number[]): ImageShape {
  if (s.length !== 3 || !s.every((d) => Number.isInteger(d) && d >= 1)) throw new Error(`${model}: image must be [C, H, W] of positive integers, got ${JSON.stringify(s)}`);
  return [s[0], s[1], s[2]];
}
