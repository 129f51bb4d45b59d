// The one loop over a set of images: batches of whole groups of B consecutive inputs, each input
// with its own random draws, handed to a body (features, gradients). Every path from images to
// features goes through it: `ood`, `fit`, `score`, `features`, the full-FIM and influence methods,
// the page and the benches.
//
// Randomness belongs to the input. An objective that draws (the VAE's latent sample, a diffusion
// model's noise) gets, for input i, standard normals from a generator seeded with a hash of i's
// pixels and the run's seed (hashBytes(pixels, seed)); a group of B inputs gets its members'
// draws. So the same image gets the same NLL, features, score and verdict wherever it sits: in
// any order, under any file name, in any set, in any command and on the page (same weights, same
// seed, same backend).
import * as T from "../autograd/index.ts";
import { dims, type ImageSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Measure, Objective } from "../models/objective.ts";
import { featuresBatched, featuresLoop, groupGradients } from "./features.ts";

export interface LoopOptions {
  /** Inputs per group B (default 1): each group's features are those of its summed objective. */
  groupSize?: number;
  /** Inputs per pass (default 64), at most the objective's maxBatch, rounded down to whole groups (at least one). */
  batch?: number;
  /** The run's seed (default 0), mixed into every input's draws. */
  seed?: number;
  /** Stops the loop between batches (the page's cancel); the loop then throws the signal's reason. */
  signal?: AbortSignal;
  /** After each batch: inputs done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Awaited after each batch (a page's chance to paint and take a cancel). */
  pause?: () => Promise<void>;
}

export interface Batch {
  /** The batch's inputs in model space, [n, C, H, W]. */
  x: T.Tensor;
  /** Their draws, [n, ...] (absent when the objective draws nothing). */
  noise?: T.Tensor;
  /** Index of the batch's first input in the set, and of its first group. */
  first: number;
  firstGroup: number;
  /** Inputs and groups in the batch. */
  n: number;
  groups: number;
}

/** The inputs of a set that form whole groups: a trailing partial group is left out. */
export const groupedCount = (set: ImageSet, B: number) => set.n - (set.n % B);

/** Inputs per pass for an objective: `batch` capped by objective.maxBatch, in whole groups of B. */
export function passSize(objective: Objective, B: number, batch = 64): number {
  const cap = Math.min(batch, objective.maxBatch);
  return Math.max(B, cap - (cap % B));
}

/** Standard normals for inputs idx of a set: each input's from its own pixels and the seed. */
export function inputNoise(model: GenerativeModel, objective: Objective, set: ImageSet, idx: ArrayLike<number>, seed = 0): T.Tensor | undefined {
  const shape = objective.noiseShape(idx.length);
  if (!shape) return undefined;
  const n = idx.length, per = shape.reduce((a, b) => a * b, 1) / Math.max(1, n), d = dims(set);
  const out = new Float64Array(per * n);
  for (let i = 0; i < n; i++) {
    const j = idx[i], gen = new T.Generator(T.hashBytes(set.images.subarray(j * d, (j + 1) * d), seed));
    for (let k = 0; k < per; k++) out[i * per + k] = gen.normal();
  }
  return T.tensor(out, shape, { backend: model.backend, dtype: model.dtype });
}

function checkShape(model: GenerativeModel, set: ImageSet): void {
  const [C, H, W] = model.imageShape;
  if (set.c !== C || set.h !== H || set.w !== W) throw new Error(`features: set ${set.name} has ${set.c}x${set.h}x${set.w} images, the model takes ${C}x${H}x${W}`);
}

/**
 * The loop: for each batch of whole groups, the inputs and their draws, then `body`. The batch's
 * tensors are freed after the body returns.
 */
export async function forEachBatch(model: GenerativeModel, objective: Objective, set: ImageSet, o: LoopOptions, body: (b: Batch) => Promise<void>): Promise<void> {
  checkShape(model, set);
  const B = o.groupSize ?? 1, seed = o.seed ?? 0;
  if (!(Number.isInteger(B) && B >= 1)) throw new Error(`features: group size ${B} must be a positive integer`);
  const n = groupedCount(set, B), per = passSize(objective, B, o.batch);
  for (let i = 0; i < n; i += per) {
    o.signal?.throwIfAborted();
    const idx = Array.from({ length: Math.min(n, i + per) - i }, (_, k) => i + k);
    const x = model.input(set, idx);
    const noise = inputNoise(model, objective, set, idx, seed);
    try {
      await body({ x, noise, first: i, firstGroup: i / B, n: idx.length, groups: idx.length / B });
    } finally {
      x.dispose();
      noise?.dispose();
    }
    o.onProgress?.(i + idx.length, n);
    await o.pause?.();
  }
}

export interface SetFeatures {
  name: string;
  /** Parameter tensor names, one per feature. */
  names: string[];
  /** Group rows of log f_l (float32 values: what features files store). */
  logf: Float64Array[];
  /**
   * The objective's value, the mean per input of each group, in its measure's unit
   * (objective.report: bits/dim for an NLL; the loss itself for an eps-loss). The likelihood and
   * typicality baselines read it.
   */
  nll: Float64Array;
  /** What `nll` measures. */
  measure: Measure;
  objective: string;
}

/** Features of every group of B consecutive inputs of a set (a trailing partial group left out). */
export async function setFeatures(model: GenerativeModel, objective: Objective, set: ImageSet, o: LoopOptions & { loop?: boolean } = {}): Promise<SetFeatures> {
  const B = o.groupSize ?? 1;
  const logf: Float64Array[] = [], nll: number[] = [];
  let names = model.namedParameters().map(([n]) => n);
  const round = model.dtype === "float32" ? Math.fround : (v: number) => v;
  await forEachBatch(model, objective, set, o, async (b) => {
    const f = await (o.loop ? featuresLoop : featuresBatched)(model, objective, b.x, B, b.noise);
    names = f.names;
    const L = names.length;
    for (let g = 0; g < f.groups; g++) {
      // log f_l of a float32 model rounded to float32, as the features files store it, so a file holds exactly these rows.
      logf.push(Float64Array.from({ length: L }, (_, l) => round(Math.log(f.sq[g * L + l]))));
      nll.push(objective.report(f.value[g] / B));
    }
  });
  return { name: set.name, names, logf, nll: Float64Array.from(nll), measure: objective.measure, objective: objective.name };
}

/**
 * Calls f with the per-group gradients ([G_b, P_l] per parameter tensor) of each batch of each set
 * in turn (one pass of the loop over them all); they are freed after f returns unless it returns
 * true (it then owns them).
 */
export async function forEachGradientBatch(model: GenerativeModel, objective: Objective, sets: ImageSet | ImageSet[], o: LoopOptions, f: (g: T.Tensor[], set: number, firstGroup: number) => Promise<boolean | void>): Promise<void> {
  for (const [k, set] of (Array.isArray(sets) ? sets : [sets]).entries()) {
    await forEachBatch(model, objective, set, o, async (b) => {
      const g = groupGradients(model, objective, b.x, o.groupSize ?? 1, b.noise);
      let taken = false;
      try {
        taken = (await f(g, k, b.firstGroup)) === true;
      } finally {
        if (!taken) g.forEach((t) => t.dispose());
      }
    });
  }
}

/** All per-group gradients of a set, per batch a list of [G_b, P_l] tensors (the caller owns them). */
export async function setGradients(model: GenerativeModel, objective: Objective, set: ImageSet, o: LoopOptions): Promise<T.Tensor[][]> {
  const parts: T.Tensor[][] = [];
  await forEachGradientBatch(model, objective, set, o, (g) => {
    parts.push(g);
    return Promise.resolve(true);
  });
  return parts;
}
