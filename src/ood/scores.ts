// The score registry: every way fimscope scores an input (or a group of B inputs), defined once:
// its name, what it reads, how it is fitted on in-distribution data, how it scores, and how its
// fitted parameters are written to and checked in a detector file. The `ood` table, the detector
// format, `fit`/`score` and the page all derive from this list. Higher score = more
// in-distribution, always.
//
// Two kinds:
// - feature scores read a group's row of layer features log f_l (floored by the fit's
//   FeatureSpace: density.ts) and its objective value (the NLL, or a diffusion model's eps-loss);
//   they are cheap, saved in detector files and scored by `score`.
// - gradient scores (the full FIM by Woodbury) read the per-group gradient vectors; their fitted
//   state is P x N floats, so they are computed by `ood --fim` and not saved.
//
// Adding a score: one entry in FEATURE_SCORES (name, about, fit, check, scorer). Nothing else
// changes: `ood` gets a column in its detail table, detector files carry its parameters,
// quantiles and threshold, `score` prints it (docs/architecture.md, "Adding a score").
import { ChiSquarePerLayer, type ChiSquareParams, DiagonalGaussian, type DiagonalParams, type DroppedFeature, FeatureSpace, FisherCombined, FullGaussian, type FullParams, NaiveTotalNorm } from "./density.ts";

/** What a feature score is fitted on: floored rows (FeatureSpace.apply) and the objective's values. */
export interface FitRows {
  /** Floored rows of log f_l, one per fit group. */
  rows: Float64Array[];
  /** The objective's value per fit group (objective.report units). */
  nll: Float64Array;
  /** The features every score uses (FeatureSpace.kept) and their count L. */
  kept: number[];
  L: number;
}

/** What a detector file's parameters are checked against. */
export interface CheckContext {
  L: number;
  kept: number[];
  /** An error naming the field: `fail("densities.gradient.variance", "must be ...")`. */
  fail: (field: string, why: string) => Error;
}

export interface FeatureScore<P = unknown> {
  readonly name: string;
  /** One line for docs, reports and the page. */
  readonly about: string;
  /** Fits on in-distribution rows; the result is JSON (it goes into detector files as it is). */
  fit(d: FitRows): P;
  /** Checks parameters read from a file for meaning (not only type); throws ctx.fail(...). */
  check(p: unknown, ctx: CheckContext): P;
  /** A scorer of floored rows from fitted (or checked) parameters. */
  scorer(p: P, ctx: { kept: number[]; L: number }): (row: Float64Array, nll: number) => number;
}

// ---- checks shared by the entries ----

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

function numbers(v: unknown, n: number, field: string, ctx: CheckContext, o: { positive?: boolean; only?: number[] } = {}): Float64Array {
  if (!Array.isArray(v) || v.length !== n) throw ctx.fail(field, `must be ${n} numbers`);
  const need = new Set(o.only ?? [...Array(n).keys()]);
  const out = new Float64Array(n).fill(NaN);
  v.forEach((x, i) => {
    if (!need.has(i)) return;
    if (typeof x !== "number" || !Number.isFinite(x)) throw ctx.fail(field, `entry ${i} is ${JSON.stringify(x)}, not a finite number`);
    if (o.positive && !(x > 0)) throw ctx.fail(field, `entry ${i} is ${x}; it must be positive`);
    out[i] = x;
  });
  return out;
}

function keptList(v: unknown, field: string, ctx: CheckContext): number[] {
  if (!Array.isArray(v)) throw ctx.fail(field, "must be a list of feature indices");
  const want = ctx.kept.join();
  if (v.join() !== want) throw ctx.fail(field, `is [${v.slice(0, 8).join(", ")}${v.length > 8 ? ", ..." : ""}], but the detector's features.kept is [${ctx.kept.slice(0, 8).join(", ")}${ctx.kept.length > 8 ? ", ..." : ""}] (every score uses the same kept features)`);
  return [...ctx.kept];
}

// ---- the entries ----

const likelihood: FeatureScore<Record<string, never>> = {
  name: "likelihood",
  about: "minus the objective's value (the NLL in bits/dim; a diffusion model's eps-loss): the likelihood baseline",
  fit: () => ({}),
  check: (p, ctx) => {
    if (!isObj(p) || Object.keys(p).length) throw ctx.fail("scores.likelihood", "must be {}");
    return {};
  },
  scorer: () => (_row, nll) => -nll,
};

interface TypicalityParams { centre: number }
const typicality: FeatureScore<TypicalityParams> = {
  name: "typicality",
  about: "minus the distance of the objective's value from its fit mean (Nalisnick et al.'s typicality test)",
  fit: (d) => ({ centre: d.nll.reduce((s, v) => s + v, 0) / d.nll.length }),
  check: (p, ctx) => {
    if (!isObj(p) || typeof p.centre !== "number" || !Number.isFinite(p.centre)) throw ctx.fail("scores.typicality.centre", "must be a finite number");
    return { centre: p.centre };
  },
  scorer: (p) => (_row, nll) => -Math.abs(nll - p.centre),
};

function checkDiagonal(p: unknown, ctx: CheckContext, field: string): DiagonalParams {
  if (!isObj(p)) throw ctx.fail(field, "must be { mean, variance, kept }");
  const kept = keptList(p.kept, `${field}.kept`, ctx);
  const mean = numbers(p.mean, ctx.L, `${field}.mean`, ctx, { only: kept });
  const variance = numbers(p.variance, ctx.L, `${field}.variance`, ctx, { only: kept, positive: true });
  return { mean: Array.from(mean), variance: Array.from(variance), kept };
}
const diagonal = (p: DiagonalParams) => DiagonalGaussian.fromParams(p);

const gradient: FeatureScore<DiagonalParams> = {
  name: "gradient",
  about: "the method: sum over layers of the log density of log f_l under a Gaussian fitted per layer (the FIM's layer-diagonal blocks)",
  fit: (d) => new DiagonalGaussian(d.rows, d.L, d.kept).params(),
  check: (p, ctx) => checkDiagonal(p, ctx, "scores.gradient"),
  scorer: (p) => {
    const g = diagonal(p);
    return (row) => g.score(row);
  },
};

const fisher: FeatureScore<DiagonalParams> = {
  name: "gradient-fisher",
  about: "Fisher's method: the sum over layers of the log two-sided p-value of log f_l under its fitted Gaussian",
  fit: (d) => new DiagonalGaussian(d.rows, d.L, d.kept).params(),
  check: (p, ctx) => checkDiagonal(p, ctx, "scores.gradient-fisher"),
  scorer: (p) => {
    const f = new FisherCombined(diagonal(p));
    return (row) => f.score(row);
  },
};

function fullScore(name: string, shrink: "ridge" | "ledoit-wolf", about: string): FeatureScore<FullParams> {
  return {
    name,
    about,
    fit: (d) => new FullGaussian(d.rows, d.L, { shrink, kept: d.kept }).params(),
    check: (p, ctx) => {
      const field = `scores.${name}`;
      if (!isObj(p)) throw ctx.fail(field, "must be { mean, kept, cov, shrinkage }");
      const kept = keptList(p.kept, `${field}.kept`, ctx), k = kept.length;
      const mean = numbers(p.mean, ctx.L, `${field}.mean`, ctx, { only: kept });
      const cov = numbers(p.cov, k * k, `${field}.cov`, ctx);
      for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) if (cov[i * k + j] !== cov[j * k + i]) throw ctx.fail(`${field}.cov`, `is not symmetric (entries ${i},${j} and ${j},${i} differ)`);
      const sh = p.shrinkage;
      if (!isObj(sh) || sh.kind !== shrink || typeof sh.value !== "number" || !(sh.value >= 0 && sh.value <= 1)) throw ctx.fail(`${field}.shrinkage`, `must be { kind: "${shrink}", value in [0, 1] }`);
      const out: FullParams = { mean: Array.from(mean), kept, cov: Array.from(cov), shrinkage: { kind: shrink, value: sh.value } };
      try {
        new FullGaussian(out);
      } catch (e) {
        throw ctx.fail(`${field}.cov`, `is not positive definite (${(e as Error).message})`);
      }
      return out;
    },
    scorer: (p) => {
      const g = new FullGaussian(p);
      return (row) => g.score(row);
    },
  };
}

const naive: FeatureScore<Record<string, never>> = {
  name: "gradient-naive",
  about: "minus the log of the total squared gradient norm over the kept layers (no density)",
  fit: () => ({}),
  check: (p, ctx) => {
    if (!isObj(p) || Object.keys(p).length) throw ctx.fail("scores.gradient-naive", "must be {}");
    return {};
  },
  scorer: (_p, ctx) => {
    const n = new NaiveTotalNorm();
    return (row) => n.score(ctx.kept.map((l) => row[l]));
  },
};

const chi2: FeatureScore<ChiSquareParams> = {
  name: "gradient-chi2",
  about: "a scaled chi-square per layer on f_l itself (moments fitted), log densities summed",
  fit: (d) => new ChiSquarePerLayer(d.rows, d.L, d.kept).params(),
  check: (p, ctx) => {
    const field = "scores.gradient-chi2";
    if (!isObj(p) || !Array.isArray(p.kept)) throw ctx.fail(field, "must be { k, s, kept }");
    const allowed = new Set(ctx.kept);
    const kept = p.kept as unknown[];
    if (!kept.length) throw ctx.fail(`${field}.kept`, "must list at least one feature (a score over no layer is 0 for every input)");
    if (!kept.every((l, i) => Number.isInteger(l) && allowed.has(l as number) && (i === 0 || (l as number) > (kept[i - 1] as number)))) {
      throw ctx.fail(`${field}.kept`, "must list increasing feature indices from features.kept");
    }
    const k = numbers(p.k, ctx.L, `${field}.k`, ctx, { only: kept as number[], positive: true });
    const s = numbers(p.s, ctx.L, `${field}.s`, ctx, { only: kept as number[], positive: true });
    return { k: Array.from(k), s: Array.from(s), kept: kept as number[] };
  },
  scorer: (p) => {
    const c = ChiSquarePerLayer.fromParams(p);
    return (row) => c.score(row);
  },
};

/** Every feature score, in table order: the registry (a score added here reaches the ood table, detector files, score and the page). */
export const FEATURE_SCORES: FeatureScore<unknown>[] = [
  likelihood, typicality, gradient,
  fullScore("gradient-fullcov", "ridge", "a full-covariance Gaussian over the kept layers' log f_l (ridge: 1e-3 of the mean variance)"),
  fullScore("gradient-fullcov-lw", "ledoit-wolf", "a full-covariance Gaussian, the correlations shrunk toward the diagonal with the Ledoit-Wolf intensity"),
  naive, chi2, fisher,
] as FeatureScore<unknown>[];

/** The gradient scores (src/ood/woodbury.ts), computed by `ood --fim`, not saved in detector files. */
export const GRADIENT_SCORES = [
  { name: "gradient-fim", about: "g^T F_N^{-1} g with the full empirical FIM of the fit gradients plus lambda I (Woodbury), negated" },
  { name: "gradient-fim-block", about: "the same with F block-diagonal over parameter tensors, summed over layers, negated" },
] as const;

/** The registry's names, in table order (read from it on every call). */
export function featureScoreNames(): string[] {
  return FEATURE_SCORES.map((s) => s.name);
}
/** The `ood` table's columns (the rest are in its detail table). */
export const MAIN_SCORES = ["likelihood", "typicality", "gradient"];

export function featureScore(name: string): FeatureScore<unknown> {
  const s = FEATURE_SCORES.find((x) => x.name === name);
  if (!s) throw new Error(`score '${name}' is not a feature score (allowed: ${featureScoreNames().join(", ")})`);
  return s;
}

/** Every feature score fitted on the same rows: the feature space, each score's parameters and scorer. */
export class FittedScores {
  readonly params: Record<string, unknown>;
  readonly #scorers: Map<string, (row: Float64Array, nll: number) => number>;
  constructor(readonly names: string[], readonly space: FeatureSpace, params: Record<string, unknown>) {
    this.params = params;
    const ctx = { kept: space.kept, L: names.length };
    this.#scorers = new Map(FEATURE_SCORES.filter((s) => s.name in params).map((s) => [s.name, s.scorer(params[s.name], ctx)]));
  }

  /** Fits the feature space and then every feature score on the fit groups' rows (raw log f_l) and values. */
  static fit(names: string[], logf: ArrayLike<number>[], nll: ArrayLike<number>): FittedScores {
    if (logf.length !== nll.length) throw new Error(`scores: ${logf.length} feature rows but ${nll.length} objective values`);
    for (const [i, v] of Array.from(nll).entries()) if (!Number.isFinite(v)) throw new Error(`scores: fit group ${i} has objective value ${v}`);
    const space = FeatureSpace.fit(logf, names);
    if (!space.kept.length) throw new Error(`scores: every one of the ${names.length} features is constant on the ${logf.length} fit groups; nothing to fit`);
    const d: FitRows = { rows: logf.map((r) => space.apply(r)), nll: Float64Array.from(nll), kept: space.kept, L: names.length };
    return new FittedScores(names, space, Object.fromEntries(FEATURE_SCORES.map((s) => [s.name, s.fit(d)])));
  }

  get dropped(): DroppedFeature[] {
    return this.space.dropped;
  }

  /** A raw row (log f_l) floored; `what` names it in errors. */
  floor(row: ArrayLike<number>, what = "row"): Float64Array {
    return this.space.apply(row, what, this.names);
  }

  /** The score `name` of a floored row. */
  score(name: string, row: Float64Array, nll: number): number {
    const f = this.#scorers.get(name);
    if (!f) throw new Error(`score '${name}' is not fitted here (fitted: ${[...this.#scorers.keys()].join(", ")})`);
    return f(row, nll);
  }

  /** Every fitted score of a raw row. */
  all(row: ArrayLike<number>, nll: number, what = "row"): Record<string, number> {
    const r = this.floor(row, what);
    return Object.fromEntries([...this.#scorers.entries()].map(([n, f]) => [n, f(r, nll)]));
  }

  /** The diagonal Gaussian (z-scores, saliency, diagnostics). */
  get diagonal(): DiagonalGaussian {
    return DiagonalGaussian.fromParams(this.params.gradient as DiagonalParams);
  }
}
