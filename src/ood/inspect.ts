// One input, end to end: its NLL, its layer-wise gradient features log f_l, their z-scores under a
// fitted per-layer Gaussian, the detector's score and verdict, and a saliency map: the gradient of
// the score (or of one layer's log f_l) with respect to the input pixels. The saliency is double
// backprop: the parameter gradients are taken with createGraph, so log f_l stays a function of x.
import * as T from "../autograd/index.ts";
import { makeSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { LN2 } from "../models/model.ts";
import type { DiagonalGaussian } from "./density.ts";
import { type Diffusion, PAPER_SCORE, scoreLabel } from "../models/diffusion.ts";
import { describeSelection, type SetSelection } from "../data/selection.ts";
import { type DetectorFile, parseDetector } from "./detector.ts";

const LOG2PI = Math.log(2 * Math.PI);

/**
 * What the page and inspectImage score with: a detector file's (src/ood/detector.ts, format
 * "fimscope-detector" 1, from `npm run fit` or scripts/web/make_assets.ts) diagonal Gaussian over
 * log f_l at B = 1 (densities.gradient) and its threshold95.gradient (score >= threshold: in-distribution).
 */
export interface DiagonalDetector {
  /** Weights file the features came from. */
  model: string;
  groupSize: number;
  names: string[];
  mean: number[];
  variance: number[];
  /** Feature indices with non-zero fit variance (the others are not scored). */
  kept: number[];
  threshold: number;
  tpr: number;
  /** Mean NLL of the fit inputs, bits/dim (the typicality baseline's centre), where recorded. */
  nllMean?: number;
  /** How the file was made: command, sets, sizes, seeds (the file's `made`, plus fit and calibration as text). */
  made: Record<string, unknown>;
}

/** A view made in code (tests, examples): a fitted diagonal Gaussian and a threshold. */
export function diagonalDetector(d: DiagonalGaussian, names: string[], threshold: number, tpr: number, model: string, made: Record<string, unknown>): DiagonalDetector {
  return { model, groupSize: 1, names, mean: Array.from(d.mean), variance: Array.from(d.variance), kept: [...d.kept], threshold, tpr, made };
}

const described = (what: { data: string; groups: number; selection?: SetSelection }) =>
  `${what.groups} ${what.selection ? describeSelection(what.selection) : what.data}`;

/**
 * Checks a parsed detector file (format "fimscope-detector" 1) against a model's parameter names
 * and returns its diagonal view; one error naming what is wrong.
 */
export function checkDetector(json: unknown, names: string[], file = "detector"): DiagonalDetector {
  const f: DetectorFile = parseDetector(json, file);
  if (f.groupSize !== 1) throw new Error(`detector file ${file}: groupSize ${f.groupSize}: one input at a time needs a detector fitted at B = 1`);
  const g = f.densities.gradient, L = f.features.length;
  if (names.join() !== f.features.join()) throw new Error(`detector file ${file}: its ${L} features do not match the model's ${names.length} parameter tensors`);
  if (!g.kept.every((l) => g.variance[l] > 0)) throw new Error(`detector file ${file}: densities.gradient.kept names a feature with zero variance`);
  const thr = f.threshold95.gradient;
  if (!Number.isFinite(thr)) throw new Error(`detector file ${file}: threshold95.gradient ${thr} is not a finite number`);
  return {
    model: f.model.path, groupSize: 1, names: [...f.features], mean: Array.from(g.mean), variance: Array.from(g.variance), kept: Array.from(g.kept), threshold: thr, tpr: 0.95,
    nllMean: f.fit.nllMean,
    made: {
      ...f.made, sha256: f.model.sha256, fit: described(f.fit),
      threshold: f.calibration ? `95% of ${described(f.calibration)} (held out) score at or above it` : "in-sample: 95% of the fit groups score at or above it",
    },
  };
}

/** The score of a row of log f_l: the sum of the kept features' Gaussian log densities (as DiagonalGaussian.score). */
export function scoreRow(det: DiagonalDetector, logf: ArrayLike<number>): number {
  let s = 0;
  for (const l of det.kept) s += -0.5 * (LOG2PI + Math.log(det.variance[l]) + (logf[l] - det.mean[l]) ** 2 / det.variance[l]);
  return s;
}

/** Per-feature z-scores (log f_l - mean) / sd; NaN where the feature is not kept. */
export function zScores(det: DiagonalDetector, logf: ArrayLike<number>): number[] {
  const kept = new Set(det.kept);
  return det.names.map((_, l) => kept.has(l) ? (logf[l] - det.mean[l]) / Math.sqrt(det.variance[l]) : NaN);
}

/**
 * Makes `model.nll` the quantity the detector differentiates, as `npm run ood` does by default: the
 * NLL, except for the diffusion model, whose features are the gradient of the paper's score, the
 * L1 eps-loss at t = 1 with one noise draw per input (src/cli/ood.ts: --diffusion-score l1
 * --diffusion-t 1), not of its bound. Returns what nll() then measures, for labels.
 */
export function useDetectorScore(model: GenerativeModel): NllMeasure {
  if (model.kind === "diffusion") (model as unknown as Diffusion).setScore(PAPER_SCORE);
  return nllMeasure(model);
}

/** What a model's nll() measures now: a negative log-likelihood (bits/dim) or, for the diffusion model's eps-loss score, that loss. */
export interface NllMeasure {
  /** "nll" (report bitsPerDim) or "eps-loss" (report nllNats: the loss itself, mean over pixels). */
  kind: "nll" | "eps-loss";
  /** A table heading, e.g. "NLL" or "L1 eps-loss, t = 1". */
  short: string;
  label: string;
}

export function nllMeasure(model: GenerativeModel): NllMeasure {
  const s = model.kind === "diffusion" ? (model as unknown as Diffusion).score : undefined;
  if (s?.kind === "loss") {
    const what = s.loss === "l1" ? "|eps - eps_hat|" : "(eps - eps_hat)^2";
    return { kind: "eps-loss", short: `${s.loss.toUpperCase()} eps-loss, t = ${s.t}`, label: `${s.loss.toUpperCase()} eps-loss at t = ${s.t} (${scoreLabel(s)}: mean over pixels of ${what}, one noise draw; the detector's quantity, not a likelihood)` };
  }
  if (s?.kind === "elbo" && s.dropLast) return { kind: "nll", short: "NLL bound w/o t = T", label: "negative variational bound without its t = T KL term, bits/dim (stratified estimate)" };
  if (s?.kind === "elbo") return { kind: "nll", short: "NLL bound", label: "negative variational bound, bits/dim (stratified estimate)" };
  return { kind: "nll", short: "NLL", label: model.kind === "vae" ? "NLL: negative ELBO, bits/dim (one latent sample)" : "NLL, bits/dim" };
}

export type SaliencyTarget = "none" | "score" | number;

export interface Inspection {
  /**
   * NLL in bits/dim (the VAE: one-sample negative ELBO with the given noise): nllNats / (D ln 2).
   * Only a likelihood where measure.kind is "nll"; for the diffusion model's eps-loss score read nllNats.
   */
  bitsPerDim: number;
  /** model.nll of the input: nats, or the eps-loss itself (measure.kind "eps-loss"). */
  nllNats: number;
  measure: NllMeasure;
  logf: Float64Array;
  z: number[];
  score: number;
  /** score >= threshold */
  inDistribution: boolean;
  /** d target / d input, one value per pixel (C*H*W), or null for "none". */
  saliency: Float64Array | null;
}

/**
 * Inspects one 8-bit image (C*H*W bytes in the model's layout). `noiseSeed` seeds the VAE's
 * latent sample (the features are reproducible for a given seed); `saliency` picks the map's target:
 * the detector's score, one feature's log f_l (its index), or none (no second backward pass).
 */
export async function inspectImage(model: GenerativeModel, image: Uint8Array, det: DiagonalDetector, o: InspectOptions = {}): Promise<Inspection> {
  if (image.length !== model.dims) throw new Error(`inspect: image has ${image.length} bytes, the model takes ${model.dims}`);
  const set = makeSet("input", image, new Uint8Array([255]), ...model.imageShape);
  const x = model.input(set, [0]);
  try {
    return await inspectInput(model, x, det, o);
  } finally {
    x.dispose();
  }
}

export interface InspectOptions {
  saliency?: SaliencyTarget;
  noiseSeed?: number;
}

/** The same for one input already in model space (x: [1, C, H, W], the model's dtype); the saliency is w.r.t. x. */
export async function inspectInput(model: GenerativeModel, x: T.Tensor, det: DiagonalDetector, o: InspectOptions = {}): Promise<Inspection> {
  const target = o.saliency ?? "score";
  if (typeof target === "number" && !(Number.isInteger(target) && target >= 0 && target < det.names.length)) {
    throw new Error(`inspect: saliency layer ${target} out of range [0, ${det.names.length})`);
  }
  if (x.shape[0] !== 1) throw new Error(`inspect: one input at a time (got a batch of ${x.shape[0]})`);
  const named = model.namedParameters();
  const params = named.map(([, p]) => p);
  const { backend, dtype } = params[0];
  const gen = new T.Generator(o.noiseSeed ?? 0);
  const shape = model.noiseShape(1);
  const withSaliency = target !== "none";
  const out = T.tidy(() => {
    const xi = T.reshape(x, x.shape); // a leaf of our own, so x's own requiresGrad is untouched
    const leaf = withSaliency ? xi.detach().requireGrad() : xi;
    const noise = shape ? T.randn(gen, shape, { backend, dtype }) : undefined;
    const nll = T.sum(model.nll(leaf, { noise }));
    const grads = T.grad(nll, params, { createGraph: withSaliency });
    const perLayer = grads.map((g, i) => {
      if (!g) throw new Error(`inspect: parameter ${named[i][0]} does not reach the NLL`);
      return T.reshape(T.log(T.sumSquares(g)), [1]);
    });
    const logf = T.concat(perLayer, 0);
    let sal: T.Tensor | null = null;
    if (withSaliency) {
      let y: T.Tensor;
      if (target === "score") {
        // The score up to a constant, from the kept features' own nodes only: an unscored feature can
        // be log 0 = -inf for this input (the diffusion model's output bias under the L1 loss when
        // the signs of eps - eps_hat balance), and a zero weight on it would still give 0 * inf = NaN.
        const K = det.kept.length;
        const mean = T.tensor(det.kept.map((l) => det.mean[l]), [K], { backend, dtype });
        const w = T.tensor(det.kept.map((l) => -0.5 / det.variance[l]), [K], { backend, dtype });
        y = T.sum(T.mul(T.square(T.sub(T.concat(det.kept.map((l) => perLayer[l]), 0), mean)), w));
      } else y = perLayer[target as number];
      sal = T.grad(T.sum(y), [leaf])[0];
      if (!sal) throw new Error("inspect: the saliency target does not depend on the input");
    }
    return { nll, logf, sal };
  });
  const nllNats = (await out.nll.data())[0];
  const logf = Float64Array.from(await out.logf.data());
  const saliency = out.sal ? Float64Array.from(await out.sal.data()) : null;
  out.nll.dispose();
  out.logf.dispose();
  out.sal?.dispose();
  const score = scoreRow(det, logf);
  return { bitsPerDim: nllNats / (model.dims * LN2), nllNats, measure: nllMeasure(model), logf, z: zScores(det, logf), score, inDistribution: score >= det.threshold, saliency };
}
