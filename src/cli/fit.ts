// fit --model weights/glow-fashion.safetensors --out detector.json [--data fashion|mnist|<images>]
//     [--split test|train] [--B 1] [--n 1000] [--batch 64] [--seed 0] [--backend auto|cpu|webgpu|wasm] [--force]
// Fits the OOD detector once: gradient features of n in-distribution inputs (groups of B), every
// density (diagonal Gaussian, full covariance with ridge and with Ledoit-Wolf shrinkage, chi-square),
// the quantiles of the fit scores and the 95%-TPR threshold, with the model file's SHA-256; writes
// the detector JSON (src/ood/detector.ts) for `npm run score`.
// --data: a packaged set (default: the set the model was trained on), or images from files: a
// folder of PNGs, an .npy of uint8 [N,H,W] or [N,C,H,W], an IDX *-ubyte file, CIFAR-10 binary, or
// FORMAT:PATH for the paper's sets' official files (svhn:, gtsrb:, celeba:, imagenet32:, ...; docs/datasets.md).
// --split, for a packaged set: test (default) fits on the first half of its seeded permutation of
// the test split, the images `npm run ood` fits on, so its second half stays unseen by both the model
// and the detector; train fits on the model's own training images. --n inputs are drawn in a seeded
// random order (all of them if there are fewer; for a packaged set the detector records which: its
// positions in that permutation, so score on the same set keeps off them); with B > 1 the groups are of consecutive drawn
// inputs, so random groups: score groups drawn the same way (groups of one class score as OOD).
import { notice } from "./errors.ts";
import { BACKEND, choice, flag, inFile, int, nameOrPath, outFile, parseOptions, usageError, workStarts } from "../io/options.ts";
import { DATASETS } from "../data/mnist.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { checkModelFile, modelImageShape } from "../models/registry.ts";
import * as T from "../autograd/index.ts";
import { subset } from "../data/dataset.ts";
import { conformShape, isBuiltinSet, loadNamedSet } from "../data/image_files.ts";
import { describeSelection, type SetSelection } from "../data/selection.ts";
import { selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { detectorText, fitDetector, sha256Hex } from "../ood/detector.ts";
import { setFeatures } from "../ood/pipeline.ts";
import { progressBar } from "./progress.ts";

const a = parseOptions("fit", {
  model: inFile().required(),
  data: nameOrPath(DATASETS),
  B: int({ min: 1, max: 1000 }).default(1),
  n: int({ min: 2, max: 1_000_000 }).default(1000),
  batch: int({ min: 1, max: 4096 }).default(64),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  split: choice(["test", "train"] as const).default("test"),
  backend: BACKEND,
  out: outFile().required(),
  force: flag(),
});

// Every option checked before any work.
if (!a.out.toLowerCase().endsWith(".json")) throw usageError("fit", "--out", a.out, "expected a file name ending in .json (the detector file)");
const modelFile = await checkModelFile(a.model);
const modelBytes = Deno.readFileSync(a.model);
const { B, n, batch, seed } = a;
const meta = modelFile.decoded.metadata;
const dataSpec = a.data ?? meta.data ?? "fashion";
const source = loadNamedSet(dataSpec, a.split, { onNotice: notice });
const shape = modelImageShape(modelFile.kind, modelFile.config);
const all = conformShape(source.set, shape, `--data ${dataSpec}`);
// The pool to draw from: a packaged test split's first half (as ood), else every image.
const pool = isBuiltinSet(dataSpec) && a.split === "test"
  ? new T.Generator(1000 + seed).permutation(source.set.n).subarray(0, Math.floor(source.set.n / 2))
  : new T.Generator(4000 + seed).permutation(source.set.n);
workStarts();

const t0 = performance.now();
const backend = await selectBackend(a.backend, { onNotice: notice });
const model = await loadModel(a.model, backend);
const count = Math.min(n, pool.length) - (Math.min(n, pool.length) % B);
if (count < 2 * B) throw new Error(`fit: --data ${dataSpec} has ${pool.length} images to fit on; a fit needs at least 2 groups of --B ${B}`);
const fitSet = subset(all, pool.subarray(0, count), dataSpec);
// Which images, for a packaged set: positions [0, count) of the permutation drawn above (recorded, so score keeps off them).
const selection: SetSelection | undefined = isBuiltinSet(dataSpec) ? { set: dataSpec, split: a.split, seed: a.split === "test" ? 1000 + seed : 4000 + seed, from: 0, to: count } : undefined;
console.log(`fit: ${a.model} (${meta.kind}, ${shape.join("x")}), ${count} inputs of ${selection ? describeSelection(selection) : dataSpec} in groups of ${B}, backend ${backend.name}`);

const bar = progressBar("features", "{rate} inputs/s");
bar.start(count, 0, { rate: "-" });
let done = 0;
const tf = performance.now();
const f = await setFeatures(model, fitSet, {
  groupSize: B, batch, seed,
  onProgress: (k) => { done += k; bar.update(done, { rate: (done / ((performance.now() - tf) / 1000)).toFixed(0) }); },
});
bar.stop();
const featureSeconds = (performance.now() - tf) / 1000;
const det = fitDetector({
  model: { path: a.model, sha256: await sha256Hex(modelBytes), kind: meta.kind ?? "unknown", image: shape },
  groupSize: B, names: f.names, logf: f.logf, nll: f.nll, data: isBuiltinSet(dataSpec) ? `${dataSpec}-${a.split}` : dataSpec, selection,
});
writeFileAtomic(a.out, detectorText(det));
const lw = det.densities["gradient-fullcov-lw"];
console.log(`features: ${f.names.length} per group (${det.densities.gradient.kept.length} kept), ${f.logf.length} groups in ${featureSeconds.toFixed(1)} s`);
console.log(`fit NLL ${det.fit.nllMean.toFixed(3)} ± ${det.fit.nllSd.toFixed(3)} bits/dim; Ledoit-Wolf shrinkage ${lw.shrinkage.value.toFixed(3)}`);
console.log(`threshold at 95% TPR (gradient score): ${det.threshold95.gradient.toFixed(2)}; fit scores: median ${det.quantiles.gradient[50].toFixed(2)}, 1% ${det.quantiles.gradient[1].toFixed(2)}`);
console.log(`detector: ${a.out} (model sha256 ${det.model.sha256.slice(0, 16)}..., ${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
Deno.exit(0);
