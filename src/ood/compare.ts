// Do the FIM-induced norms of one model agree with another's on the same inputs? For each model:
// per input, three novelty scores (higher = more novel) from the gradient of its default objective
// (its NLL; a diffusion model's L1 eps-loss at t = 1),
//   diag:   -log density of the method's diagonal Gaussian over log f_l (fitted on a fit set),
//   logsum: sum_l log f_l (the log of the product of the layer norms),
//   fim:    log q, q = g^T F_N^{-1} g the full-FIM norm through Woodbury (F_N from the fit set's gradients),
// and the per-layer log f_l, every log f_l floored at the fit's floors (the method's rule for a
// zero norm, density.ts FeatureSpace: the diffusion model's output bias under the L1 loss).
// Between two models: Pearson and Spearman correlations of each score with bootstrap intervals, overall and per input set; the overlap of their top 5% most novel
// inputs; how well one model's score predicts the other's verdict (flagged at its 95%-TPR
// threshold on the in-distribution inputs); and the per-layer features matched by role.
//
// A parameter tensor's role: its type, the name without its numbered containers (each numeric
// segment and the segment before it: levels.1.steps.3.coupling.conv1.weight -> coupling.conv1.weight,
// levels.0.prior.conv.bias -> prior.conv.bias, encoder.conv1.weight unchanged), and its position,
// its rank among the model's tensors of that type in model order scaled to [0, 1] (0.5 when there
// is one). A tensor of model a is matched with the tensor of model b of the same type at the nearest
// position (the first on a tie), so a Glow with K = 4 steps per level meets one with K = 8 step for
// step at the same depth of the flow; tensors of types b lacks (a VAE against a Glow) go unmatched.
import type { ImageSet } from "../data/dataset.ts";
import type { GenerativeModel } from "../models/model.ts";
import { DiagonalGaussian, FeatureSpace } from "./density.ts";
import { featuresOf, fimNormsOf, fimOf } from "./features_of.ts";
import { auroc, aurocBootstrap } from "./metrics.ts";
import { cohenKappa, correlation, type Estimate, quantileSorted, spearman, topOverlap } from "./stats.ts";

export const NOVELTY_SCORES = ["diag", "logsum", "fim"] as const;
export type NoveltyScore = typeof NOVELTY_SCORES[number];
export const SCORE_LABELS: Record<NoveltyScore, string> = {
  diag: "-log p, diagonal Gaussian over log f_l",
  logsum: "sum_l log f_l",
  fim: "log q, full FIM (Woodbury)",
};

export interface SetNovelty {
  name: string;
  /** Per input, each score (higher = more novel). */
  scores: Record<NoveltyScore, Float64Array>;
  /** Per input, log f_l of every parameter tensor. */
  logf: Float64Array[];
  /** Per input, NLL in bits/dim. */
  nll: Float64Array;
}

export interface ModelNovelty {
  label: string;
  names: string[];
  sets: SetNovelty[];
  /** lambda of the full FIM and its fit size. */
  fim: { lambda: number; n: number };
}

export interface NoveltyOptions {
  batch: number;
  seed: number;
  lambdaScale?: number;
  onProgress?: (done: number) => void;
}

/** Every input's scores under one model (B = 1): the diagonal Gaussian and F_N fitted on `fit`. */
export async function modelNovelty(model: GenerativeModel, label: string, fit: ImageSet, inputs: ImageSet[], o: NoveltyOptions): Promise<ModelNovelty> {
  const fo = { groupSize: 1, batch: o.batch, seed: o.seed, onProgress: o.onProgress };
  const fitF = await featuresOf(model, fit, fo);
  // The method's rule for degenerate features (density.ts): every row floored at the fit's floors.
  const L = fitF.names.length, space = FeatureSpace.fit(fitF.logf, fitF.names);
  const diag = new DiagonalGaussian(fitF.logf.map((r) => space.apply(r)), L, space.kept);
  const fim = await fimOf(model, fit, { ...fo, lambdaScale: o.lambdaScale });
  try {
    const sets: SetNovelty[] = [];
    for (const s of inputs) {
      const f = await featuresOf(model, s, fo);
      const q = await fimNormsOf(fim, model, s, fo);
      const logf = f.logf.map((r, i) => space.apply(r, `${s.name} input ${i}`, fitF.names));
      sets.push({
        name: s.name, logf, nll: f.nll,
        scores: {
          diag: Float64Array.from(logf, (r) => -diag.score(r)),
          logsum: Float64Array.from(logf, (r) => r.reduce((a, v) => a + v, 0)),
          fim: Float64Array.from(q, (v) => Math.log(v)),
        },
      });
    }
    return { label, names: fitF.names, sets, fim: { lambda: fim.lambda, n: fim.n } };
  } finally {
    fim.dispose();
  }
}

export interface Role {
  type: string;
  position: number;
}

/** Each tensor's role (see the header): type and position in [0, 1]. */
export function rolesOf(names: string[]): Role[] {
  const types = names.map((n) => {
    const parts = n.split("."), keep: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i + 1 < parts.length && /^\d+$/.test(parts[i + 1])) i++;
      else if (!/^\d+$/.test(parts[i])) keep.push(parts[i]);
    }
    return keep.join(".");
  });
  const count = new Map<string, number>(), seen = new Map<string, number>();
  for (const t of types) count.set(t, (count.get(t) ?? 0) + 1);
  return types.map((type) => {
    const k = seen.get(type) ?? 0, c = count.get(type)!;
    seen.set(type, k + 1);
    return { type, position: c === 1 ? 0.5 : k / (c - 1) };
  });
}

/** For each tensor of a whose type b has: [index in a, index in b] of the tensor at the nearest position. */
export function matchRoles(a: string[], b: string[]): [number, number][] {
  const ra = rolesOf(a), rb = rolesOf(b), out: [number, number][] = [];
  ra.forEach((r, i) => {
    let best = -1;
    rb.forEach((s, j) => {
      if (s.type === r.type && (best < 0 || Math.abs(s.position - r.position) < Math.abs(rb[best].position - r.position))) best = j;
    });
    if (best >= 0) out.push([i, best]);
  });
  return out;
}

export interface ScoreAgreement {
  score: NoveltyScore;
  /** "all" (every input pooled) or an input set's name. */
  inputs: string;
  n: number;
  spearman: Estimate;
  pearson: Estimate;
  /** Share of a's top 5% also in b's; chance = k / n. */
  top: { overlap: number; k: number; chance: number };
}

export interface VerdictAgreement {
  score: NoveltyScore;
  /** The model whose score detects (a) and the model whose verdicts it is scored against (b). */
  detector: string;
  reference: string;
  /** Inputs b flags (its score above its 95th percentile on the in-distribution inputs), of n. */
  flagged: number;
  n: number;
  /** AUROC of a's score separating b's flagged inputs from the rest, with its bootstrap interval (NaN when b flags none or all). */
  auroc: number;
  aurocCI: [number, number];
  /** Share of inputs where a's own verdict (same rule) equals b's, and Cohen's kappa. */
  agreement: number;
  kappa: number;
}

export interface LayerAgreement {
  a: string;
  b: string;
  type: string;
  positionA: number;
  positionB: number;
  /** Spearman correlation of log f_l over every input. */
  spearman: number;
}

export interface PairComparison {
  a: string;
  b: string;
  scores: ScoreAgreement[];
  /** a detecting b's verdicts, then b detecting a's. */
  verdicts: VerdictAgreement[];
  layers: LayerAgreement[];
}

export interface CompareOptions {
  /** The in-distribution input set's name (the verdict thresholds come from it). */
  inName: string;
  reps?: number;
  seed?: number;
  /** Top fraction for the overlap (default 0.05) and the verdict threshold's TPR (default 0.95). */
  top?: number;
  tpr?: number;
}

const pooled = (m: ModelNovelty, s: NoveltyScore) => Float64Array.from(m.sets.flatMap((x) => [...x.scores[s]]));

function verdicts(m: ModelNovelty, s: NoveltyScore, inName: string, tpr: number): boolean[] {
  const ins = m.sets.find((x) => x.name === inName);
  if (!ins) throw new Error(`compare: no input set named ${inName} (the in-distribution set) under ${m.label}`);
  const thr = quantileSorted(Float64Array.from(ins.scores[s]).sort(), tpr);
  return [...pooled(m, s)].map((v) => v > thr);
}

function verdict(a: ModelNovelty, b: ModelNovelty, s: NoveltyScore, o: Required<CompareOptions>): VerdictAgreement {
  const x = pooled(a, s), vb = verdicts(b, s, o.inName, o.tpr), va = verdicts(a, s, o.inName, o.tpr);
  const pos = [...x].filter((_, i) => vb[i]), neg = [...x].filter((_, i) => !vb[i]);
  const ok = pos.length > 0 && neg.length > 0;
  return {
    score: s, detector: a.label, reference: b.label, flagged: pos.length, n: x.length,
    auroc: ok ? auroc(pos, neg) : NaN, aurocCI: ok ? aurocBootstrap(pos, neg, o.reps, 0.95, o.seed) : [NaN, NaN],
    agreement: va.filter((v, i) => v === vb[i]).length / x.length, kappa: cohenKappa(va, vb),
  };
}

/** Everything the header lists, for one pair of models scored on the same inputs in the same order. */
export function comparePair(a: ModelNovelty, b: ModelNovelty, opts: CompareOptions): PairComparison {
  const o: Required<CompareOptions> = { reps: 1000, seed: 0, top: 0.05, tpr: 0.95, ...opts };
  if (a.sets.length !== b.sets.length || a.sets.some((s, i) => s.name !== b.sets[i].name || s.nll.length !== b.sets[i].nll.length)) {
    throw new Error(`compare: ${a.label} and ${b.label} were not scored on the same inputs`);
  }
  const scores: ScoreAgreement[] = [];
  for (const s of NOVELTY_SCORES) {
    const subsets: [string, Float64Array, Float64Array][] = [["all", pooled(a, s), pooled(b, s)], ...a.sets.map((x, i) => [x.name, x.scores[s], b.sets[i].scores[s]] as [string, Float64Array, Float64Array])];
    for (const [inputs, x, y] of subsets) {
      scores.push({
        score: s, inputs, n: x.length,
        spearman: correlation(x, y, "spearman", { reps: o.reps, seed: o.seed }),
        pearson: correlation(x, y, "pearson", { reps: o.reps, seed: o.seed }),
        top: topOverlap(x, y, o.top),
      });
    }
  }
  const rowsA = a.sets.flatMap((x) => x.logf), rowsB = b.sets.flatMap((x) => x.logf);
  const ra = rolesOf(a.names), rb = rolesOf(b.names);
  const layers = matchRoles(a.names, b.names).map(([i, j]) => ({
    a: a.names[i], b: b.names[j], type: ra[i].type, positionA: ra[i].position, positionB: rb[j].position,
    spearman: spearman(rowsA.map((r) => r[i]), rowsB.map((r) => r[j])),
  }));
  return { a: a.label, b: b.label, scores, verdicts: NOVELTY_SCORES.flatMap((s) => [verdict(a, b, s, o), verdict(b, a, s, o)]), layers };
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : "-");
const est = (e: Estimate) => `${f3(e.value)} [${f3(e.ci[0])}, ${f3(e.ci[1])}]`;

/** The three Markdown tables: score correlations, verdicts, per-layer agreement by type. */
export function compareMarkdown(pairs: PairComparison[]): string {
  let md = "### Correlation of each input's novelty between models\n\n| models | score | inputs | n | Spearman [95% CI] | Pearson [95% CI] | top-5% overlap (chance) |\n|---|---|---|---|---|---|---|\n";
  for (const p of pairs) for (const s of p.scores) {
    md += `| ${p.a} / ${p.b} | ${s.score} | ${s.inputs} | ${s.n} | ${est(s.spearman)} | ${est(s.pearson)} | ${f3(s.top.overlap)} (${f3(s.top.chance)}) |\n`;
  }
  md += "\n### One model's score as a detector of the other's verdicts (flagged: above its 95th percentile on the in-distribution inputs)\n\n| detector | verdicts of | score | flagged / n | AUROC [95% CI] | agreement | kappa |\n|---|---|---|---|---|---|---|\n";
  for (const p of pairs) for (const v of p.verdicts) {
    md += `| ${v.detector} | ${v.reference} | ${v.score} | ${v.flagged} / ${v.n} | ${f3(v.auroc)} [${f3(v.aurocCI[0])}, ${f3(v.aurocCI[1])}] | ${f3(v.agreement)} | ${f3(v.kappa)} |\n`;
  }
  md += "\n### Per-layer log f_l matched by role (Spearman over all inputs)\n\n| models | type | matched | median | min | max |\n|---|---|---|---|---|---|\n";
  for (const p of pairs) {
    if (!p.layers.length) {
      md += `| ${p.a} / ${p.b} | (no tensor types in common) | 0 | - | - | - |\n`;
      continue;
    }
    for (const type of [...new Set(p.layers.map((l) => l.type))]) {
      const r = p.layers.filter((l) => l.type === type).map((l) => l.spearman).sort((x, y) => x - y);
      md += `| ${p.a} / ${p.b} | ${type} | ${r.length} | ${f3(quantileSorted(r, 0.5))} | ${f3(r[0])} | ${f3(r[r.length - 1])} |\n`;
    }
  }
  return md;
}
