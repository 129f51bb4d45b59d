// fit --model weights/glow-fashion.safetensors --out detector.json [--data fashion|mnist|<images>|<features.npz,...>]
//     [--split test|train] [--B 1] [--n 1000] [--objective NAME] [--batch 64] [--seed 0]
//     [--backend auto|cpu|webgpu|wasm] [--force]
// Fits the OOD detector once: gradient features of n in-distribution inputs (groups of B), every
// registered score (src/ood/scores.ts: the diagonal Gaussian, full covariance with ridge and with
// Ledoit-Wolf shrinkage, chi-square, Fisher's method, the baselines), the quantiles of the fit scores
// and the 95%-TPR threshold, with the model file's SHA-256 and the objective; writes the detector
// JSON (src/ood/detector.ts, format version 2) for `npm run score`. Features whose gradient norm is
// exactly 0 on some inputs are floored (never -inf), and features constant on the fit data are
// dropped; the drops are printed and recorded in the file.
// --data: a packaged set (default: the set the model was trained on), image files (a folder of PNGs,
// an .npy of uint8 [N,H,W] or [N,C,H,W], an IDX *-ubyte file, CIFAR-10 binary, or FORMAT:PATH for the
// paper's sets' official files: svhn:, gtsrb:, celeba:, imagenet32:, ...; docs/datasets.md), or features files from
// `npm run features` (.npz or .csv; the shards of one run, comma-separated, are merged in order and
// fit exactly as the one run's file; --n, --B, --objective and --seed then come from the files).
// --split, for a packaged set: test (default) fits on the first half of its seeded permutation of
// the test split, the images `npm run ood` fits on, so its second half stays unseen by both the model
// and the detector; train fits on the model's own training images. --n inputs are drawn in a seeded
// random order (all of them if there are fewer; for a packaged set the detector records which: its
// positions in that permutation, so score on the same set keeps off them); with B > 1 the groups are of consecutive drawn
// inputs, so random groups: score groups drawn the same way (groups of one class score as OOD).
// --objective: what is differentiated (the model's default: the NLL; a diffusion model's L1 eps-loss at t = 1).
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, choice, flag, inFile, int, outFile, parseOptions, pathOrPrefixedExists, text, usageError } from "../io/options.ts";
import * as T from "../autograd/index.ts";
import { subset } from "../data/dataset.ts";
import { conformShape, isBuiltinSet, loadNamedSet } from "../data/image_files.ts";
import { DATASETS } from "../data/mnist.ts";
import { describeSelection, type SetSelection } from "../data/selection.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkModelFile, loadModel } from "../models/registry.ts";
import { checkAgainstModel, detectorText, fitDetector, sha256Hex } from "../ood/detector.ts";
import { isFeatureFile, mergeFeatureFiles, parseFeatureFile } from "../ood/feature_file.ts";
import { setFeatures } from "../ood/loop.ts";
import { objectiveFor } from "./objective_option.ts";
import { progressBar } from "./progress.ts";

const a = parseOptions("fit", {
  model: inFile().required(),
  data: text(),
  B: int({ min: 1, max: 1000 }).default(1),
  n: int({ min: 2, max: 1_000_000 }).default(1000),
  objective: text(),
  batch: int({ min: 1, max: 4096 }).default(64),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  split: choice(["test", "train"] as const).default("test"),
  backend: BACKEND,
  out: outFile().required(),
  force: flag(),
});
checkApart("fit", [{ option: "--out", path: a.out, kind: "file" }], [{ option: "--model", path: a.model }, ...(a.data ?? "").split(",").map((p) => ({ option: "--data", path: p.trim() }))]);

// Every option and file checked before any work.
if (!a.out.toLowerCase().endsWith(".json")) throw usageError("fit", "--out", a.out, "expected a file name ending in .json (the detector file)");
const modelFile = await checkModelFile(a.model);
const modelBytes = Deno.readFileSync(a.model), sha256 = await sha256Hex(modelBytes);
const meta = modelFile.decoded.metadata;
const dataSpec = a.data ?? meta.data ?? "fashion";
const sizes = modelFile.shapes.map(([, s]) => s.reduce((x, y) => x * y, 1));
const featurePaths = dataSpec.split(",").map((s) => s.trim());
const fromFiles = featurePaths.every(isFeatureFile);
if (!fromFiles && featurePaths.length > 1) throw usageError("fit", "--data", dataSpec, "a comma list is for features files (.npz/.csv shards of one run); give one set of images");

let fitRows: { names: string[]; logf: Float64Array[]; nll: Float64Array; B: number; seed: number; objective: string; data: string; selection?: SetSelection; count: number };
let compute: null | { set: ReturnType<typeof subset>; objective: string; B: number } = null;
if (fromFiles) {
  for (const p of featurePaths) {
    try {
      if (!Deno.statSync(p).isFile) throw new Error("not a file");
    } catch {
      throw usageError("fit", "--data", p, "no such features file (allowed: .npz/.csv files written by npm run features)");
    }
  }
  const f = mergeFeatureFiles(featurePaths.map((p) => ({ file: p, f: parseFeatureFile(Deno.readFileSync(p), p) })));
  if (f.meta.model.sha256 !== sha256) throw usageError("fit", "--data", dataSpec, `its features are of a model with SHA-256 ${f.meta.model.sha256.slice(0, 16)}... (${f.meta.model.path}), not of ${a.model} (${sha256.slice(0, 16)}...)`);
  checkAgainstModel({ features: { names: f.layers, sizes: f.sizes } } as Parameters<typeof checkAgainstModel>[0], modelFile.shapes, a.model, featurePaths[0]);
  for (const [opt, given, inFile] of [["--B", a.B, f.meta.groupSize], ["--seed", a.seed, f.meta.seed], ["--objective", a.objective, f.meta.objective]] as const) {
    if (a.given.has(opt.slice(2)) && given !== inFile) throw usageError("fit", opt, String(given), `the features files were made with ${opt} ${inFile}; leave ${opt} out (it comes from the files)`);
  }
  if (a.given.has("n")) throw usageError("fit", "--n", String(a.n), "applies to images; a fit on features files uses every row of them");
  if (f.logf.length < 2) throw usageError("fit", "--data", dataSpec, `holds ${f.logf.length} group(s); a fit needs at least 2`);
  fitRows = { names: f.layers, logf: f.logf, nll: f.nll, B: f.meta.groupSize, seed: f.meta.seed, objective: f.meta.objective, data: `features ${f.meta.set.spec}`, count: f.logf.length * f.meta.groupSize };
  objectiveFor("fit", modelFile, a.model, f.meta.objective);
} else {
  if (!(DATASETS as readonly string[]).includes(dataSpec) && !pathOrPrefixedExists(dataSpec)) {
    throw usageError("fit", "--data", dataSpec, `neither ${DATASETS.join(", ")} nor an existing file or folder (images, FORMAT:PATH, or .npz/.csv features files)`);
  }
  const objective = objectiveFor("fit", modelFile, a.model, a.objective);
  const source = loadNamedSet(dataSpec, a.split, { onNotice: notice });
  // The images, in the model's shape, checked before the model is loaded.
  const all = conformShape(source.set, modelFile.probe.imageShape, `fit: --data ${dataSpec} (--model ${a.model})`);
  // The pool to draw from: a packaged test split's first half (as ood), else every image.
  const pool = isBuiltinSet(dataSpec) && a.split === "test"
    ? new T.Generator(1000 + a.seed).permutation(all.n).subarray(0, Math.floor(all.n / 2))
    : new T.Generator(4000 + a.seed).permutation(all.n);
  const count = Math.min(a.n, pool.length) - (Math.min(a.n, pool.length) % a.B);
  if (count < 2 * a.B) {
    throw usageError("fit", "--data", dataSpec, `offers ${pool.length} image(s) to fit on${isBuiltinSet(dataSpec) && a.split === "test" ? " (the first half of its test split)" : ""}; a fit needs at least 2 groups of --B ${a.B}`);
  }
  // Which images, for a packaged set: positions [0, count) of the permutation drawn above (recorded, so score keeps off them).
  const selection: SetSelection | undefined = isBuiltinSet(dataSpec) ? { set: dataSpec, split: a.split, seed: a.split === "test" ? 1000 + a.seed : 4000 + a.seed, from: 0, to: count } : undefined;
  compute = { set: subset(all, pool.subarray(0, count), dataSpec), objective, B: a.B };
  fitRows = { names: [], logf: [], nll: new Float64Array(0), B: a.B, seed: a.seed, objective, data: isBuiltinSet(dataSpec) ? `${dataSpec}-${a.split}` : dataSpec, selection, count };
  if (a.n > pool.length) console.log(`note: --n ${a.n}: ${dataSpec} offers ${pool.length}; fitting on ${count}`);
}
workStarts();

const t0 = performance.now();
let featureSeconds = 0;
if (compute) {
  const backend = await selectBackend(a.backend, { onNotice: notice });
  const model = await loadModel(a.model, backend, modelFile);
  const objective = model.objective(compute.objective);
  console.log(`fit: ${a.model} (${modelFile.kind}, ${model.imageShape.join("x")}), ${fitRows.count} inputs of ${fitRows.selection ? describeSelection(fitRows.selection) : dataSpec} in groups of ${compute.B}, ${objective.measure.short}, backend ${backend.name}`);
  const bar = progressBar("features", "{rate} inputs/s");
  bar.start(fitRows.count, 0, { rate: "-" });
  const tf = performance.now();
  const f = await setFeatures(model, objective, compute.set, {
    groupSize: compute.B, batch: a.batch, seed: a.seed,
    onProgress: (done) => bar.update(done, { rate: (done / ((performance.now() - tf) / 1000)).toFixed(0) }),
  });
  bar.stop();
  featureSeconds = (performance.now() - tf) / 1000;
  Object.assign(fitRows, { names: f.names, logf: f.logf, nll: f.nll });
} else console.log(`fit: ${a.model} (${modelFile.kind}), ${fitRows.logf.length} groups of B = ${fitRows.B} from ${featurePaths.join(", ")} (${fitRows.objective})`);
const det = fitDetector({
  model: { path: a.model, sha256, kind: modelFile.kind, image: [...modelFile.probe.imageShape], objective: fitRows.objective },
  groupSize: fitRows.B, seed: fitRows.seed, names: fitRows.names, sizes, logf: fitRows.logf, nll: fitRows.nll, data: fitRows.data, selection: fitRows.selection,
});
writeFileAtomic(a.out, detectorText(det));
const lw = det.scores["gradient-fullcov-lw"] as { shrinkage: { value: number } }, f = det.features;
console.log(`features: ${f.names.length} per group (${f.kept.length} kept), ${fitRows.logf.length} groups${featureSeconds ? ` in ${featureSeconds.toFixed(1)} s` : ""}`);
for (const d of f.dropped) console.log(`dropped: ${f.names[d.feature]}: ${d.reason}`);
const measure = modelFile.probe.objective(fitRows.objective).measure;
console.log(`fit ${measure.short} ${det.fit.nllMean.toFixed(4)} ± ${det.fit.nllSd.toFixed(4)}${measure.unit ? ` ${measure.unit}` : ""}; Ledoit-Wolf shrinkage ${lw.shrinkage.value.toFixed(3)}`);
console.log(`threshold at 95% TPR (gradient score): ${det.threshold95.gradient.toFixed(2)}; fit scores: median ${det.quantiles.gradient[50].toFixed(2)}, 1% ${det.quantiles.gradient[1].toFixed(2)}`);
console.log(`detector: ${a.out} (model sha256 ${det.model.sha256.slice(0, 16)}..., ${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
Deno.exit(0);
