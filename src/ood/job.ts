// `ood` as a library job: the paper's protocol on one model, from image sets to evaluations,
// saliency overlays and the full-FIM scores. src/cli/ood.ts parses and checks the command line,
// loads the data and the models, and calls it; the page and the benches call the same pieces.
//
// The protocol: the in-distribution test images in a seeded permutation (Generator(1000 + seed));
// the fit set is the first nFit of its first half, the evaluation set the first nEval of its
// second half; an OOD set is nEval images of another set in its own seeded permutation
// (Generator(3000 + seed)), or a synthetic set made from the evaluation images. For each group
// size B, the features of every set (src/ood/loop.ts), every registered score fitted on the fit
// set (src/ood/scores.ts) and the metrics of the evaluation set against each OOD set. An OOD set
// may also come as features already computed (a features file of `npm run features`): its groups
// at that file's B, up to nEval / B of them in a seeded permutation (Generator(3000 + seed)), scored
// as the computed ones are.
import * as T from "../autograd/index.ts";
import { type ImageSet, subset } from "../data/dataset.ts";
import { constantImages, flipVertical, invert, uniformNoise } from "../data/synthetic.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Objective } from "../models/objective.ts";
import { groupedCount, type LoopOptions, type SetFeatures, setFeatures } from "./loop.ts";
import { addFimScores, type Evaluation, evaluateSets } from "./pipeline.ts";
import { flaggedSaliency, saliencyPng } from "./saliency.ts";

/** The OOD sets made from the in-distribution evaluation images. */
export const SYNTHETIC_SETS = ["noise", "constant", "vflip", "invert"] as const;
export const isSynthetic = (name: string) => (SYNTHETIC_SETS as readonly string[]).includes(name);

export interface ProtocolSets {
  fit: ImageSet;
  inEval: ImageSet;
  ood: ImageSet[];
  /** OOD sets given as features (evaluated after the image sets), each at its group size B. */
  oodFeatures?: { B: number; features: SetFeatures }[];
}

/** An OOD set's precomputed groups as the protocol takes them: at most nEval / B groups, in a seeded permutation. */
export function protocolFeatures(f: SetFeatures, B: number, o: { nEval: number; seed: number }): { B: number; features: SetFeatures } {
  const n = f.logf.length, keep = Math.min(n, Math.floor(o.nEval / B));
  const idx = new T.Generator(3000 + o.seed).permutation(n).subarray(0, keep);
  return { B, features: { ...f, logf: Array.from(idx, (i) => f.logf[i]), nll: Float64Array.from(idx, (i) => f.nll[i]) } };
}

/**
 * The protocol's sets. `test`: the in-distribution test images (labelled `inName` in reports);
 * `ood`: per OOD set, its name and, for a set of real images, all of them (synthetic sets are
 * made here from the evaluation images).
 */
export function protocolSets(test: ImageSet, inName: string, ood: { name: string; images?: ImageSet }[], o: { nFit: number; nEval: number; seed: number }): ProtocolSets {
  const perm = new T.Generator(1000 + o.seed).permutation(test.n), half = Math.floor(test.n / 2);
  if (o.nFit > half || o.nEval > test.n - half) throw new Error(`protocol: ${o.nFit} fit and ${o.nEval} evaluation images need a test set of at least ${2 * Math.max(o.nFit, o.nEval)} (${inName} has ${test.n})`);
  const fit = subset(test, perm.subarray(0, o.nFit), `${inName}-fit`);
  const inEval = subset(test, perm.subarray(half, half + o.nEval), inName);
  const sets = ood.map(({ name, images }) => {
    const g = new T.Generator(2000 + o.seed);
    if (images) return subset(images, new T.Generator(3000 + o.seed).permutation(images.n).subarray(0, Math.min(o.nEval, images.n)), name);
    if (name === "noise") return uniformNoise(inEval, o.nEval, g);
    if (name === "constant") return constantImages(inEval, o.nEval, g);
    if (name === "vflip") return { ...flipVertical(inEval), name };
    if (name === "invert") return { ...invert(inEval), name };
    throw new Error(`protocol: OOD set ${name} has no images and is not synthetic (${SYNTHETIC_SETS.join(", ")})`);
  });
  return { fit, inEval, ood: sets };
}

export interface ModelJobOptions {
  /** The report's name for the model (rows, file names). */
  label: string;
  groupSizes: number[];
  /** Inputs per pass (capped by the objective), the draws' seed, the reference loop instead of the batched pass. */
  batch: number;
  seed: number;
  loop?: boolean;
  /** Saliency overlays at B = 1 for the k most flagged inputs of each set (0: none). */
  saliency: number;
  /** The full-FIM scores, with lambda scaled by this (absent: not computed). */
  fim?: { lambdaScale: number };
  signal?: AbortSignal;
  /** Progress: the stage ("features B=1", ...), inputs done and the stage's total. */
  onProgress?: (stage: string, done: number, total: number) => void;
  /** Each finished stage and its seconds (the command prints where the time went). */
  onStage?: (stage: string, seconds: number) => void;
  /** The full-FIM fit's size, once per group size. */
  onFim?: (B: number, info: { n: number; parameters: number; lambda: number; floats: number }) => void;
}

export interface ModelJobResult {
  evaluations: Evaluation[];
  /** PNG files for the report: the saliency overlays. */
  files: [string, Uint8Array][];
}

/** The protocol on one model: per group size, features, every score, metrics; saliency; the full FIM. */
export async function evaluateModel(model: GenerativeModel, objective: Objective, sets: ProtocolSets, o: ModelJobOptions): Promise<ModelJobResult> {
  const evaluations: Evaluation[] = [], files: [string, Uint8Array][] = [];
  let t = performance.now();
  const stage = (what: string) => {
    const now = performance.now();
    o.onStage?.(what, (now - t) / 1000);
    t = now;
  };
  for (const B of o.groupSizes) {
    const all = [sets.fit, sets.inEval, ...sets.ood];
    const total = all.reduce((n, s) => n + groupedCount(s, B), 0), name = `features B=${B}`;
    let before = 0;
    const feats = [];
    for (const set of all) {
      const loop: LoopOptions & { loop?: boolean } = {
        groupSize: B, batch: o.batch, seed: o.seed, loop: o.loop, signal: o.signal,
        onProgress: (done) => o.onProgress?.(name, before + done, total),
      };
      feats.push(await setFeatures(model, objective, set, loop));
      before += groupedCount(set, B);
    }
    for (const g of sets.oodFeatures ?? []) {
      if (g.B !== B) throw new Error(`ood job: OOD set ${g.features.name} is given as features at B = ${g.B}, not at B = ${B} (a features file serves its own group size only)`);
      feats.push(g.features);
    }
    stage(`features ${o.label} B=${B} (${total} inputs)`);
    const ev = evaluateSets(o.label, B, feats[0], feats[1], feats.slice(2), o.seed);
    evaluations.push(ev);
    stage(`fit and score ${o.label} B=${B}`);
    if (B === 1 && o.saliency > 0) {
      const shown = [sets.inEval, ...sets.ood], rows = [];
      for (const [k, set] of shown.entries()) {
        rows.push(await flaggedSaliency(model, objective, ev.scorers.diag, ev.fitted.space.floor, set, [ev.inEval, ...ev.ood][k].logf, o.saliency, o.seed));
      }
      files.push([`saliency-${o.label}-B1.png`, saliencyPng(rows, shown[0].c, shown[0].h, shown[0].w)]);
      stage(`saliency ${o.label} (${o.saliency} inputs per set, double backprop)`);
    }
    if (o.fim) {
      const fim = await addFimScores(ev, model, objective, sets, { groupSize: B, batch: o.batch, seed: o.seed, signal: o.signal, lambdaScale: o.fim.lambdaScale });
      o.onFim?.(B, { n: fim.n, parameters: fim.parameters, lambda: fim.lambda, floats: fim.floats });
      fim.dispose();
      stage(`full FIM ${o.label} B=${B} (gradients, fit and score)`);
    }
  }
  return { evaluations, files };
}
