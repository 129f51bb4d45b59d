// The paper's own benchmark (Dauncey et al., TMLR 2024, the in-distribution x OOD tables) as a
// library job: for each model family, each group size B and each in-distribution set with a model
// trained on it, typicality and the gradient method against every other set. src/cli/paper.ts
// parses and checks the command line and calls these pieces; docs/paper-grid.md has the numbers.
//
// The protocol, as the authors' code runs it (SamD770/Generative-Models-Knowledge:
// generative_model.py compute_summary_statistics and split_dataset_summary, plots/utils.py
// get_anomaly_scores): every set is its whole test split in its original order, cut into groups of
// B consecutive inputs (a trailing partial group dropped, as DataLoader(drop_last=True)); each
// group's features are those of its summed objective (src/ood/loop.ts). Of the in-distribution
// set's G groups the first round(G / 2) (Python's round: half to even) fit the scores, the rest are
// the in-distribution evaluation; every group of every other set is scored.
//
// Features are files (src/ood/feature_file.ts, `npm run features`' format) in one folder: a
// (model, set, B) whose features are there, complete and matching (model SHA-256, objective, B,
// seed, set), is not computed again; otherwise its missing shards are computed and written, one
// file per shard, so an interrupted run loses at most one shard. Shards that `npm run features
// --shard k/n` wrote on other machines count the same way (docs/paper-grid.md).
import type { ImageSet } from "../data/dataset.ts";
import { subset } from "../data/dataset.ts";
import { pathExists as exists } from "../data/files.ts";
import { setKey } from "../data/image_files.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { GenerativeModel } from "../models/model.ts";
import type { Objective } from "../models/objective.ts";
import { asSetFeatures, encodeFeatureNpz, FEATURES_FORMAT, FEATURES_VERSION, type FeatureFile, type FeatureMeta, featureFile, isFeatureFile, mergeFeatureFiles, parseFeatureFile, shardRange } from "./feature_file.ts";
import { passSize, type SetFeatures, setFeatures } from "./loop.ts";
import type { Metrics } from "./metrics.ts";
import { evaluateSets } from "./pipeline.ts";
import { rocSvg } from "./plots.ts";

/** The two methods of the paper's tables: the baseline above, the method below. */
export const GRID_METHODS = ["typicality", "gradient"] as const;

/**
 * The paper's five colour sets in their official layouts under one folder (docs/paper-grid.md):
 * the reader prefix (src/data/image_files.ts READERS), the path below the folder, what must be
 * there, and the official test split's size.
 */
export const PAPER_SETS = [
  { name: "svhn", label: "SVHN", format: "svhn", path: "svhn/test_32x32.mat", needs: [], official: 26032 },
  { name: "celeba", label: "CelebA", format: "celeba", path: "celeba", needs: ["list_eval_partition.txt", "img_align_celeba"], official: 19962 },
  { name: "gtsrb", label: "GTSRB", format: "gtsrb", path: "gtsrb", needs: ["GT-final_test.csv"], official: 12630 },
  { name: "cifar10", label: "CIFAR-10", format: "cifar10", path: "cifar10/test_batch.bin", needs: [], official: 10000 },
  { name: "imagenet32", label: "ImageNet32", format: "imagenet32", path: "imagenet32/val_data.npz", needs: [], official: 50000 },
] as const;

/** One column (and row) of the grid. */
export interface GridSet {
  /** Short name: rows, columns, file names, `set=path` in --models. */
  name: string;
  /** Its heading in the tables. */
  label: string;
  /** What the data layer reads (src/data/image_files.ts loadSetSpec). */
  spec: string;
  /** loadSetSpec's key: the features files of this set are those whose meta's set has this key and count. */
  key: string;
  /** The official test split's size, where the set is one of the paper's. */
  official?: number;
}

/** The paper's sets found under a folder, in the tables' order; each missing one with why. */
export function locatePaperSets(dir: string): { sets: GridSet[]; missing: { name: string; why: string }[] } {
  const root = dir.replace(/\/+$/, "") || "/";
  const sets: GridSet[] = [], missing: { name: string; why: string }[] = [];
  for (const p of PAPER_SETS) {
    const path = `${root}/${p.path}`;
    const lacking = [path, ...p.needs.map((n) => `${path}/${n}`)].find((f) => !exists(f));
    if (lacking) {
      missing.push({ name: p.name, why: `${lacking} not found` });
      continue;
    }
    const spec = `${p.format}:${path}`;
    sets.push({ name: p.name, label: p.label, spec, key: setKey(spec), official: p.official });
  }
  return { sets, missing };
}

/**
 * Why a labelled set's two halves are unlike each other (a split stored class by class, whose
 * halves the protocol would make different classes), or null: the total variation distance
 * between the label histograms of its first and second halves, when it exceeds `threshold`.
 */
export function halvesUnlike(set: ImageSet, threshold = 0.5): string | null {
  const half = Math.floor(set.n / 2);
  if (half < 1 || set.labels.every((l) => l === 255)) return null;
  const hist = (a: number, b: number) => {
    const h = new Map<number, number>();
    for (let i = a; i < b; i++) h.set(set.labels[i], (h.get(set.labels[i]) ?? 0) + 1 / (b - a));
    return h;
  };
  const p = hist(0, half), q = hist(half, set.n), keys = new Set([...p.keys(), ...q.keys()]);
  const tv = [...keys].reduce((d, k) => d + Math.abs((p.get(k) ?? 0) - (q.get(k) ?? 0)), 0) / 2;
  if (tv <= threshold) return null;
  const classes = (h: Map<number, number>) => [...h.keys()].sort((x, y) => x - y).join(" ");
  return `its labels differ between its halves (total variation ${tv.toFixed(2)}; first half classes ${classes(p)}, second half ${classes(q)}): is it stored by class? The fit half and the evaluation half would then be different classes`;
}

// ---- features files: finding, planning, computing ----

/** What a (model, set, B) run's features must match. */
export interface RunKey {
  sha256: string;
  objective: string;
  B: number;
  seed: number;
  /** The set's key (GridSet.key) and its number of images. */
  setKey: string;
  n: number;
}

export interface FoundFile {
  path: string;
  meta: FeatureMeta;
}

/** Every features file in a folder (parsed and checked; rows dropped); files that fail to parse are returned apart, with why. */
export function scanFeatures(dir: string): { files: FoundFile[]; bad: { path: string; why: string }[] } {
  const files: FoundFile[] = [], bad: { path: string; why: string }[] = [];
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && isFeatureFile(e.name) && !e.name.startsWith(".")).map((e) => e.name).sort();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const name of names) {
    const path = `${dir}/${name}`;
    try {
      files.push({ path, meta: parseFeatureFile(Deno.readFileSync(path), path).meta });
    } catch (e) {
      bad.push({ path, why: (e as Error).message });
    }
  }
  return { files, bad };
}

/** Whether a file's meta is of this run (shard and pass size aside). */
export const matchesRun = (m: FeatureMeta, k: RunKey) =>
  m.model.sha256 === k.sha256 && m.objective === k.objective && m.groupSize === k.B && m.seed === k.seed && setKey(m.set.spec) === k.setKey && m.set.n === k.n;

/**
 * The files of one complete run matching `key` (every shard 0..n-1 of one set spec, pass size and
 * shard count), or null. Of several complete runs the one whose first file sorts first is taken, so
 * a rerun reads the same files.
 */
export function completeRun(files: FoundFile[], key: RunKey): FoundFile[] | null {
  const runs = new Map<string, Map<number, FoundFile>>();
  for (const f of files) {
    if (!matchesRun(f.meta, key)) continue;
    const id = JSON.stringify([f.meta.set.spec, f.meta.set.batch, f.meta.shard.n]);
    if (!runs.has(id)) runs.set(id, new Map());
    const shards = runs.get(id)!;
    if (!shards.has(f.meta.shard.k)) shards.set(f.meta.shard.k, f);
  }
  const complete = [...runs.values()].filter((s) => s.size === [...s.values()][0].meta.shard.n).map((s) => [...s.values()].sort((a, b) => a.meta.shard.k - b.meta.shard.k));
  complete.sort((a, b) => (a[0].path < b[0].path ? -1 : 1));
  return complete[0] ?? null;
}

/** Inputs per shard of the runs this job computes (an interrupted run loses at most one shard). */
export const SHARD_INPUTS = 2048;

/** The shards of this job's own run of a set: how many, and each one's input positions. */
export function ownShards(nInputs: number, per: number): [number, number][] {
  const nb = Math.ceil(nInputs / per), n = Math.max(1, Math.ceil(nb / Math.max(1, Math.floor(SHARD_INPUTS / per))));
  return Array.from({ length: n }, (_, k) => shardRange(nInputs, per, k, n));
}

/** This job's file for shard k of n of a run: `<model>--<set>--B<B>--s<seed>--<sha8>[--k<k>of<n>].npz`. */
export function ownShardPath(dir: string, modelLabel: string, set: string, key: RunKey, k: number, n: number): string {
  return `${dir}/${modelLabel}--${set}--B${key.B}--s${key.seed}--${key.sha256.slice(0, 8)}${n > 1 ? `--k${k}of${n}` : ""}.npz`;
}

export interface ShardJob {
  model: GenerativeModel;
  objective: Objective;
  /** The model file's path and SHA-256 (the meta records them). */
  modelPath: string;
  sha256: string;
  /** The set as the model takes it (conformShape), its spec and ids (one per image). */
  set: ImageSet;
  spec: string;
  ids: string[];
  B: number;
  seed: number;
  /** Inputs per pass asked for (the file records the pass size passSize makes of it). */
  batch: number;
  k: number;
  n: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Features of shard k of n of a set (the rows `npm run features --shard k/n` writes), as a file's content. */
export async function computeShard(j: ShardJob): Promise<FeatureFile> {
  const per = passSize(j.objective, j.B, j.batch), [from, to] = shardRange(j.set.n, per, j.k, j.n);
  const part = from === 0 && to === j.set.n ? j.set : { ...subset(j.set, Array.from({ length: to - from }, (_, i) => from + i)), name: j.set.name };
  const f = await setFeatures(j.model, j.objective, part, { groupSize: j.B, batch: j.batch, seed: j.seed, signal: j.signal, onProgress: j.onProgress });
  const meta: FeatureMeta = {
    format: FEATURES_FORMAT, version: FEATURES_VERSION,
    model: { path: j.modelPath, sha256: j.sha256, kind: j.model.kind, image: [...j.model.imageShape] },
    objective: j.objective.name, measure: j.objective.measure, groupSize: j.B, seed: j.seed,
    set: { spec: j.spec, n: j.set.n, batch: per }, shard: { k: j.k, n: j.n, from, to },
  };
  return featureFile(meta, f, j.model.namedParameters().map(([, p]) => p.size), j.ids.slice(from, to));
}

/** Writes a shard's file (atomically). */
export function writeShard(path: string, f: FeatureFile): void {
  writeFileAtomic(path, encodeFeatureNpz(f));
}

/** A run's files read, checked and merged into the set's features (rows in the set's order). */
export function readRun(files: FoundFile[], name: string): SetFeatures {
  return asSetFeatures(mergeFeatureFiles(files.map(({ path }) => ({ file: path, f: parseFeatureFile(Deno.readFileSync(path), path) }))), name);
}

// ---- the grid ----

/** Python's round(x) for x = G / 2: half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Fit groups of an in-distribution set of G groups (the rest are its evaluation groups). */
export const fitGroups = (G: number) => roundHalfEven(G / 2);

/** Groups of B in a set of n inputs. */
export const groupsOf = (n: number, B: number) => Math.floor(n / B);

export interface GridCell {
  method: string;
  metrics: Metrics;
  roc: [number, number][];
  /** Groups: fit, in-distribution evaluation, OOD. */
  nFit: number;
  nEval: number;
  nOod: number;
}

export interface Grid {
  /** The model family (its kind) and the group size. */
  family: string;
  B: number;
  sets: GridSet[];
  /** Per in-distribution set: its model's label, or absent when the family has none for it. */
  models: Record<string, string>;
  /** `${in}|${ood}|${method}` -> the cell. */
  cells: Map<string, GridCell>;
}

const cellKey = (inSet: string, ood: string, method: string) => `${inSet}|${ood}|${method}`;
const rows = (f: SetFeatures, a: number, b: number): SetFeatures => ({ ...f, logf: f.logf.slice(a, b), nll: f.nll.slice(a, b) });

/**
 * One row of a grid: a model's features of its own set (`inSet`, split into fit and evaluation
 * groups) and of every other set, the two methods fitted on the fit groups and scored.
 */
export function evaluateRow(grid: Grid, inSet: string, own: SetFeatures, others: { name: string; f: SetFeatures }[], seed: number): void {
  const G = own.logf.length, nFit = fitGroups(G);
  const ev = evaluateSets(grid.models[inSet], grid.B, rows(own, 0, nFit), rows(own, nFit, G), others.map((o) => ({ ...o.f, name: o.name })), seed, [...GRID_METHODS]);
  for (const o of others) {
    for (const r of ev.results[o.name]) grid.cells.set(cellKey(inSet, o.name, r.method), { method: r.method, metrics: r.metrics, roc: r.roc, nFit, nEval: G - nFit, nOod: o.f.logf.length });
  }
}

/** Linear-interpolation quantile (numpy's default) of sorted values. */
function quantile(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q, lo = Math.floor(h);
  return lo + 1 < sorted.length ? sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
}

/** The mean and quartiles of a method's AUROCs over the grid's filled cells. */
export function gridSummary(g: Grid, method: string): { n: number; mean: number; q1: number; median: number; q3: number } | null {
  const v = [...g.cells.values()].filter((c) => c.method === method).map((c) => c.metrics.auroc).sort((a, b) => a - b);
  if (!v.length) return null;
  return { n: v.length, mean: v.reduce((a, b) => a + b, 0) / v.length, q1: quantile(v, 0.25), median: quantile(v, 0.5), q3: quantile(v, 0.75) };
}

const f3 = (v: number) => v.toFixed(3);
const METHOD_TITLES: Record<string, string> = { typicality: "typicality (baseline)", gradient: "gradient (the method)" };

/**
 * A grid as the paper lays it out: one table, typicality in the upper half and the gradient method
 * in the lower, rows in-distribution, columns OOD, AUROC; the better of each (typicality,
 * gradient) pair in bold (both on a tie); a caption with each half's mean and quartiles.
 */
export function gridMarkdown(g: Grid): string {
  const head = `| in-distribution ↓ / OOD → | ${g.sets.map((s) => s.label).join(" | ")} |`;
  const lines = [`**${g.family}, B = ${g.B}**: AUROC, in-distribution evaluation groups against each OOD set's groups`, "", head, `| --- |${g.sets.map(() => " ---: |").join("")}`];
  const other = (m: string) => GRID_METHODS.find((x) => x !== m)!;
  for (const m of GRID_METHODS) {
    lines.push(`| *${METHOD_TITLES[m]}* |${g.sets.map(() => " |").join("")}`);
    for (const r of g.sets) {
      if (!g.models[r.name]) {
        lines.push(`| ${r.label} |${g.sets.map(() => " no model |").join("")}`);
        continue;
      }
      const cells = g.sets.map((c) => {
        if (c.name === r.name) return "—";
        const a = g.cells.get(cellKey(r.name, c.name, m)), b = g.cells.get(cellKey(r.name, c.name, other(m)));
        if (!a) return "";
        const s = f3(a.metrics.auroc);
        return b && a.metrics.auroc >= b.metrics.auroc ? `**${s}**` : s;
      });
      lines.push(`| ${r.label} | ${cells.join(" | ")} |`);
    }
  }
  const cap = GRID_METHODS.map((m) => {
    const s = gridSummary(g, m);
    return s ? `${m}: mean ${f3(s.mean)}, quartiles ${f3(s.q1)} / ${f3(s.median)} / ${f3(s.q3)} (${s.n} pairs)` : `${m}: no pairs`;
  });
  const noModel = g.sets.filter((s) => !g.models[s.name]).map((s) => s.label);
  lines.push("", `*${cap.join("; ")}.*${noModel.length ? ` No ${g.family} model was trained on ${noModel.join(", ")}: ${noModel.length === 1 ? "its row is" : "their rows are"} empty, ${noModel.length === 1 ? "its column" : "their columns"} OOD only.` : ""}`);
  return lines.join("\n");
}

/** Every cell of the grids as CSV rows, with the bootstrap interval of each AUROC and the other metrics. */
export function gridCsv(grids: Grid[]): string {
  const out = ["family,B,method,in_distribution,ood,auroc,auroc_ci_low,auroc_ci_high,aupr_in,aupr_out,fpr95,fit_groups,eval_groups,ood_groups,model"];
  for (const g of grids) {
    for (const m of GRID_METHODS) {
      for (const r of g.sets) {
        for (const c of g.sets) {
          const cell = g.cells.get(cellKey(r.name, c.name, m));
          if (!cell) continue;
          const x = cell.metrics;
          out.push([g.family, g.B, m, r.name, c.name, x.auroc, x.aurocCI[0], x.aurocCI[1], x.auprIn, x.auprOut, x.fpr95, cell.nFit, cell.nEval, cell.nOod, g.models[r.name]].join(","));
        }
      }
    }
  }
  return out.join("\n") + "\n";
}

/** ROC figures: per in-distribution set with a model, both methods against every OOD set. */
export function gridRocSvgs(g: Grid): [string, string][] {
  return g.sets.filter((r) => g.models[r.name]).map((r) => {
    const curves = g.sets.filter((c) => c.name !== r.name).flatMap((c) =>
      GRID_METHODS.flatMap((m) => {
        const cell = g.cells.get(cellKey(r.name, c.name, m));
        return cell ? [{ label: `${c.label} ${m}`, points: cell.roc, auroc: cell.metrics.auroc }] : [];
      })
    );
    return [`roc-${g.family}-B${g.B}-${r.name}.svg`, rocSvg(`${g.family} trained on ${r.label}, B = ${g.B}`, curves)];
  });
}
