// score --detector detector.json --input <file|folder|fashion[:test|train][:from-to]>
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
// refused. --out writes CSV or JSON by its extension; --quiet prints only the summary.
// --saliency (B = 1): a PNG of the --saliency-k lowest-scoring inputs, each beside an overlay of
// d score / d pixels (double backprop: which pixels drive the score).
import { notice } from "./errors.ts";
import { BACKEND, checkApart, flag, inFile, int, outFile, parseOptions, setOrPath, usageError, workStarts } from "../io/options.ts";
import { DATASETS, loadDataset } from "../data/mnist.ts";
import { subset } from "../data/dataset.ts";
import { describeSelection, parseSetSpec, scoringSelection, type SetSelection, selectionIndices } from "../data/selection.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { DETECTOR_FILE_MAX_BYTES, MODEL_FILE_MAX_BYTES, readRegularFile, readTextFile } from "../io/read.ts";
import { conformShape, type FileSet, loadImageFiles } from "../data/image_files.ts";
import { selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { checkModelHash, DETECTOR_METHODS, type InputScore, readDetectorText, sha256Hex } from "../ood/detector.ts";
import { setFeatures } from "../ood/pipeline.ts";
import * as T from "../autograd/index.ts";
import { DiagonalGaussian } from "../ood/density.ts";
import { noiseFor } from "../ood/features.ts";
import { flaggedSaliency, saliencyPng } from "../ood/saliency.ts";

const a = parseOptions("score", {
  detector: inFile().required(),
  input: setOrPath(DATASETS, (r) => parseSetSpec(r, DATASETS) !== null).required(),
  out: outFile(),
  model: inFile(),
  batch: int({ min: 1, max: 4096 }).default(64),
  backend: BACKEND,
  quiet: flag(),
  saliency: outFile(),
  "saliency-k": int({ min: 1, max: 1000 }).default(8),
  force: flag(),
});
checkApart("score", [{ option: "--out", path: a.out, kind: "file" }, { option: "--saliency", path: a.saliency, kind: "file" }], [{ option: "--detector", path: a.detector }, { option: "--input", path: a.input }, { option: "--model", path: a.model }]);

// Every option and file checked before any work.
const ext = a.out ? [".csv", ".json"].find((e) => a.out!.toLowerCase().endsWith(e)) : null;
if (a.out && !ext) throw usageError("score", "--out", a.out, "expected a file name ending in .csv or .json");
if (a.saliency && !a.saliency.toLowerCase().endsWith(".png")) throw usageError("score", "--saliency", a.saliency, "expected a file name ending in .png");
const det = readDetectorText(readTextFile(a.detector, DETECTOR_FILE_MAX_BYTES, "detector"), a.detector);
const modelPath = a.model ?? det.file.model.path;
let modelBytes: Uint8Array;
try {
  modelBytes = readRegularFile(modelPath, MODEL_FILE_MAX_BYTES, "model");
} catch (e) {
  throw new Error(`${a.detector}: cannot read its model (${(e as Error).message}); pass --model`);
}
checkModelHash(det.file, await sha256Hex(modelBytes), modelPath, a.detector);
const batch = a.batch, salK = a["saliency-k"];
if (a.saliency && det.file.groupSize !== 1) throw usageError("score", "--saliency", a.saliency, `needs a detector fitted with B = 1 (this one has B = ${det.file.groupSize})`);
// A packaged set: the images the detector did not use (fit, calibration), or an error naming them.
const spec = parseSetSpec(a.input, DATASETS);
let input: FileSet, selection: SetSelection | null = null;
if (spec) {
  const used = [det.file.fit.selection, det.file.calibration?.selection].filter((s): s is SetSelection => !!s);
  selection = scoringSelection(spec, (split) => loadDataset(spec.set, split, { onNotice: notice }).n, used, `score: --input ${a.input}`);
  const all = loadDataset(spec.set, selection.split, { onNotice: notice }), idx = selectionIndices(selection, all.n);
  input = { set: subset(all, idx, spec.set), ids: Array.from(idx, (i) => `${spec.set}-${selection!.split}:${i}`) };
} else input = loadImageFiles(a.input);
const set = conformShape(input.set, det.file.model.image, `--input ${a.input}`);
const B = det.file.groupSize;
if (set.n < B) throw new Error(`--input ${a.input}: ${set.n} images, fewer than the detector's group size B = ${B}`);
if (selection) console.log(`input: ${set.n} images, ${describeSelection(selection)}${det.file.fit.selection?.set === selection.set && det.file.fit.selection.split === selection.split ? " (none of them fitted or calibrated on)" : ""}`);
workStarts();

const t0 = performance.now();
const model = await loadModel(modelPath, await selectBackend(a.backend));
const shape: [number, number, number] = [...model.imageShape];
if (shape.join() !== det.file.model.image.join()) throw new Error(`${a.detector}: image shape ${det.file.model.image.join("x")} but ${modelPath} takes ${shape.join("x")}`);
const tf = performance.now();
const f = await setFeatures(model, set, { groupSize: B, batch });
const featureSeconds = (performance.now() - tf) / 1000;
if (f.names.join() !== det.names.join()) throw new Error(`${a.detector}: its features do not match ${modelPath}'s parameter tensors`);

const groups = f.logf.length;
const rows: (InputScore & { id: string })[] = f.logf.map((r, g) => ({ id: B === 1 ? input.ids[g] : `${input.ids[g * B]}..${input.ids[g * B + B - 1]}`, ...det.scoreRow(r, f.nll[g]) }));
const dropped = set.n - groups * B;

const f2 = (v: number) => v.toFixed(2);
if (!a.quiet) {
  const head = ["input", "NLL bpd", "score", "pct", "verdict", "top layers (z)"];
  const cells = rows.map((r) => [r.id, r.nll.toFixed(3), r.score.toFixed(2), r.percentile.toFixed(1), r.verdict, r.top.map((t) => `${t.name} ${t.z >= 0 ? "+" : ""}${f2(t.z)}`).join(", ")]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const fmt = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(w[i]))).join("  ");
  console.log([fmt(head), ...cells.map(fmt)].join("\n"));
}
const flagged = rows.filter((r) => r.verdict === "ood").length;
console.log(`${groups} ${B === 1 ? "inputs" : `groups of ${B}`} scored (${det.file.method}; threshold ${f2(det.file.threshold95[det.file.method])} keeps 95% of the fit data): ${flagged} flagged OOD (${(100 * flagged / groups).toFixed(1)}%)${dropped ? `; the last ${dropped} inputs do not fill a group and were not scored` : ""}`);
console.log(`features ${featureSeconds.toFixed(2)} s (${(set.n - dropped) / featureSeconds > 0 ? ((set.n - dropped) / featureSeconds).toFixed(0) : "-"} inputs/s), ${((performance.now() - t0) / 1000).toFixed(2)} s in all`);

if (a.out) {
  if (ext === ".json") {
    writeFileAtomic(a.out, JSON.stringify({ detector: a.detector, model: modelPath, groupSize: B, method: det.file.method, threshold95: det.file.threshold95[det.file.method], scores: rows }, null, 1) + "\n");
  } else {
    const q = (s: string) => /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    const lines = [["input", "nll_bpd", "score", "percentile", "verdict", "layer1", "z1", "layer2", "z2", "layer3", "z3", ...DETECTOR_METHODS.map((m) => `score:${m}`)].join(",")];
    for (const r of rows) {
      const top = [0, 1, 2].flatMap((i) => (r.top[i] ? [r.top[i].name, r.top[i].z.toPrecision(6)] : ["", ""]));
      lines.push([q(r.id), r.nll.toPrecision(8), r.score.toPrecision(10), r.percentile.toFixed(2), r.verdict, ...top, ...DETECTOR_METHODS.map((m) => r.scores[m].toPrecision(10))].join(","));
    }
    writeFileAtomic(a.out, lines.join("\n") + "\n");
  }
  console.log(`scores: ${a.out}`);
}
if (a.saliency) {
  const ts = performance.now();
  const diag = DiagonalGaussian.fromParams(det.file.densities.gradient);
  const shown = await flaggedSaliency(model, diag, set, f.logf, salK, (i) => noiseFor(model, 1, new T.Generator(7000 + i)));
  writeFileAtomic(a.saliency, saliencyPng([shown], set.c, set.h, set.w));
  console.log(`saliency: ${a.saliency} (${shown.map((e) => input.ids[e.index]).join(", ")}; ${((performance.now() - ts) / 1000).toFixed(1)} s)`);
}
Deno.exit(0);
