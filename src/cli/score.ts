// score --detector detector.json --input <file|folder|FORMAT:PATH|fashion[:test|train][:from-to]|features.npz>
//       [--out scores.csv|scores.json] [--model M] [--batch 64] [--backend auto|cpu|webgpu|wasm]
//       [--quiet] [--saliency overlays.png] [--saliency-k 8] [--force]
// Scores images against a detector from `npm run fit`: per input (or group of B consecutive inputs),
// named by its file (or file:index inside an array file), the NLL in bits/dim, the score (higher =
// more in-distribution), its percentile among the fit data's scores, the verdict at the 95%-TPR
// threshold and the three layers furthest from the fit (z-scores). --input: a PNG, a folder of PNGs,
// an .npy of uint8 [N,H,W] or [N,C,H,W], an IDX *-ubyte file, CIFAR-10 binary, or a packaged set
// `mnist|fashion[:train|test][:from-to]` (src/data/selection.ts): on the set, split and order the
// detector was fitted on, only positions outside its fit and calibration images (by default the
// last such run; a range that overlaps them is refused, naming the allowed ones); otherwise the
// split's own order (default: the test split, all of it). The model is the detector's (or
// --model); a model file whose SHA-256 differs from the one the detector was fitted with is
// refused. The detector must match the model (its parameter tensors, names and sizes, and its
// objective), checked before any work; each input's draws come from its pixels and the detector's
// seed, so an image scores the same wherever it sits. --input may also be a features file (or the
// shards of one run, comma-separated) from `npm run features` made with the detector's model,
// objective, group size and seed: no model pass at all then.
// --out writes CSV or JSON by its extension; --quiet prints only the summary.
// --saliency (B = 1): a PNG of the --saliency-k lowest-scoring inputs, each beside an overlay of
// d score / d pixels (double backprop: which pixels drive the score).
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, flag, inFile, int, outFile, parseOptions, pathOrPrefixedExists, text, usageError } from "../io/options.ts";
import { DATASETS, loadDataset } from "../data/mnist.ts";
import { subset } from "../data/dataset.ts";
import { describeSelection, parseSetSpec, scoringSelection, type SetSelection, selectionIndices } from "../data/selection.ts";
import { readRegularFile, writeFileAtomic } from "../io/atomic.ts";
import { conformShape, type FileSet, loadImageFiles } from "../data/image_files.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkModelFile, loadModel } from "../models/registry.ts";
import { checkAgainstModel, checkModelHash, DETECTOR_MAX_BYTES, type InputScore, readDetectorText, sha256Hex } from "../ood/detector.ts";
import { isFeatureFile, mergeFeatureFiles, parseFeatureFile } from "../ood/feature_file.ts";
import { setFeatures } from "../ood/loop.ts";
import { flaggedSaliency, saliencyPng } from "../ood/saliency.ts";
import { featureScoreNames } from "../ood/scores.ts";
import { MODEL_MAX_BYTES } from "../io/safetensors.ts";

const a = parseOptions("score", {
  detector: inFile().required(),
  input: text().required(),
  out: outFile(),
  model: inFile(),
  batch: int({ min: 1, max: 4096 }).default(64),
  backend: BACKEND,
  quiet: flag(),
  saliency: outFile(),
  "saliency-k": int({ min: 1, max: 1000 }).default(8),
  force: flag(),
});
checkApart("score", [{ option: "--out", path: a.out, kind: "file" }, { option: "--saliency", path: a.saliency, kind: "file" }], [{ option: "--detector", path: a.detector }, ...a.input.split(",").map((p) => ({ option: "--input", path: p.trim() })), { option: "--model", path: a.model }]);

// Every option and file checked before any work.
const ext = a.out ? [".csv", ".json"].find((e) => a.out!.toLowerCase().endsWith(e)) : null;
if (a.out && !ext) throw usageError("score", "--out", a.out, "expected a file name ending in .csv or .json");
if (a.saliency && !a.saliency.toLowerCase().endsWith(".png")) throw usageError("score", "--saliency", a.saliency, "expected a file name ending in .png");
const det = readDetectorText(new TextDecoder().decode(readRegularFile(a.detector, DETECTOR_MAX_BYTES, "detector file")), a.detector);
const modelPath = a.model ?? det.file.model.path;
let modelBytes: Uint8Array;
try {
  modelBytes = readRegularFile(modelPath, MODEL_MAX_BYTES, "model file");
} catch (e) {
  throw new Error(`${a.detector} names its model: ${(e as Error).message}${a.model ? "" : "; pass --model"}`);
}
// The detector's model is an input too: no output may replace it.
if (!a.model) checkApart("score", [{ option: "--out", path: a.out, kind: "file" }, { option: "--saliency", path: a.saliency, kind: "file" }], [{ option: "the detector's model", path: modelPath }]);
const sha = await sha256Hex(modelBytes);
checkModelHash(det.file, sha, modelPath, a.detector);
const modelFile = await checkModelFile(modelPath);
checkAgainstModel(det.file, modelFile.shapes, modelPath, a.detector);
try {
  modelFile.probe.objective(det.file.model.objective);
} catch (e) {
  throw new Error(`${a.detector}: model.objective: ${(e as Error).message}`);
}
const batch = a.batch, salK = a["saliency-k"], B = det.file.groupSize;
if (a.saliency && B !== 1) throw usageError("score", "--saliency", a.saliency, `needs a detector fitted with B = 1 (this one has B = ${B})`);
const featurePaths = a.input.split(",").map((s) => s.trim());
const fromFiles = featurePaths.every(isFeatureFile);
let input: FileSet | null = null, selection: SetSelection | null = null, rows: { logf: Float64Array[]; nll: Float64Array; ids: string[] } | null = null;
if (fromFiles) {
  if (a.saliency) throw usageError("score", "--saliency", a.saliency, "needs images; --input is a features file");
  for (const p of featurePaths) {
    try {
      if (!Deno.statSync(p).isFile) throw new Error();
    } catch {
      throw usageError("score", "--input", p, "no such features file (allowed: .npz/.csv files written by npm run features)");
    }
  }
  const f = mergeFeatureFiles(featurePaths.map((p) => ({ file: p, f: parseFeatureFile(Deno.readFileSync(p), p) })));
  const m = f.meta, d = det.file;
  const differ = [
    m.model.sha256 !== d.model.sha256 && `model SHA-256 ${m.model.sha256.slice(0, 16)}... vs ${d.model.sha256.slice(0, 16)}...`,
    m.objective !== d.model.objective && `objective ${m.objective} vs ${d.model.objective}`,
    m.groupSize !== B && `group size ${m.groupSize} vs ${B}`,
    m.seed !== d.seed && `seed ${m.seed} vs ${d.seed}`,
    f.layers.join() !== d.features.names.join() && "layers",
  ].filter(Boolean);
  if (differ.length) throw usageError("score", "--input", a.input, `its features were not made as the detector's were (${differ.join(", ")}); make them with npm run features --model ${modelPath} --objective ${d.model.objective} --B ${B} --seed ${d.seed}`);
  if (!f.logf.length) throw usageError("score", "--input", a.input, "holds no groups to score");
  rows = { logf: f.logf, nll: f.nll, ids: f.ids };
} else {
  if (featurePaths.length > 1) throw usageError("score", "--input", a.input, "a comma list is for features files (shards of one run); give one set of images");
  // A packaged set: the images the detector did not use (fit, calibration), or an error naming them.
  const spec = parseSetSpec(a.input, DATASETS);
  if (spec) {
    const used = [det.file.fit.selection, det.file.calibration?.selection].filter((s): s is SetSelection => !!s);
    selection = scoringSelection(spec, (split) => loadDataset(spec.set, split, { onNotice: notice }).n, used, `score: --input ${a.input}`);
    const all = loadDataset(spec.set, selection.split, { onNotice: notice }), idx = selectionIndices(selection, all.n);
    input = { set: subset(all, idx, spec.set), ids: Array.from(idx, (i) => `${spec.set}-${selection!.split}:${i}`) };
  } else {
    if (!pathOrPrefixedExists(a.input)) {
      throw usageError("score", "--input", a.input, `neither a packaged set (${DATASETS.join(", ")}, optionally :train or :test and :from-to, e.g. fashion:test:5000-6000), an image file or folder (optionally as FORMAT:PATH, e.g. svhn:test_32x32.mat), nor .npz/.csv features files`);
    }
    input = loadImageFiles(a.input);
  }
  input = { ...input, set: conformShape(input.set, det.file.model.image, `score: --input ${a.input}`) };
  if (input.set.n < B) throw usageError("score", "--input", a.input, `${input.set.n} image(s), fewer than the detector's group size B = ${B}`);
  if (selection) console.log(`input: ${input.set.n} images, ${describeSelection(selection)}${det.file.fit.selection?.set === selection.set && det.file.fit.selection.split === selection.split ? " (none of them fitted or calibrated on)" : ""}`);
}
workStarts();

const t0 = performance.now();
let featureSeconds = 0, model = null, objective = null;
if (!rows) {
  model = await loadModel(modelPath, await selectBackend(a.backend), modelFile);
  objective = model.objective(det.file.model.objective);
  const tf = performance.now();
  const f = await setFeatures(model, objective, input!.set, { groupSize: B, batch, seed: det.file.seed });
  featureSeconds = (performance.now() - tf) / 1000;
  const ids = input!.ids;
  rows = { logf: f.logf, nll: f.nll, ids: f.logf.map((_, g) => (B === 1 ? ids[g] : `${ids[g * B]}..${ids[g * B + B - 1]}`)) };
}
const groups = rows.logf.length;
const scored: (InputScore & { id: string })[] = rows.logf.map((r, g) => ({ id: rows!.ids[g], ...det.scoreRow(r, rows!.nll[g]) }));
const dropped = input ? input.set.n - groups * B : 0;
const measure = modelFile.probe.objective(det.file.model.objective).measure;

const f2 = (v: number) => v.toFixed(2);
if (!a.quiet) {
  const head = ["input", measure.unit ? `${measure.short} (${measure.unit})` : measure.short, "score", "pct", "verdict", "top layers (z)"];
  const cells = scored.map((r) => [r.id, r.nll.toFixed(4), r.score.toFixed(2), r.percentile.toFixed(1), r.verdict, r.top.map((t) => `${t.name} ${t.z >= 0 ? "+" : ""}${f2(t.z)}`).join(", ")]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const fmt = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(w[i]))).join("  ");
  console.log([fmt(head), ...cells.map(fmt)].join("\n"));
}
const flagged = scored.filter((r) => r.verdict === "ood").length;
console.log(`${groups} ${B === 1 ? "inputs" : `groups of ${B}`} scored (${det.file.method}; threshold ${f2(det.file.threshold95[det.file.method])} keeps 95% of the ${det.file.calibration ? "calibration" : "fit"} data): ${flagged} flagged OOD (${(100 * flagged / groups).toFixed(1)}%)${dropped ? `; the last ${dropped} inputs do not fill a group and were not scored` : ""}`);
if (featureSeconds) console.log(`features ${featureSeconds.toFixed(2)} s (${(groups * B / featureSeconds).toFixed(0)} inputs/s), ${((performance.now() - t0) / 1000).toFixed(2)} s in all`);

if (a.out) {
  if (ext === ".json") {
    writeFileAtomic(a.out, JSON.stringify({ detector: a.detector, model: modelPath, objective: det.file.model.objective, measure, groupSize: B, method: det.file.method, threshold95: det.file.threshold95[det.file.method], scores: scored }, null, 1) + "\n");
  } else {
    const q = (s: string) => /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    const lines = [["input", "value", "score", "percentile", "verdict", "layer1", "z1", "layer2", "z2", "layer3", "z3", ...featureScoreNames().map((m) => `score:${m}`)].join(",")];
    for (const r of scored) {
      const top = [0, 1, 2].flatMap((i) => (r.top[i] ? [r.top[i].name, r.top[i].z.toPrecision(6)] : ["", ""]));
      lines.push([q(r.id), r.nll.toPrecision(8), r.score.toPrecision(10), r.percentile.toFixed(2), r.verdict, ...top, ...featureScoreNames().map((m) => r.scores[m].toPrecision(10))].join(","));
    }
    writeFileAtomic(a.out, lines.join("\n") + "\n");
  }
  console.log(`scores: ${a.out}`);
}
if (a.saliency && model && objective && input) {
  const ts = performance.now();
  const shown = await flaggedSaliency(model, objective, det.fitted.diagonal, det.fitted.space.floor, input.set, rows.logf.map((r) => det.fitted.floor(r)), salK, det.file.seed);
  writeFileAtomic(a.saliency, saliencyPng([shown], input.set.c, input.set.h, input.set.w));
  console.log(`saliency: ${a.saliency} (${shown.map((e) => input!.ids[e.index]).join(", ")}; ${((performance.now() - ts) / 1000).toFixed(1)} s)`);
}
Deno.exit(0);
