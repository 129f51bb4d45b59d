// What every generative model offers the trainer and the OOD method.
import type * as T from "../autograd/index.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { Module } from "../nn/module.ts";

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
  /** Pixels per example (C*H*W), for bits/dim. */
  readonly dims: number;
  /** Data to model input: a batch [B, C, H, W] of the images at idx. `gen` adds dequantisation noise where the model uses it. */
  input(s: ImageSet, idx: ArrayLike<number>, gen?: T.Generator): T.Tensor;
  /** Per-example negative log-likelihood (estimate) of 8-bit images, in nats: shape [B]. */
  nll(x: T.Tensor, o?: NllOptions): T.Tensor;
  /** Shape of the per-example noise nll() draws for a batch of B ([B, ...]), or null if it draws none. */
  noiseShape(B: number): number[] | null;
  /** n samples from the model, as 8-bit images (N*C*H*W bytes). */
  sampleImages(n: number, gen: T.Generator): Promise<Uint8Array>;
  /**
   * The per-example training objective where it is not the NLL (the diffusion model's eps-loss at a
   * random step); the trainer minimises its mean. Absent: the trainer minimises nll in bits/dim.
   */
  trainingLoss?(x: T.Tensor, gen: T.Generator): T.Tensor;
  /** The largest batch evaluation should pass to nll (the diffusion bound runs K + 1 U-Net passes per image). */
  readonly evalBatch?: number;
  /** Data-dependent initialisation on a first batch (ActNorm); a no-op where none is needed. */
  initialize?(x: T.Tensor): void;
}

export const LN2 = Math.log(2);
