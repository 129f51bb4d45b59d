// One input, end to end: its objective value (the NLL, or a diffusion model's eps-loss), its
// layer-wise gradient features log f_l, their z-scores under the detector's per-layer Gaussian,
// every score, the verdict, and a saliency map: the gradient of the score (or of one layer's
// log f_l) with respect to the input pixels. The saliency is double backprop: the parameter
// gradients are taken with createGraph, so log f_l stays a function of x. The input's draws come
// from its pixels and the detector's seed, exactly as in the loop over a set (src/ood/loop.ts),
// so the page, `score` and `ood` give one image one answer.
import * as T from "../autograd/index.ts";
import { makeSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Measure, Objective } from "../models/objective.ts";
import { checkAgainstModel, type Detector } from "./detector.ts";
import { inputNoise } from "./loop.ts";

/**
 * The objective a detector was fitted with, checked against the model before any work: the
 * detector's features must be the model's parameter tensors (names and sizes), its objective one
 * the model offers and, for one input at a time, its group size 1.
 */
export function detectorObjective(model: GenerativeModel, det: Detector, file = "detector", o: { single?: boolean } = {}): Objective {
  const f = det.file;
  checkAgainstModel(f, model.namedParameters().map(([n, p]) => [n, [...p.shape]]), `the ${model.kind} model`, file);
  if (o.single && f.groupSize !== 1) throw new Error(`detector file ${file}: groupSize ${f.groupSize}: one input at a time needs a detector fitted at B = 1`);
  try {
    return model.objective(f.model.objective);
  } catch (e) {
    throw new Error(`detector file ${file}: model.objective: ${(e as Error).message}`);
  }
}

export type SaliencyTarget = "none" | "score" | number;

export interface InspectOptions {
  /** The map's target: the detector's diagonal Gaussian score (default), one feature's log f_l (its index), or none. */
  saliency?: SaliencyTarget;
}

export interface Inspection {
  objective: string;
  measure: Measure;
  /** The objective's value in nats (an NLL) or the loss itself. */
  raw: number;
  /** The same in the measure's unit: bits/dim for an NLL, the loss itself otherwise. */
  value: number;
  /** log f_l, raw (-inf where a norm is exactly 0), and floored as the detector scores it. */
  logf: Float64Array;
  floored: Float64Array;
  /** Per-feature z-scores of the floored row; NaN for features the detector dropped. */
  z: number[];
  /** The detector's method's score, every score, the percentile among its fit (or calibration) groups. */
  score: number;
  scores: Record<string, number>;
  percentile: number;
  verdict: "in" | "ood";
  /** d target / d input, one value per pixel (C*H*W) in model space, or null for "none". */
  saliency: Float64Array | null;
}

/** Inspects one 8-bit image (C*H*W bytes in the model's layout) under a detector fitted for this model. */
export async function inspectImage(model: GenerativeModel, image: Uint8Array, det: Detector, o: InspectOptions = {}): Promise<Inspection> {
  if (image.length !== model.dims) throw new Error(`inspect: image has ${image.length} bytes, the model takes ${model.dims}`);
  const objective = detectorObjective(model, det, "detector", { single: true });
  const set = makeSet("input", image, new Uint8Array([255]), ...model.imageShape);
  const x = model.input(set, [0]), noise = inputNoise(model, objective, set, [0], det.file.seed);
  try {
    return await inspectInput(model, objective, x, noise, det, o);
  } finally {
    x.dispose();
    noise?.dispose();
  }
}

/** The same for one input already in model space (x: [1, C, H, W], the model's dtype) with its draws; the saliency is w.r.t. x. */
export async function inspectInput(model: GenerativeModel, objective: Objective, x: T.Tensor, noise: T.Tensor | undefined, det: Detector, o: InspectOptions = {}): Promise<Inspection> {
  const target = o.saliency ?? "score", names = det.names;
  if (typeof target === "number" && !(Number.isInteger(target) && target >= 0 && target < names.length)) {
    throw new Error(`inspect: saliency layer ${target} out of range [0, ${names.length})`);
  }
  if (x.shape[0] !== 1) throw new Error(`inspect: one input at a time (got a batch of ${x.shape[0]})`);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p);
  const { backend, dtype } = params[0];
  const withSaliency = target !== "none";
  const diag = det.fitted.diagonal, floor = det.fitted.space.floor;
  const out = T.tidy(() => {
    const xi = T.reshape(x, x.shape); // a leaf of our own, so x's own requiresGrad is untouched
    const leaf = withSaliency ? xi.detach().requireGrad() : xi;
    const v = T.sum(objective.value(leaf, noise));
    const grads = T.grad(v, params, { createGraph: withSaliency });
    const sq = grads.map((g, i) => {
      if (!g) throw new Error(`inspect: parameter ${named[i][0]} does not reach the objective ${objective.name}`);
      return T.reshape(T.sumSquares(g), [1]);
    });
    const perLayer = sq.map((f) => T.log(f));
    // The norms are read and their logs taken on the host (a float32 model's rounded to float32), as the loop over a set does.
    const logf = T.concat(sq, 0);
    let sal: T.Tensor | null = null;
    if (withSaliency) {
      let y: T.Tensor;
      if (target === "score") {
        // The diagonal Gaussian's score up to a constant, of the floored kept features, from their
        // own nodes only: a dropped feature can be log 0 = -inf here, and 0 * inf would be NaN.
        const K = diag.kept.length, c = (f: (l: number) => number) => T.tensor(diag.kept.map(f), [K], { backend, dtype });
        const lf = T.maximum(T.concat(diag.kept.map((l) => perLayer[l]), 0), c((l) => floor[l]));
        y = T.sum(T.mul(T.square(T.sub(lf, c((l) => diag.mean[l]))), c((l) => -0.5 / diag.variance[l])));
      } else y = perLayer[target as number];
      sal = T.grad(T.sum(y), [leaf])[0];
      if (!sal) throw new Error("inspect: the saliency target does not depend on the input");
    }
    return { v, logf, sal };
  });
  const raw = (await out.v.data())[0];
  const round = model.dtype === "float32" ? Math.fround : (v: number) => v;
  const logf = Float64Array.from(await out.logf.data(), (v) => round(Math.log(v)));
  const saliency = out.sal ? Float64Array.from(await out.sal.data()) : null;
  out.v.dispose();
  out.logf.dispose();
  out.sal?.dispose();
  const value = objective.report(raw);
  const s = det.scoreRow(logf, value);
  const floored = det.fitted.floor(logf), kept = new Set(diag.kept);
  return {
    objective: objective.name, measure: objective.measure, raw, value, logf, floored,
    z: names.map((_, l) => (kept.has(l) ? diag.z(floored, l) : NaN)),
    score: s.score, scores: s.scores, percentile: s.percentile, verdict: s.verdict, saliency,
  };
}
