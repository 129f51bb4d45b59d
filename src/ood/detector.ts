// A fitted OOD detector as a file: fit once on in-distribution data, score any inputs later (also in
// a browser: nothing here touches the file system). The JSON format, version 2:
//
//   format: "fimscope-detector", version: 2
//   model: { path, sha256 (hex of the weights file), kind, image: [C, H, W], objective }
//          (objective: what the features differentiate, src/models/objective.ts: "nll", "l1-t1", ...)
//   groupSize: B (inputs per scored group; the features are those of the group's summed objective)
//   seed: the draws' seed (each input's draws come from its pixels and this seed, src/ood/loop.ts)
//   features: { names: parameter tensor names in the model's order, sizes: their parameter counts,
//               floor: per feature, the floor of log f (density.ts FeatureSpace), kept: the features
//               every score uses, dropped: [{ feature, reason }] }
//   fit: { data, groups, nllMean, nllSd, selection? } (the objective's value per input, its unit's
//        mean and SD over the fit groups; selection: which images of a packaged set)
//   calibration? { data, groups, selection? }: held-out in-distribution groups whose scores set the
//        quantiles and thresholds (else the fit groups', in-sample)
//   scores: { <name>: fitted parameters } for every feature score of the registry (scores.ts)
//   method: which score the verdict uses (default "gradient", the method's diagonal Gaussian)
//   quantiles: per score, 101 values: the 0th, 1st, ..., 100th percentiles of the fit (or
//        calibration) groups' scores; threshold95: per score, the score 95% of them reach
//   made? { ... }: how the file was made (command, backend, notes), free-form
//
// Every field is checked for meaning when read (parseDetector): finite numbers, positive
// variances, ordered quantiles, a positive definite covariance, kept features that are unique and
// in range, scores' parameters that use the same kept features; against a model (checkAgainstModel):
// names, sizes and the objective. Errors name the file and the field.
import type { SetSelection } from "../data/selection.ts";
import { type DroppedFeature, FeatureSpace } from "./density.ts";
import { type CheckContext, featureScoreNames, FEATURE_SCORES, FittedScores } from "./scores.ts";

export const DETECTOR_FORMAT = "fimscope-detector";
export const DETECTOR_VERSION = 2;
/** Files larger than this are refused before they are read (a detector is ~100 KB to a few MB). */
export const DETECTOR_MAX_BYTES = 64 * 2 ** 20;

export interface DetectorModel {
  path: string;
  sha256: string;
  kind: string;
  image: [number, number, number];
  objective: string;
}

export interface DetectorFeatures {
  names: string[];
  sizes: number[];
  floor: number[];
  kept: number[];
  dropped: DroppedFeature[];
}

export interface DetectorFile {
  format: typeof DETECTOR_FORMAT;
  version: typeof DETECTOR_VERSION;
  model: DetectorModel;
  groupSize: number;
  seed: number;
  features: DetectorFeatures;
  fit: { data: string; groups: number; nllMean: number; nllSd: number; selection?: SetSelection };
  calibration?: { data: string; groups: number; selection?: SetSelection };
  scores: Record<string, unknown>;
  method: string;
  quantiles: Record<string, number[]>;
  threshold95: Record<string, number>;
  made?: Record<string, unknown>;
}

export interface FitInput {
  model: DetectorModel;
  groupSize: number;
  seed: number;
  names: string[];
  /** Parameter count of each feature's tensor. */
  sizes: number[];
  /** Rows of log f_l, one per fit group (raw: -inf where a norm is 0). */
  logf: ArrayLike<number>[];
  /** The objective's value per fit group (its unit). */
  nll: ArrayLike<number>;
  data: string;
  /** Which images of a packaged set were fitted on. */
  selection?: SetSelection;
  /** Held-out groups whose scores set the quantiles and thresholds (default: the fit groups'). */
  calibration?: { logf: ArrayLike<number>[]; nll: ArrayLike<number>; data: string; selection?: SetSelection };
  method?: string;
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

function meanSd(v: ArrayLike<number>): [number, number] {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i] / v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - m) ** 2 / v.length;
  return [m, Math.sqrt(s)];
}

/** Fits every feature score on the fit rows and records the fit (or calibration) scores' quantiles. */
export function fitDetector(f: FitInput): DetectorFile {
  const L = f.names.length;
  if (f.logf.length < 2) throw new Error(`detector: need at least 2 fit groups, got ${f.logf.length}`);
  if (f.sizes.length !== L) throw new Error(`detector: ${f.sizes.length} tensor sizes for ${L} features`);
  const fitted = FittedScores.fit(f.names, f.logf, f.nll);
  const method = f.method ?? "gradient";
  if (!featureScoreNames().includes(method)) throw new Error(`detector: method '${method}' is not a feature score (allowed: ${featureScoreNames().join(", ")})`);
  const c = f.calibration;
  if (c && (c.logf.length < 1 || c.logf.length !== c.nll.length)) throw new Error(`detector: calibration has ${c.logf.length} feature rows and ${c.nll.length} values`);
  const rows = c ? c.logf : f.logf, values = c ? c.nll : f.nll, what = c ? "calibration group" : "fit group";
  const quantiles: Record<string, number[]> = {}, thr: Record<string, number> = {};
  const all = Array.from(rows, (r, i) => fitted.all(r, values[i], `${what} ${i}`));
  for (const name of featureScoreNames()) {
    const s = all.map((x) => x[name]);
    const bad = s.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`detector: score ${name} of ${what} ${bad} is ${s[bad]}`);
    quantiles[name] = percentiles(s);
    thr[name] = threshold95(s);
  }
  const [nllMean, nllSd] = meanSd(f.nll);
  const sp = fitted.space;
  return {
    format: DETECTOR_FORMAT, version: DETECTOR_VERSION, model: { ...f.model }, groupSize: f.groupSize, seed: f.seed,
    features: { names: [...f.names], sizes: [...f.sizes], floor: Array.from(sp.floor), kept: [...sp.kept], dropped: sp.dropped.map((d) => ({ ...d })) },
    fit: { data: f.data, groups: f.logf.length, nllMean, nllSd, ...(f.selection ? { selection: { ...f.selection } } : {}) },
    ...(c ? { calibration: { data: c.data, groups: c.logf.length, ...(c.selection ? { selection: { ...c.selection } } : {}) } } : {}),
    scores: fitted.params, method, quantiles, threshold95: thr, ...(f.made ? { made: f.made } : {}),
  };
}

export interface LayerContribution {
  name: string;
  /** (log f_l - fit mean) / fit sd, of the floored row. */
  z: number;
}

export interface InputScore {
  /** The objective's value per input of the group (bits/dim for an NLL). */
  nll: number;
  /** The detector's method's score (higher = more in-distribution). */
  score: number;
  /** Percent of fit (or calibration) groups scoring at or below this one (interpolated). */
  percentile: number;
  /** "in" at or above the 95%-TPR threshold, else "ood". */
  verdict: "in" | "ood";
  /** The three features with the largest |z| (the largest terms of the diagonal Gaussian's sum). */
  top: LayerContribution[];
  /** Every score. */
  scores: Record<string, number>;
}

export class Detector {
  readonly file: DetectorFile;
  readonly fitted: FittedScores;
  constructor(file: DetectorFile) {
    this.file = file;
    const f = file.features;
    this.fitted = new FittedScores(f.names, new FeatureSpace(Float64Array.from(f.floor), f.kept, f.dropped), file.scores);
  }
  get names(): string[] {
    return this.file.features.names;
  }
  /** Scores one group: its feature row (raw log f_l) and the objective's value. */
  scoreRow(logf: ArrayLike<number>, nll: number, topK = 3): InputScore {
    const f = this.file;
    if (logf.length !== f.features.names.length) throw new Error(`detector: feature row has ${logf.length} values, the detector has ${f.features.names.length} features`);
    const row = this.fitted.floor(logf);
    const scores: Record<string, number> = {};
    for (const name of featureScoreNames()) scores[name] = this.fitted.score(name, row, nll);
    const score = scores[f.method];
    const d = this.fitted.diagonal;
    const top = d.kept.map((l) => ({ name: f.features.names[l], z: d.z(row, l) }))
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

/**
 * Refuses a detector whose features are not the model's parameter tensors (names and sizes, in
 * order) or whose objective the model does not offer; before any work.
 */
export function checkAgainstModel(det: DetectorFile, shapes: [string, number[]][], modelFile: string, detectorFile = "detector"): void {
  const names = shapes.map(([n]) => n), sizes = shapes.map(([, s]) => s.reduce((a, b) => a * b, 1)), f = det.features;
  if (names.length !== f.names.length) throw new Error(`${detectorFile}: has ${f.names.length} features, but ${modelFile} has ${names.length} parameter tensors (refit with npm run fit)`);
  const i = names.findIndex((n, k) => n !== f.names[k] || sizes[k] !== f.sizes[k]);
  if (i >= 0) throw new Error(`${detectorFile}: feature ${i} is ${f.names[i]} (${f.sizes[i]} parameters), but ${modelFile}'s parameter tensor ${i} is ${names[i]} (${sizes[i]}); refit with npm run fit`);
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const isInt = (v: unknown, min: number): v is number => Number.isInteger(v) && (v as number) >= min;

/** Checks a parsed JSON value is a detector this version reads, for meaning; errors name the file and the field. */
export function parseDetector(json: unknown, file: string): DetectorFile {
  const fail = (field: string, why: string) => new Error(`detector file ${file}: ${field} ${why}`);
  const d = json as Record<string, unknown> | null;
  if (!isObj(d) || d.format !== DETECTOR_FORMAT) throw new Error(`detector file ${file}: not a fimscope detector (no "format": "${DETECTOR_FORMAT}")`);
  if (d.version !== DETECTOR_VERSION) {
    throw new Error(`detector file ${file}: it is format version ${JSON.stringify(d.version)}; this fimscope reads version ${DETECTOR_VERSION} only (refit it with npm run fit)`);
  }
  const m = d.model as Record<string, unknown>;
  if (!isObj(m) || typeof m.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(m.sha256) || typeof m.path !== "string" || typeof m.kind !== "string" || typeof m.objective !== "string" ||
    !(Array.isArray(m.image) && m.image.length === 3 && m.image.every((v) => isInt(v, 1)))) {
    throw fail("model", "must hold path, kind, objective, a 64-digit hex sha256 and image [C, H, W] of positive integers");
  }
  if (!isInt(d.groupSize, 1)) throw fail("groupSize", `must be a positive integer, got ${JSON.stringify(d.groupSize)}`);
  if (!isInt(d.seed, 0)) throw fail("seed", `must be a non-negative integer, got ${JSON.stringify(d.seed)}`);
  const f = d.features as Record<string, unknown>;
  if (!isObj(f) || !Array.isArray(f.names) || f.names.length === 0 || !f.names.every((x) => typeof x === "string")) throw fail("features.names", "must be a non-empty list of parameter tensor names");
  const names = f.names as string[], L = names.length;
  if (new Set(names).size !== L) throw fail("features.names", "has a name twice");
  if (!Array.isArray(f.sizes) || f.sizes.length !== L || !f.sizes.every((v) => isInt(v, 1))) throw fail("features.sizes", `must be ${L} positive integers`);
  if (!Array.isArray(f.floor) || f.floor.length !== L || !f.floor.every((v) => typeof v === "number" && Number.isFinite(v))) throw fail("features.floor", `must be ${L} finite numbers`);
  if (!Array.isArray(f.kept) || f.kept.length === 0) throw fail("features.kept", "must list at least one feature (a detector that scores nothing would call every input in-distribution)");
  const kept = f.kept as unknown[];
  if (!kept.every((l, i) => isInt(l, 0) && (l as number) < L && (i === 0 || (l as number) > (kept[i - 1] as number)))) throw fail("features.kept", `must list feature indices 0..${L - 1}, increasing, each once`);
  if (!Array.isArray(f.dropped) || !f.dropped.every((x) => isObj(x) && isInt(x.feature, 0) && (x.feature as number) < L && typeof x.reason === "string")) throw fail("features.dropped", "must be a list of { feature, reason }");
  const dropped = (f.dropped as DroppedFeature[]).map((x) => x.feature);
  if (dropped.some((l) => (kept as number[]).includes(l)) || dropped.length + kept.length !== L) throw fail("features.dropped", "and features.kept must split the features between them");
  const fit = d.fit as Record<string, unknown>;
  if (!isObj(fit) || typeof fit.data !== "string" || !isInt(fit.groups, 2) || typeof fit.nllMean !== "number" || !Number.isFinite(fit.nllMean) || typeof fit.nllSd !== "number" || !(fit.nllSd >= 0)) {
    throw fail("fit", "must hold data, groups (at least 2), a finite nllMean and nllSd >= 0");
  }
  const sel = (v: unknown, what: string) => {
    if (v === undefined) return;
    const x = v as Partial<SetSelection>;
    if (!isObj(v) || typeof x.set !== "string" || (x.split !== "train" && x.split !== "test") || !(x.seed === null || Number.isInteger(x.seed)) || !isInt(x.from, 0) || !isInt(x.to, 1) || !(x.from! < x.to!)) {
      throw fail(what, "must be { set, split: train|test, seed: integer or null, from < to }");
    }
  };
  sel(fit.selection, "fit.selection");
  if (d.calibration !== undefined) {
    const c = d.calibration as Record<string, unknown>;
    if (!isObj(c) || typeof c.data !== "string" || !isInt(c.groups, 1)) throw fail("calibration", "must hold data and groups");
    sel(c.selection, "calibration.selection");
  }
  if (d.made !== undefined && !isObj(d.made)) throw fail("made", "must be an object");
  const scores = d.scores as Record<string, unknown>;
  if (!isObj(scores)) throw fail("scores", "must be an object of fitted scores");
  const ctx: CheckContext = { L, kept: kept as number[], fail };
  const checked: Record<string, unknown> = {};
  for (const s of FEATURE_SCORES) {
    if (!(s.name in scores)) throw fail(`scores.${s.name}`, "is missing");
    checked[s.name] = s.check(scores[s.name], ctx);
  }
  const extra = Object.keys(scores).filter((k) => !featureScoreNames().includes(k));
  if (extra.length) throw fail("scores", `has unknown score(s) ${extra.join(", ")} (known: ${featureScoreNames().join(", ")})`);
  if (typeof d.method !== "string" || !featureScoreNames().includes(d.method)) throw fail("method", `must be one of ${featureScoreNames().join(", ")}, got ${JSON.stringify(d.method)}`);
  const q = d.quantiles as Record<string, unknown>, t = d.threshold95 as Record<string, unknown>;
  if (!isObj(q) || !isObj(t)) throw fail("quantiles", "and threshold95 must be objects with one entry per score");
  for (const name of featureScoreNames()) {
    const qs = q[name];
    if (!Array.isArray(qs) || qs.length !== 101 || !qs.every((v) => typeof v === "number" && Number.isFinite(v))) throw fail(`quantiles.${name}`, "must be 101 finite numbers");
    const i = qs.findIndex((v, k) => k > 0 && v < qs[k - 1]);
    if (i >= 0) throw fail(`quantiles.${name}`, `must not decrease (entry ${i} is ${qs[i]}, below entry ${i - 1}, ${qs[i - 1]})`);
    const th = t[name];
    if (typeof th !== "number" || !Number.isFinite(th)) throw fail(`threshold95.${name}`, `must be a finite number, got ${JSON.stringify(th)}`);
    if (th < qs[0] || th > qs[100]) throw fail(`threshold95.${name}`, `${th} lies outside the score's quantiles [${qs[0]}, ${qs[100]}]`);
  }
  return { ...(d as unknown as DetectorFile), scores: checked };
}

/** Parses detector JSON text (one-line errors; a UTF-8 byte-order mark is allowed). */
export function readDetectorText(text: string, file: string): Detector {
  let json: unknown;
  try {
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new Error(`detector file ${file}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  return new Detector(parseDetector(json, file));
}

/** The detector as JSON text (numbers round-trip exactly, so a reloaded detector scores identically). */
export function detectorText(d: DetectorFile): string {
  return JSON.stringify(d) + "\n";
}
