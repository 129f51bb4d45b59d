// influence --model weights/glow-fashion.safetensors --input <image file|folder|array> --out strip.png
//           [--data fashion|mnist|<images>] [--n 1000] [--top 8] [--fim full|diag] [--first 8]
//           [--fim-lambda 1] [--batch 64] [--seed 0] [--objective nll] [--backend auto|cpu|webgpu|wasm] [--force]
// FIM inner products between inputs (influence): the per-input gradients of n training images
// (--data: a packaged set's training split, default the model's own, or image files; a seeded
// random n of them) define F_N = lambda I + (1/n) sum s s^T (src/ood/woodbury.ts). For each of the
// first --first inputs of --input, prints the --top training images with the largest
// |s_x^T F^{-1} s_t| (--fim diag: F's diagonal instead) and writes a PNG strip per input: the input,
// then those training images, largest first. --objective: what is differentiated (the model's default:
// the NLL; a diffusion model's L1 eps-loss at t = 1); each input's draws come from its pixels and --seed.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, choice, flag, inFile, int, nameOrPath, num, outFile, parseOptions, text, usageError } from "../io/options.ts";
import { DATASETS } from "../data/mnist.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { checkModelFile } from "../models/registry.ts";
import * as T from "../autograd/index.ts";
import { range, subset } from "../data/dataset.ts";
import { conformShape, loadNamedSet } from "../data/image_files.ts";
import { selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { setGradients } from "../ood/loop.ts";
import { influenceStripPng, topInfluences } from "../ood/influence.ts";
import { WoodburyFim } from "../ood/woodbury.ts";
import { objectiveFor } from "./objective_option.ts";

const a = parseOptions("influence", {
  model: inFile().required(),
  input: nameOrPath(DATASETS).required(),
  out: outFile().required(),
  data: nameOrPath(DATASETS),
  n: int({ min: 2, max: 1_000_000 }).default(1000),
  top: int({ min: 1, max: 1000 }).default(8),
  fim: choice(["full", "diag"] as const).default("full"),
  first: int({ min: 1, max: 1000 }).default(8),
  "fim-lambda": num({ min: 1e-12, max: 1e12 }).default(1),
  batch: int({ min: 1, max: 4096 }).default(64),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  objective: text(),
  backend: BACKEND,
  force: flag(),
});
if (!a.out.toLowerCase().endsWith(".png")) throw usageError("influence", "--out", a.out, "expected a file name ending in .png (the strip)");
checkApart("influence", [{ option: "--out", path: a.out, kind: "file" }], [{ option: "--model", path: a.model }, { option: "--input", path: a.input }, { option: "--data", path: a.data }]);
const file = await checkModelFile(a.model), meta = file.decoded.metadata;
const objectiveName = objectiveFor("influence", file, a.model, a.objective);
const { n, top, first, batch, seed } = a, lambdaScale = a["fim-lambda"];
const dataSpec = a.data ?? meta.data ?? "fashion";
const train = loadNamedSet(dataSpec, "train", { onNotice: notice }), input = loadNamedSet(a.input, "test", { onNotice: notice });
// The images in the model's shape (from its file's config), checked before the model is loaded.
const shape: [number, number, number] = [...file.probe.imageShape];
const trainSet = conformShape(train.set, shape, `influence: --data ${dataSpec}`), inSet = conformShape(input.set, shape, `influence: --input ${a.input}`);
// Counts beyond the data are refused when given (a default takes what there is).
if (a.given.has("n") && n > trainSet.n) throw usageError("influence", "--n", String(n), `at most ${trainSet.n} (the training images of ${dataSpec})`);
if (a.given.has("first") && first > inSet.n) throw usageError("influence", "--first", String(first), `at most ${inSet.n} (the images of --input ${a.input})`);
const nFit = Math.min(n, trainSet.n);
if (a.given.has("top") && top > nFit) throw usageError("influence", "--top", String(top), `at most ${nFit} (the training images F_N is fitted on)`);
workStarts();

const t0 = performance.now();
const model = await loadModel(a.model, await selectBackend(a.backend), file);
const objective = model.objective(objectiveName);
const pick = new T.Generator(5000 + seed).permutation(trainSet.n).subarray(0, nFit);
const fitSet = subset(trainSet, pick);
const fim = await WoodburyFim.fit(await setGradients(model, objective, fitSet, { groupSize: 1, batch, seed }), { lambdaScale, block: false });
console.log(`F_N from ${fim.n} images of ${dataSpec} (${fim.parameters} parameters, lambda ${fim.lambda.toExponential(3)}; ${(fim.floats * 4 / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s; F: ${a.fim === "full" ? "full (Woodbury)" : "diagonal"}`);

const m = Math.min(first, inSet.n), d = shape[0] * shape[1] * shape[2];
const infl = [];
for (const g of await setGradients(model, objective, subset(inSet, range(0, m)), { groupSize: 1, batch, seed })) {
  infl.push(...await topInfluences(fim, g, top, a.fim === "diag"));
  g.forEach((t) => t.dispose());
}
const rows = infl.map((list, i) => {
  console.log(`${input.ids[i]}: ${list.map((e) => `${train.ids[pick[e.t]]} ${e.value.toPrecision(3)}`).join(", ")}`);
  return { input: inSet.images.slice(i * d, (i + 1) * d), top: list.map((e) => fitSet.images.slice(e.t * d, (e.t + 1) * d)) };
});
writeFileAtomic(a.out, influenceStripPng(rows, shape[0], shape[1], shape[2]));
fim.dispose();
console.log(`strip: ${a.out} (${m} rows: the input, then its ${top} most influential training images; ${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
Deno.exit(0);
