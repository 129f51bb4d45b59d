// Input saliency by double backprop: which pixels drive a layer's gradient feature, or the
// detector's score. For one input x: g_l = d NLL / d theta_l with the backward pass recorded
// (createGraph), f_l = ||g_l||^2, and then the gradient of log f_l (or of the diagonal Gaussian's
// score, sum over kept layers of -(log f_l - mean_l)^2 / 2 var_l + const) with respect to x. This
// uses the reference per-input gradient path, not the per-group pass. Gradients are in model
// space (x as model.input makes it); an overlay only needs their magnitude.
import * as T from "../autograd/index.ts";
import { imageGridPng } from "../io/png.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Objective } from "../models/objective.ts";
import type { DiagonalGaussian } from "./density.ts";
import { inputNoise } from "./loop.ts";

export type SaliencyTarget =
  | { kind: "layer"; layer: number }
  /** The diagonal Gaussian's score of the features floored at `floor` (density.ts FeatureSpace). */
  | { kind: "score"; density: Pick<DiagonalGaussian, "mean" | "variance" | "kept">; floor: ArrayLike<number> };

/** The target as a function of x [1, C, H, W]: log f_l, or the diagonal Gaussian's score (up to a constant). */
export function saliencyTarget(model: GenerativeModel, objective: Objective, x: T.Tensor, target: SaliencyTarget, noise?: T.Tensor): T.Tensor {
  const params = model.parameters();
  const v = T.sum(objective.value(x, noise));
  if (target.kind === "layer") {
    const [g] = T.grad(v, [params[target.layer]], { createGraph: true });
    return T.log(T.sumSquares(g!));
  }
  const d = target.density;
  const grads = T.grad(v, d.kept.map((l) => params[l]), { createGraph: true });
  let s: T.Tensor | null = null;
  d.kept.forEach((l, i) => {
    const lf = T.maximum(T.log(T.sumSquares(grads[i]!)), target.floor[l]);
    const term = T.mul(T.square(T.sub(lf, d.mean[l])), -0.5 / d.variance[l]);
    s = s ? T.add(s, term) : term;
  });
  return s!;
}

/** d target / d x for one input x [1, C, H, W]: a [1, C, H, W] tensor, and the target's value. */
export async function saliency(model: GenerativeModel, objective: Objective, x: T.Tensor, target: SaliencyTarget, noise?: T.Tensor): Promise<{ grad: Float64Array; value: number }> {
  if (x.shape[0] !== 1) throw new Error(`saliency: one input at a time, got a batch of ${x.shape[0]}`);
  const [g, v] = T.tidy(() => {
    const xs = x.detach().requireGrad();
    const obj = saliencyTarget(model, objective, xs, target, noise);
    const [gx] = T.grad(obj, [xs]);
    return [gx!.detach(), obj.detach()];
  });
  const out = { grad: Float64Array.from(await g.data()), value: (await v.data())[0] };
  g.dispose();
  v.dispose();
  return out;
}

/**
 * An overlay of |saliency| on an image: grey (or colour) pixels, with red where |d/dx| summed over
 * channels is large (scaled to its 99th percentile, so one pixel does not wash out the rest).
 * Returns planar RGB bytes [3, H, W].
 */
export function overlayRgb(image: Uint8Array, grad: ArrayLike<number>, c: number, h: number, w: number): Uint8Array {
  const plane = h * w, mag = new Float64Array(plane);
  for (let k = 0; k < c; k++) for (let i = 0; i < plane; i++) mag[i] += Math.abs(grad[k * plane + i]);
  const sorted = Float64Array.from(mag).sort();
  const top = sorted[Math.min(plane - 1, Math.floor(0.99 * plane))] || sorted[plane - 1] || 1;
  const out = new Uint8Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    const a = Math.min(1, mag[i] / top);
    for (let k = 0; k < 3; k++) {
      const v = image[(c === 3 ? k : 0) * plane + i] * 0.6;
      const tint = k === 0 ? 255 : k === 1 ? 40 : 0;
      out[k * plane + i] = Math.round(v * (1 - a) + tint * a);
    }
  }
  return out;
}

/** Planar grey or colour bytes as planar RGB. */
export function toRgb(image: Uint8Array, c: number, plane: number): Uint8Array {
  if (c === 3) return image;
  const out = new Uint8Array(3 * plane);
  for (let k = 0; k < 3; k++) out.set(image.subarray(0, plane), k * plane);
  return out;
}

/** A PNG of rows of (image, overlay) pairs: one row per entry of `rows`. */
export function saliencyPng(rows: { image: Uint8Array; grad: ArrayLike<number> }[][], c: number, h: number, w: number): Uint8Array {
  const per = Math.max(...rows.map((r) => r.length)), plane = h * w;
  const cells: Uint8Array[] = [];
  for (const r of rows) {
    for (let i = 0; i < per; i++) {
      const e = r[i];
      cells.push(e ? toRgb(e.image, c, plane) : new Uint8Array(3 * plane).fill(255));
      cells.push(e ? overlayRgb(e.image, e.grad, c, h, w) : new Uint8Array(3 * plane).fill(255));
    }
  }
  const all = new Uint8Array(cells.length * 3 * plane);
  cells.forEach((x, i) => all.set(x, i * 3 * plane));
  return imageGridPng(all, cells.length, 3, h, w, 2 * per);
}

/**
 * Saliency of the diagonal Gaussian's score for the k inputs of a set that it scores lowest (the
 * most strongly flagged), given the set's per-input floored feature rows (B = 1, in set order);
 * each input with its own draws (its pixels and `seed`, as in the loop).
 */
export async function flaggedSaliency(model: GenerativeModel, objective: Objective, density: DiagonalGaussian, floor: ArrayLike<number>, set: ImageSet, rows: ArrayLike<number>[], k: number, seed = 0): Promise<{ index: number; score: number; image: Uint8Array; grad: Float64Array }[]> {
  const order = rows.map((r, i) => [density.score(r), i] as const).sort((a, b) => a[0] - b[0]).slice(0, k);
  const d = set.c * set.h * set.w, out = [];
  for (const [score, i] of order) {
    const x = model.input(set, [i]), nz = inputNoise(model, objective, set, [i], seed);
    const { grad } = await saliency(model, objective, x, { kind: "score", density, floor }, nz);
    x.dispose();
    nz?.dispose();
    out.push({ index: i, score, image: set.images.slice(i * d, (i + 1) * d), grad });
  }
  return out;
}
