// paper: the paper's own benchmark (Dauncey et al., TMLR 2024) in one command: for each model family
// and group size B, a grid of in-distribution -> OOD pairs over the sets, typicality in the upper
// half and the gradient method in the lower (AUROC), as the paper's tables. docs/paper-grid.md.
//
//   npm run paper -- --data-dir DIR [--family glow|diffusion|vae] [--models [SET=]a.safetensors,...] [--B 1,5]
//                    [--out reports/paper] [--batch 64] [--seed 0] [--backend auto|cpu|webgpu|wasm] [--force]
//   npm run paper -- --sets fashion,mnist,[NAME=]<images>,... (instead of --data-dir)
//
// --data-dir: the paper's sets in their official files under conventional names, read by the
// data readers: DIR/svhn/test_32x32.mat, DIR/celeba/ (list_eval_partition.txt, img_align_celeba/),
// DIR/gtsrb/ (the final test PPMs and GT-final_test.csv), DIR/cifar10/test_batch.bin,
// DIR/imagenet32/val_data.npz. A missing set is skipped, with one line saying so.
// --sets: any sets instead, by what the other commands take (a packaged set with an optional
// :train|:test and :from-to, or image files, or FORMAT:PATH), each as NAME=SPEC or SPEC (named
// after the packaged set or the file).
// --models: weights files, each trained on one of the sets: the set its metadata's `data` names
// (its packaged name, reader prefix or file name), or the one SET= names. Default: every
// weights/paper/<family>-<set>.safetensors that exists (with --family, that family's only).
// Each model's objective is its default (a diffusion model's: the L1 eps-loss at t = 1).
// The protocol: every set is its whole test split in its order, in groups of B consecutive inputs;
// the first half of the in-distribution set's groups fit, the second half are evaluated against
// every group of each other set.
// Resuming: features are kept as features files in OUT/features/ (`npm run features`' format);
// a (model, set, B) whose complete, matching files are there (model SHA-256, objective, B, seed,
// set name and size) is not computed again, and a set whose features are all there is not read.
// Shards written by `npm run features --shard k/n` into that folder are used the same way.
// Output: the tables printed and written to OUT/paper.md, every cell with its bootstrap interval and
// the other metrics in OUT/paper.csv, ROC figures OUT/roc-<family>-B<B>-<set>.svg. OUT is this
// command's folder (new, empty or written by it; never holding or inside a set or model): the report
// replaces the last one as a whole, features/ carried over.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, checkOutDir, choice, flag, int, ints, outDir, parseOptions, pathOrPrefixedExists, shippedDefault, text, UsageError, usageError } from "../io/options.ts";
import type { ImageSet } from "../data/dataset.ts";
import { conformShape, loadSetSpec, readerSpec, setKey, setLabel } from "../data/image_files.ts";
import { DATASETS } from "../data/mnist.ts";
import { parseSetSpec } from "../data/selection.ts";
import { protectedReason, writeDirAtomic } from "../io/atomic.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkModelFile, loadModel, MODEL_KINDS, type ModelFile } from "../models/registry.ts";
import { sha256Hex } from "../ood/detector.ts";
import { passSize } from "../ood/loop.ts";
import {
  completeRun, computeShard, evaluateRow, fitGroups, type FoundFile, type Grid, gridCsv, gridMarkdown, gridRocSvgs, type GridSet, groupsOf, halvesUnlike, locatePaperSets, matchesRun,
  ownShardPath, ownShards, PAPER_SETS, readRun, type RunKey, scanFeatures, writeShard,
} from "../ood/paper.ts";
import { progressBar } from "./progress.ts";

const CMD = "paper";
const a = parseOptions(CMD, {
  "data-dir": text(),
  sets: text(),
  family: choice(MODEL_KINDS),
  models: text(),
  B: ints({ min: 1, max: 1000 }).default([1, 5]),
  out: outDir().default("reports/paper"),
  batch: int({ min: 1, max: 4096 }).default(64),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  backend: BACKEND,
  force: flag(),
});
const t0 = performance.now();

// ---- the sets ----
if (!!a["data-dir"] === !!a.sets) {
  throw new UsageError(`${CMD}: give exactly one of --data-dir (the paper's sets in their official files) and --sets (any sets by name or path)`);
}
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
let sets: GridSet[];
const skipped: string[] = [];
if (a["data-dir"] !== undefined) {
  const dir = a["data-dir"];
  let isDir = false;
  try {
    isDir = Deno.statSync(dir).isDirectory;
  } catch { /* refused below */ }
  const layout = PAPER_SETS.map((p) => `${p.path}${p.needs.length ? ` (with ${p.needs.join(", ")})` : ""}`).join(", ");
  if (!isDir) throw usageError(CMD, "--data-dir", dir, `not an existing folder (allowed: a folder holding ${layout})`);
  const found = locatePaperSets(dir);
  if (!found.sets.length) throw usageError(CMD, "--data-dir", dir, `holds none of the paper's sets (looked for ${layout})`);
  sets = found.sets;
  for (const m of found.missing) skipped.push(`skipped set ${m.name}: ${m.why}`);
} else {
  const raw = a.sets!;
  const items = raw.split(",").map((s) => s.trim());
  sets = [];
  for (const item of items) {
    const eq = item.indexOf("="), spec = eq < 0 ? item : item.slice(eq + 1);
    const packaged = parseSetSpec(spec, DATASETS);
    const name = eq < 0 ? (packaged ? packaged.set : setLabel(spec)) : item.slice(0, eq);
    if (item === "" || spec === "") throw usageError(CMD, "--sets", raw, "empty item in the list (allowed: SPEC or NAME=SPEC, separated by commas)");
    if (!NAME_RE.test(name)) throw usageError(CMD, "--sets", raw, `'${name}' is not a set name (allowed: letters, digits, '_', '-', '.'; give NAME=SPEC)`);
    if (!packaged && !pathOrPrefixedExists(spec)) {
      throw usageError(CMD, "--sets", raw, `'${spec}' is neither a packaged set (${DATASETS.join(", ")}, optionally :train or :test and :from-to) nor an existing file or folder (optionally as FORMAT:PATH)`);
    }
    if (sets.some((s) => s.name === name)) throw usageError(CMD, "--sets", raw, `two sets are named '${name}' (give each its own NAME=SPEC)`);
    sets.push({ name, label: name, spec, key: setKey(spec) });
  }
  if (sets.length < 2) throw usageError(CMD, "--sets", raw, "needs at least two sets (an in-distribution set and an OOD set)");
}

// ---- the output folder ----
const out = a.out.replace(/\/+$/, "") || ".";
const outWhy = a.force ? null : protectedReason(out);
if (outWhy) throw usageError(CMD, "--out", a.out, `${outWhy}; the report goes to its own folder (e.g. reports/paper), or add --force`);
const featuresDir = `${out}/features`;
checkOutDir(featuresDir, { cmd: CMD, name: "out", label: "--out (its features/ folder)", force: a.force });
// No output touches an input: the report folder (replaced as a whole, its features/ carried over)
// neither holds nor lies inside a set or a model, and is new, empty or one this command wrote.
// Checked against the inputs as given before any set or model is read; the default models, once found.
const checkOutApart = (modelPaths: string[]) =>
  checkApart(CMD, [{ option: "--out", path: out, kind: "dir" }], [
    ...(a["data-dir"] ? [{ option: "--data-dir", path: a["data-dir"] }] : []),
    ...sets.map((s) => ({ option: a["data-dir"] ? "--data-dir" : "--sets", path: s.spec })),
    ...modelPaths.map((m) => ({ option: "--models", path: m })),
  ]);
// --models as given: PATH or SET=PATH items
const given = a.models?.split(",").map((s) => s.trim()).map((item): { set?: string; path: string } => {
  const eq = item.indexOf("=");
  return eq < 0 ? { path: item } : { set: item.slice(0, eq), path: item.slice(eq + 1) };
});
checkOutApart((given ?? []).map((e) => e.path).filter((m) => m !== ""));

// ---- the models ----
interface Model {
  path: string;
  file: ModelFile;
  sha256: string;
  family: string;
  set: string;
  objective: string;
  label: string;
}
const setNames = sets.map((s) => s.name);
const paperNames = PAPER_SETS.map((p) => p.name as string);
const families = a.family ? [a.family] : MODEL_KINDS;
let entries: { set?: string; path: string }[];
if (given !== undefined) {
  entries = given;
  for (const e of entries) {
    if (e.path === "" || e.set === "") throw usageError(CMD, "--models", a.models, "empty item in the list (allowed: PATH or SET=PATH, separated by commas)");
    try {
      if (!Deno.statSync(e.path).isFile) throw new Error();
    } catch {
      throw usageError(CMD, "--models", a.models, `'${e.path}' is not an existing file (allowed: weights files, each as PATH or SET=PATH)`);
    }
  }
} else {
  entries = families.flatMap((f) => setNames.map((s) => ({ set: s, path: shippedDefault(`weights/paper/${f}-${s}.safetensors`) }))).filter((e) => pathOrPrefixedExists(e.path));
  if (!entries.length) throw new UsageError(`${CMD}: no models: none of weights/paper/<family>-<set>.safetensors exists for ${families.join(", ")} and ${setNames.join(", ")}; pass --models`);
}
/** The set a model was trained on, from its metadata's `data`: a packaged name, a reader prefix or a file's name. */
function trainedOn(data: string): string[] {
  const packaged = parseSetSpec(data, DATASETS)?.set;
  const format = readerSpec(data)?.format;
  return sets.filter((s) => {
    if (packaged) return parseSetSpec(s.spec, DATASETS)?.set === packaged || s.name === packaged;
    if (format) return readerSpec(s.spec)?.format === format || s.name === format;
    return s.name === setLabel(data);
  }).map((s) => s.name);
}
const models: Model[] = [];
const seenPaths = new Map<string, string>();
for (const e of entries) {
  const real = Deno.realPathSync(e.path);
  if (seenPaths.has(real)) throw usageError(CMD, "--models", a.models ?? e.path, `${e.path} and ${seenPaths.get(real)} are the same file (allowed: each model once)`);
  seenPaths.set(real, e.path);
  const file = await checkModelFile(e.path);
  if (a.family && file.kind !== a.family) throw usageError(CMD, "--models", a.models ?? e.path, `${e.path} is a ${file.kind} model, but --family is ${a.family}`);
  let set = e.set;
  if (set === undefined) {
    const data = file.decoded.metadata.data;
    const m = data === undefined ? [] : trainedOn(data);
    if (m.length !== 1) {
      throw usageError(CMD, "--models", a.models ?? e.path, `${e.path} was trained on ${data === undefined ? "an unnamed set (no 'data' in its metadata)" : `'${data}'`}, which is ${m.length ? `several of the sets (${m.join(", ")})` : `none of the sets (${setNames.join(", ")})`}; name its set as SET=${e.path}`);
    }
    set = m[0];
  }
  if (!setNames.includes(set)) {
    if (a["data-dir"] !== undefined && paperNames.includes(set)) {
      skipped.push(`skipped model ${e.path}: its set ${set} is not in ${a["data-dir"]}`);
      continue;
    }
    throw usageError(CMD, "--models", a.models ?? e.path, `'${set}' is not one of the sets (${setNames.join(", ")})`);
  }
  const twin = models.find((m) => m.family === file.kind && m.set === set);
  if (twin) throw usageError(CMD, "--models", a.models ?? e.path, `${e.path} and ${twin.path} are both ${file.kind} models of ${set} (allowed: one per family and set)`);
  const label = e.path.replace(/^.*\//, "").replace(/\.safetensors$/, "").replace(/[^A-Za-z0-9._-]/g, "_");
  models.push({ path: e.path, file, sha256: await sha256Hex(Deno.readFileSync(e.path)), family: file.kind, set, objective: file.probe.defaultObjective, label });
}
if (!models.length) throw new UsageError(`${CMD}: no model has its set here (${skipped.filter((s) => s.startsWith("skipped model")).length} skipped); pass --models for the sets in ${a["data-dir"] ?? a.sets}`);

// ---- what the features folder holds, and which sets must be read ----
const scan = scanFeatures(featuresDir);
const keyOf = (m: Model, s: GridSet, B: number, n: number): RunKey => ({ sha256: m.sha256, objective: m.objective, B, seed: a.seed, setKey: s.key, n });
// A set whose runs are all there (at the one size its files record) is not read; any other is read now.
const loaded = new Map<string, { set: ImageSet; ids: string[] }>();
const sizeOf = new Map<string, number>();
for (const s of sets) {
  const ns = new Set(scan.files.filter((f) => setKey(f.meta.set.spec) === s.key).map((f) => f.meta.set.n));
  const n = ns.size === 1 ? [...ns][0] : -1;
  if (n >= 0 && models.every((m) => a.B.every((B) => completeRun(scan.files, keyOf(m, s, B, n))))) {
    sizeOf.set(s.name, n);
    continue;
  }
  const r = loadSetSpec(s.spec, { onNotice: notice, what: `${CMD}: --sets` });
  loaded.set(s.name, { set: r.set, ids: r.ids });
  sizeOf.set(s.name, r.set.n);
  for (const m of models) conformShape(r.set, m.file.probe.imageShape, `${CMD}: set ${s.name} (${s.spec}) for ${m.path}`);
}
for (const s of sets) {
  const n = sizeOf.get(s.name)!;
  for (const B of a.B) {
    const G = groupsOf(n, B);
    if (models.some((m) => m.set === s.name) && (fitGroups(G) < 2 || G - fitGroups(G) < 1)) {
      throw usageError(CMD, "--B", a.B.join(","), `B = ${B} makes ${G} group(s) of the ${n} images of ${s.name}; an in-distribution set needs at least 2 fit groups and 1 evaluation group, 3 groups in all (allowed: B <= ${Math.floor(n / 3)})`);
    }
    if (G < 1) throw usageError(CMD, "--B", a.B.join(","), `B = ${B} is more than the ${n} image(s) of ${s.name}`);
  }
}

// The runs to compute: each (model, set, B) without a complete run, as the shards of this job's own run that are missing.
interface Todo { m: Model; s: GridSet; B: number; shards: { k: number; n: number; path: string; replaces: boolean }[] }
const todo: Todo[] = [];
let kept = 0;
for (const m of models) {
  for (const s of sets) {
    for (const B of a.B) {
      const key = keyOf(m, s, B, sizeOf.get(s.name)!);
      if (completeRun(scan.files, key)) {
        kept++;
        continue;
      }
      const per = passSize(m.file.probe.objective(m.objective), B, a.batch);
      const shards = ownShards(sizeOf.get(s.name)!, per);
      const have = (path: string, k: number) => scan.files.some((f) => f.path === path && matchesRun(f.meta, key) && f.meta.shard.k === k && f.meta.shard.n === shards.length && f.meta.set.batch === per && f.meta.set.spec === s.spec);
      const want = shards.map((_, k) => ({ k, n: shards.length, path: ownShardPath(featuresDir, m.label, s.name, key, k, shards.length) })).filter((x) => !have(x.path, x.k));
      todo.push({ m, s, B, shards: want.map((x) => ({ ...x, replaces: pathOrPrefixedExists(x.path) })) });
    }
  }
}

if (given === undefined) checkOutApart(models.map((m) => m.path));

workStarts();
// The folder is this command's from the start (its manifest), so a run killed while computing
// features can be resumed into it.
let held: string[] = [];
try {
  held = [...Deno.readDirSync(out)].map((e) => e.name);
} catch { /* a new folder */ }
if (!held.length) writeDirAtomic(out, []);
for (const line of skipped) console.log(line);
for (const b of scan.bad) notice(`ignored ${b.path}: ${b.why}`);
for (const [name, d] of loaded) {
  const why = models.some((m) => m.set === name) ? halvesUnlike(d.set) : null;
  if (why) notice(`set ${name}: ${why}`);
}
console.log(`sets: ${sets.map((s) => `${s.name} (${sizeOf.get(s.name)} images${s.official && s.official !== sizeOf.get(s.name) ? `; the official test split has ${s.official}` : ""}${loaded.has(s.name) ? "" : ", features all present, not read"})`).join(", ")}`);
console.log(`models: ${models.map((m) => `${m.label} (${m.family} of ${m.set}, objective ${m.objective}, sha256 ${m.sha256.slice(0, 12)})`).join(", ")}`);
const nRuns = models.length * sets.length * a.B.length;
console.log(`features: ${kept} of ${nRuns} (model, set, B) runs complete in ${featuresDir}; ${todo.length} to compute (${todo.reduce((n, t) => n + t.shards.length, 0)} shard file(s))`);

// ---- features ----
let computeSeconds = 0;
if (todo.length) {
  Deno.mkdirSync(featuresDir, { recursive: true });
  const backend = await selectBackend(a.backend, { onNotice: notice });
  console.log(`backend: ${backend.name}`);
  for (const m of models) {
    const mine = todo.filter((t) => t.m === m);
    if (!mine.length) continue;
    const model = await loadModel(m.path, backend, m.file);
    const objective = model.objective(m.objective);
    for (const t of mine) {
      const data = loaded.get(t.s.name)!;
      const set = conformShape(data.set, model.imageShape, `${CMD}: set ${t.s.name}`);
      const per = passSize(objective, t.B, a.batch);
      const ranges = ownShards(set.n, per), total = t.shards.reduce((n, x) => n + groupsOf(ranges[x.k][1] - ranges[x.k][0], t.B) * t.B, 0);
      const bar = progressBar(`${m.label} ${t.s.name} B=${t.B}`, "{rate} inputs/s");
      const tb = performance.now();
      let before = 0;
      bar.start(total, 0, { rate: "-" });
      for (const x of t.shards) {
        if (x.replaces) notice(`replacing ${x.path}: it is not shard ${x.k} of ${x.n} of this run (model, objective, B, seed, set or pass size differ, or it does not parse)`);
        const f = await computeShard({
          model, objective, modelPath: m.path, sha256: m.sha256, set, spec: t.s.spec, ids: data.ids, B: t.B, seed: a.seed, batch: a.batch, k: x.k, n: x.n,
          onProgress: (done) => bar.update(before + done, { rate: ((before + done) / ((performance.now() - tb) / 1000)).toFixed(0) }),
        });
        writeShard(x.path, f);
        before += f.logf.length * t.B;
      }
      bar.stop();
      computeSeconds += (performance.now() - tb) / 1000;
    }
  }
}

// ---- the grids ----
const tg = performance.now();
const files = todo.length ? scanFeatures(featuresDir).files : scan.files;
const grids: Grid[] = [];
for (const family of families) {
  const fm = models.filter((m) => m.family === family);
  if (!fm.length) continue;
  for (const B of a.B) {
    const g: Grid = { family, B, sets, models: Object.fromEntries(fm.map((m) => [m.set, m.label])), cells: new Map() };
    for (const m of fm) {
      const read = (s: GridSet) => {
        const run = completeRun(files, keyOf(m, s, B, sizeOf.get(s.name)!));
        if (!run) throw new Error(`${CMD}: the features of ${m.label} on ${s.name} at B = ${B} are missing from ${featuresDir} after computing them`);
        return readRun(run as FoundFile[], s.name);
      };
      evaluateRow(g, m.set, read(sets.find((s) => s.name === m.set)!), sets.filter((s) => s.name !== m.set).map((s) => ({ name: s.name, f: read(s) })), a.seed);
    }
    grids.push(g);
  }
}
const gridSeconds = (performance.now() - tg) / 1000;

// ---- the report ----
const header = [
  "# The paper's grid: AUROC, in-distribution -> OOD",
  "",
  `Sets (columns and rows): ${sets.map((s) => `${s.label} = \`${s.name}\` (${sizeOf.get(s.name)} images)`).join(", ")}.`,
  `Models: ${models.map((m) => `\`${m.label}\` (${m.family}, trained on ${m.set}; objective ${m.objective}; sha256 ${m.sha256.slice(0, 12)})`).join(", ")}.`,
  `Protocol: each set's images in their order (a --data-dir set: its whole official test split), in groups of B consecutive inputs; the first round(G/2) groups of the in-distribution set fit, the rest are evaluated against every group of each OOD set; seed ${a.seed}. Bold: the better of typicality and the gradient method for that pair; paper.csv has every AUROC's 95% bootstrap interval.`,
  ...(skipped.length ? ["", ...skipped.map((s) => `- ${s}`)] : []),
  "",
];
const body = grids.map(gridMarkdown).join("\n\n");
const figures = grids.flatMap(gridRocSvgs);
// The report replaces the last one as a whole (no stale figure stays); features/ is carried over.
writeDirAtomic(out, [["paper.md", `${header.join("\n")}\n${body}\n`], ["paper.csv", gridCsv(grids)], ...figures], { keep: (name) => name === "features" });
console.log(`\n${body}\n`);
console.log(`report: ${out}/paper.md, ${out}/paper.csv, ${figures.length} ROC figure(s) ${out}/roc-*.svg`);
console.log(`elapsed ${((performance.now() - t0) / 1000).toFixed(1)} s (features ${computeSeconds.toFixed(1)} s, grids ${gridSeconds.toFixed(1)} s)`);
Deno.exit(0);
