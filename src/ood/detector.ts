// A fitted OOD detector as a file: fit once on in-distribution data, score any inputs later (also in
// a browser: nothing here touches the file system). The JSON format, version 1:
//
//   format: "fimscope-detector", version: 1
//   model: { path, sha256 (hex of the weights file), kind, image: [C, H, W] }
//   groupSize: B (inputs per scored group; the features are those of the group's summed NLL)
//   features: parameter tensor names, in the model's order (feature l = log ||grad_l NLL||^2)
//   fit: { data, groups, nllMean, nllSd, selection? } (NLL in bits/dim, mean per input of each group;
//        selection: which images of a packaged set, src/data/selection.ts)
//   calibration? { data, groups, selection? }: held-out in-distribution groups; when present the
//        quantiles and thresholds are theirs, not the fit groups' (the browser page's files)
//   densities: { gradient: DiagonalParams, "gradient-fullcov": FullParams,
//                "gradient-fullcov-lw": FullParams, "gradient-chi2": ChiSquareParams }
//   method: which score the verdict uses (default "gradient", the method's diagonal Gaussian)
//   quantiles: per method, 101 values: the 0th, 1st, ..., 100th percentiles of the fit groups' scores
//   threshold95: per method, the score that 95% of those groups reach (verdict "in" at or above it)
//   made? { ... }: how the file was made (command, backend, notes), free-form
//
// Scores are higher = more in-distribution, as in density.ts. Without a calibration set the
// quantiles and thresholds are those of the fit data itself (in-sample), so a fresh
// in-distribution input lands slightly lower on average. `npm run fit` and the page's files
// (scripts/web/make_assets.ts, with calibration) are both this format.
import type { SetSelection } from "../data/selection.ts";
import { ChiSquarePerLayer, type ChiSquareParams, DiagonalGaussian, type DiagonalParams, FullGaussian, type FullParams } from "./density.ts";

export const DETECTOR_FORMAT = "fimscope-detector";
export const DETECTOR_VERSION = 1;

export const DETECTOR_METHODS = ["gradient", "gradient-fullcov", "gradient-fullcov-lw", "gradient-chi2", "likelihood", "typicality"] as const;
export type DetectorMethod = (typeof DETECTOR_METHODS)[number];

export interface DetectorModel {
  path: string;
  sha256: string;
  kind: string;
  image: [number, number, number];
}

export interface DetectorFile {
  format: typeof DETECTOR_FORMAT;
  version: typeof DETECTOR_VERSION;
  model: DetectorModel;
  groupSize: number;
  features: string[];
  fit: { data: string; groups: number; nllMean: number; nllSd: number; selection?: SetSelection };
  calibration?: { data: string; groups: number; selection?: SetSelection };
  densities: {
    gradient: DiagonalParams;
    "gradient-fullcov": FullParams;
    "gradient-fullcov-lw": FullParams;
    "gradient-chi2": ChiSquareParams;
  };
  method: DetectorMethod;
  quantiles: Record<DetectorMethod, number[]>;
  threshold95: Record<DetectorMethod, number>;
  made?: Record<string, unknown>;
}

export interface FitInput {
  model: DetectorModel;
  groupSize: number;
  names: string[];
  /** Rows of log f_l, one per fit group. */
  logf: ArrayLike<number>[];
  /** Mean NLL per input of each fit group, bits/dim. */
  nll: ArrayLike<number>;
  data: string;
  /** Which images of a packaged set were fitted on. */
  selection?: SetSelection;
  /** Held-out groups whose scores set the quantiles and thresholds (default: the fit groups'). */
  calibration?: { logf: ArrayLike<number>[]; nll: ArrayLike<number>; data: string; selection?: SetSelection };
  method?: DetectorMethod;
  made?: Record<string, unknown>;
}

/** The p-th quantiles (p = 0..100) of values, by linear interpolation between order statistics. */
export function percentiles(values: ArrayLike<number>): number[] {
  const s = Float64Array.from(values).sort();
  return Array.from({ length: 101 }, (_, p) => {
    const pos = (p / 100) * (s.length - 1), i = Math.floor(pos), f = pos - i;
    return i + 1 < s.length ? s[i] * (1 - f) + s[i + 1] * f : s[i];
  });
}

/** Where v falls among the quantiles, in percent (0..100), interpolated; the inverse of percentiles(). */
export function percentileOf(q: ArrayLike<number>, v: number): number {
  if (!(v > q[0])) return 0;
  if (v >= q[100]) return 100;
  let i = 0;
  while (q[i + 1] < v) i++;
  // q[i] < v <= q[i+1]; ties (equal quantiles) take the upper end.
  const span = q[i + 1] - q[i];
  return i + (span > 0 ? (v - q[i]) / span : 1);
}

/** The score that at least 95% of the values reach (fprAtTpr's threshold rule). */
export function threshold95(values: ArrayLike<number>): number {
  const s = Float64Array.from(values).sort().reverse();
  return s[Math.max(0, Math.ceil(0.95 * s.length) - 1)];
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / v.length;
}

const finite = (v: number) => (v === Infinity ? Number.MAX_VALUE : v === -Infinity ? -Number.MAX_VALUE : v);

/** Fits every density on the fit rows and records the fit (or calibration) scores' quantiles. */
export function fitDetector(f: FitInput): DetectorFile {
  const L = f.names.length;
  if (f.logf.length < 2) throw new Error(`detector: need at least 2 fit groups, got ${f.logf.length}`);
  if (f.logf.length !== f.nll.length) throw new Error(`detector: ${f.logf.length} feature rows but ${f.nll.length} NLLs`);
  for (const r of f.logf) if (r.length !== L) throw new Error(`detector: a feature row has ${r.length} values, expected ${L} (one per feature name)`);
  const nllMean = mean(f.nll);
  const nllSd = Math.sqrt(mean(Array.from(f.nll, (v) => (v - nllMean) ** 2)));
  const densities: DetectorFile["densities"] = {
    gradient: new DiagonalGaussian(f.logf, L).params(),
    "gradient-fullcov": new FullGaussian(f.logf, L).params(),
    "gradient-fullcov-lw": new FullGaussian(f.logf, L, { shrink: "ledoit-wolf" }).params(),
    "gradient-chi2": new ChiSquarePerLayer(f.logf, L).params(),
  };
  const partial = { densities, fit: { data: f.data, groups: f.logf.length, nllMean, nllSd, ...(f.selection ? { selection: { ...f.selection } } : {}) } };
  const scorer = new Scorers(partial);
  const quantiles = {} as Record<DetectorMethod, number[]>, thr = {} as Record<DetectorMethod, number>;
  const c = f.calibration;
  if (c) {
    if (c.logf.length < 1 || c.logf.length !== c.nll.length) throw new Error(`detector: calibration has ${c.logf.length} feature rows and ${c.nll.length} NLLs`);
    for (const r of c.logf) if (r.length !== L) throw new Error(`detector: a calibration row has ${r.length} values, expected ${L}`);
  }
  const rows = c ? c.logf : f.logf, nlls = c ? c.nll : f.nll;
  for (const m of DETECTOR_METHODS) {
    const s = Array.from(rows, (r, i) => scorer.score(m, r, nlls[i]));
    // JSON has no infinities: a score of +-inf (the chi-square's log density at f_l = 0 when its
    // k < 2, a feature whose gradient is exactly 0 on some inputs) is kept as +-Number.MAX_VALUE.
    quantiles[m] = percentiles(s).map(finite);
    thr[m] = finite(threshold95(s));
  }
  return {
    format: DETECTOR_FORMAT, version: DETECTOR_VERSION, model: { ...f.model }, groupSize: f.groupSize, features: [...f.names],
    ...partial, ...(c ? { calibration: { data: c.data, groups: c.logf.length, ...(c.selection ? { selection: { ...c.selection } } : {}) } } : {}),
    method: f.method ?? "gradient", quantiles, threshold95: thr, ...(f.made ? { made: f.made } : {}),
  };
}

/** The densities rebuilt from their parameters, scoring one row by any method. */
class Scorers {
  readonly diag: DiagonalGaussian;
  readonly #full: FullGaussian;
  readonly #lw: FullGaussian;
  readonly #chi: ChiSquarePerLayer;
  readonly #nllMean: number;
  constructor(d: Pick<DetectorFile, "densities" | "fit">) {
    this.diag = DiagonalGaussian.fromParams(d.densities.gradient);
    this.#full = new FullGaussian(d.densities["gradient-fullcov"]);
    this.#lw = new FullGaussian(d.densities["gradient-fullcov-lw"]);
    this.#chi = ChiSquarePerLayer.fromParams(d.densities["gradient-chi2"]);
    this.#nllMean = d.fit.nllMean;
  }
  score(m: DetectorMethod, row: ArrayLike<number>, nll: number): number {
    switch (m) {
      case "gradient": return this.diag.score(row);
      case "gradient-fullcov": return this.#full.score(row);
      case "gradient-fullcov-lw": return this.#lw.score(row);
      case "gradient-chi2": return this.#chi.score(row);
      case "likelihood": return -nll;
      case "typicality": return -Math.abs(nll - this.#nllMean);
    }
  }
}

export interface LayerContribution {
  name: string;
  /** (log f_l - fit mean) / fit sd. */
  z: number;
}

export interface InputScore {
  /** Mean NLL per input of the group, bits/dim. */
  nll: number;
  /** The detector's method's score (higher = more in-distribution). */
  score: number;
  /** Percent of fit groups scoring at or below this one (interpolated). */
  percentile: number;
  /** "in" at or above the 95%-TPR threshold, else "ood". */
  verdict: "in" | "ood";
  /** The three features with the largest |z| (the largest terms of the diagonal Gaussian's sum). */
  top: LayerContribution[];
  /** Every method's score. */
  scores: Record<DetectorMethod, number>;
}

export class Detector {
  readonly file: DetectorFile;
  readonly #s: Scorers;
  constructor(file: DetectorFile) {
    this.file = file;
    this.#s = new Scorers(file);
  }
  get names(): string[] {
    return this.file.features;
  }
  /** Scores one group: its feature row (log f_l) and mean NLL in bits/dim. */
  scoreRow(logf: ArrayLike<number>, nll: number, topK = 3): InputScore {
    const f = this.file;
    if (logf.length !== f.features.length) throw new Error(`detector: feature row has ${logf.length} values, the detector has ${f.features.length} features`);
    const scores = {} as Record<DetectorMethod, number>;
    for (const m of DETECTOR_METHODS) scores[m] = this.#s.score(m, logf, nll);
    const score = scores[f.method];
    const d = this.#s.diag;
    const top = d.kept.map((l) => ({ name: f.features[l], z: d.z(logf, l) }))
      .sort((a, b) => Math.abs(b.z) - Math.abs(a.z)).slice(0, topK);
    return { nll, score, percentile: percentileOf(f.quantiles[f.method], score), verdict: score >= f.threshold95[f.method] ? "in" : "ood", top, scores };
  }
}

/** SHA-256 of bytes as lowercase hex (Web Crypto: Deno and browsers). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Refuses a model whose weights hash differs from the one the detector was fitted with. */
export function checkModelHash(det: DetectorFile, sha256: string, modelFile: string, detectorFile = "detector"): void {
  if (det.model.sha256 !== sha256) {
    throw new Error(`${detectorFile}: fitted on a model with SHA-256 ${det.model.sha256.slice(0, 16)}..., but ${modelFile} has ${sha256.slice(0, 16)}... (refit with npm run fit, or pass the model it was fitted on with --model)`);
  }
}

const isNums = (v: unknown, n?: number) => Array.isArray(v) && v.every((x) => typeof x === "number") && (n === undefined || v.length === n);

/** Checks a parsed JSON value is a detector this version reads; errors name the file and the field. */
export function parseDetector(json: unknown, file: string): DetectorFile {
  const fail = (why: string) => new Error(`detector file ${file}: ${why}`);
  const d = json as Partial<DetectorFile> | null;
  if (!d || typeof d !== "object" || d.format !== DETECTOR_FORMAT) throw fail(`not a fimscope detector (no "format": "${DETECTOR_FORMAT}")`);
  if (d.version !== DETECTOR_VERSION) throw fail(`version ${d.version}, this fimscope reads version ${DETECTOR_VERSION}`);
  const m = d.model;
  if (!m || typeof m.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(m.sha256) || typeof m.path !== "string" || typeof m.kind !== "string" || !isNums(m.image, 3)) {
    throw fail(`"model" must hold path, kind, a 64-digit hex sha256 and image [C, H, W]`);
  }
  if (!Number.isInteger(d.groupSize) || d.groupSize! < 1) throw fail(`"groupSize" must be a positive integer, got ${d.groupSize}`);
  if (!Array.isArray(d.features) || !d.features.every((x) => typeof x === "string") || d.features.length === 0) throw fail(`"features" must be a non-empty list of parameter names`);
  const L = d.features.length;
  if (!d.fit || typeof d.fit.nllMean !== "number") throw fail(`"fit" must hold nllMean`);
  const sel = (v: unknown, what: string) => {
    const x = v as Partial<SetSelection> | undefined;
    if (v === undefined) return;
    if (!x || typeof x.set !== "string" || (x.split !== "train" && x.split !== "test") || !(x.seed === null || Number.isInteger(x.seed)) || !Number.isInteger(x.from) || !Number.isInteger(x.to) || !(x.from! >= 0 && x.from! < x.to!)) {
      throw fail(`${what} must be { set, split: train|test, seed: integer or null, from < to }`);
    }
  };
  sel(d.fit.selection, "fit.selection");
  if (d.calibration !== undefined) {
    if (!d.calibration || typeof d.calibration.data !== "string" || !Number.isInteger(d.calibration.groups)) throw fail(`"calibration" must hold data and groups`);
    sel(d.calibration.selection, "calibration.selection");
  }
  if (d.made !== undefined && (!d.made || typeof d.made !== "object" || Array.isArray(d.made))) throw fail(`"made" must be an object`);
  const ds = d.densities;
  if (!ds) throw fail(`no "densities"`);
  const kept = (k: unknown, what: string) => {
    if (!Array.isArray(k) || !k.every((l) => Number.isInteger(l) && l >= 0 && l < L)) throw fail(`${what}.kept must list feature indices 0..${L - 1}`);
    return k.length;
  };
  // A feature that is not kept may have a non-finite fit mean (log f_l = -inf where a gradient is
  // exactly 0, e.g. a diffusion model's L1 output bias): JSON writes it as null.
  const values = (v: unknown, keptList: unknown, what: string) => {
    const keptSet = new Set(Array.isArray(keptList) ? keptList : []);
    if (!Array.isArray(v) || v.length !== L || !v.every((x, l) => typeof x === "number" || (x === null && !keptSet.has(l)))) throw fail(`${what} must be ${L} numbers (null only for features not kept)`);
  };
  if (!ds.gradient) throw fail(`no densities.gradient`);
  kept(ds.gradient.kept, "densities.gradient");
  values(ds.gradient.mean, ds.gradient.kept, "densities.gradient.mean");
  values(ds.gradient.variance, ds.gradient.kept, "densities.gradient.variance");
  for (const key of ["gradient-fullcov", "gradient-fullcov-lw"] as const) {
    const f = ds[key];
    if (!f) throw fail(`no densities.${key}`);
    const k = kept(f.kept, `densities.${key}`);
    values(f.mean, f.kept, `densities.${key}.mean`);
    if (!isNums(f.cov, k * k)) throw fail(`densities.${key}.cov must have ${k}x${k} = ${k * k} numbers`);
    if (!f.shrinkage || typeof f.shrinkage.value !== "number") throw fail(`densities.${key} needs shrinkage {kind, value}`);
  }
  const chi = ds["gradient-chi2"];
  if (!chi) throw fail(`no densities.gradient-chi2`);
  kept(chi.kept, "densities.gradient-chi2");
  values(chi.k, chi.kept, "densities.gradient-chi2.k");
  values(chi.s, chi.kept, "densities.gradient-chi2.s");
  if (!DETECTOR_METHODS.includes(d.method as DetectorMethod)) throw fail(`"method" must be one of ${DETECTOR_METHODS.join(", ")}, got ${JSON.stringify(d.method)}`);
  for (const meth of DETECTOR_METHODS) {
    if (!isNums(d.quantiles?.[meth], 101)) throw fail(`quantiles.${meth} must be 101 numbers`);
    if (typeof d.threshold95?.[meth] !== "number") throw fail(`threshold95.${meth} must be a number`);
  }
  return d as DetectorFile;
}

/** Parses detector JSON text (one-line errors). */
export function readDetectorText(text: string, file: string): Detector {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`detector file ${file}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  return new Detector(parseDetector(json, file));
}

/** The detector as JSON text (numbers round-trip exactly, so a reloaded detector scores identically). */
export function detectorText(d: DetectorFile): string {
  return JSON.stringify(d) + "\n";
}

