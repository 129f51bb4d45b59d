// influence --model weights/glow-fashion.safetensors --input <image file|folder|array> --out strip.png
//           [--data fashion|mnist|<images>] [--n 1000] [--top 8] [--fim full|diag] [--first 8]
//           [--fim-lambda 1] [--batch 64] [--seed 0] [--backend auto|cpu|webgpu]
// FIM inner products between inputs (influence): the per-input gradients of n training images
// (--data: a packaged set's training split, default the model's own, or image files; a seeded
// random n of them) define F_N = lambda I + (1/n) sum s s^T (src/ood/woodbury.ts). For each of the
// first --first inputs of --input, prints the --top training images with the largest
// |s_x^T F^{-1} s_t| (--fim diag: F's diagonal instead) and writes a PNG strip per input: the input,
// then those training images, largest first.
import "./errors.ts";
import { parseArgs } from "node:util";
import * as T from "../autograd/index.ts";
import { range, subset } from "../data/dataset.ts";
import { conformShape, loadNamedSet } from "../data/image_files.ts";
import { readCheckpoint } from "../io/safetensors.ts";
import { selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { modelImageShape } from "../ood/detector.ts";
import { setGradients } from "../ood/fim_method.ts";
import { influenceStripPng, topInfluences } from "../ood/influence.ts";
import { groupGradients, WoodburyFim } from "../ood/woodbury.ts";
import { atomicWrite, checkBackend, checkOutPath, positiveInt, positiveNumber, readableFile } from "./detector_args.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" }, input: { type: "string" }, out: { type: "string" }, data: { type: "string" },
    n: { type: "string", default: "1000" }, top: { type: "string", default: "8" }, fim: { type: "string", default: "full" },
    first: { type: "string", default: "8" }, "fim-lambda": { type: "string", default: "1" }, batch: { type: "string", default: "64" },
    seed: { type: "string", default: "0" }, backend: { type: "string", default: "auto" },
  },
});
if (!a.model) throw new Error("influence: --model is required (a weights file)");
if (!a.input) throw new Error("influence: --input is required (an image file, a folder of PNGs or an array file)");
if (!a.out) throw new Error("influence: --out is required (the PNG strip to write)");
readableFile(a.model, "--model");
checkOutPath(a.out, "--out", [".png"]);
if (a.fim !== "full" && a.fim !== "diag") throw new Error(`--fim ${JSON.stringify(a.fim)}: expected full or diag`);
const n = positiveInt(a.n!, "--n", 2), top = positiveInt(a.top!, "--top"), first = positiveInt(a.first!, "--first");
const lambdaScale = positiveNumber(a["fim-lambda"]!, "--fim-lambda"), batch = positiveInt(a.batch!, "--batch"), seed = positiveInt(a.seed!, "--seed", 0);
const backendChoice = checkBackend(a.backend!);
const meta = readCheckpoint(a.model).metadata;
const dataSpec = a.data ?? meta.data ?? "fashion";
const train = loadNamedSet(dataSpec, "train"), input = loadNamedSet(a.input, "test");

const t0 = performance.now();
const model = await loadModel(a.model, await selectBackend(backendChoice, { quiet: true }));
const shape = modelImageShape(model);
const trainSet = conformShape(train.set, shape, `--data ${dataSpec}`), inSet = conformShape(input.set, shape, `--input ${a.input}`);
const pick = new T.Generator(5000 + seed).permutation(trainSet.n).subarray(0, Math.min(n, trainSet.n));
const fitSet = subset(trainSet, pick);
const fim = await WoodburyFim.fit(await setGradients(model, fitSet, { groupSize: 1, batch, seed }), { lambdaScale, block: false });
console.log(`F_N from ${fim.n} images of ${dataSpec} (${fim.parameters} parameters, lambda ${fim.lambda.toExponential(3)}; ${(fim.floats * 4 / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s; F: ${a.fim === "full" ? "full (Woodbury)" : "diagonal"}`);

const m = Math.min(first, inSet.n), d = shape[0] * shape[1] * shape[2];
const x = model.input(inSet, range(0, m));
const g = groupGradients(model, x, 1);
x.dispose();
const infl = await topInfluences(fim, g, top, a.fim === "diag");
g.forEach((t) => t.dispose());
const rows = infl.map((list, i) => {
  console.log(`${input.ids[i]}: ${list.map((e) => `${train.ids[pick[e.t]]} ${e.value.toPrecision(3)}`).join(", ")}`);
  return { input: inSet.images.slice(i * d, (i + 1) * d), top: list.map((e) => fitSet.images.slice(e.t * d, (e.t + 1) * d)) };
});
atomicWrite(a.out, influenceStripPng(rows, shape[0], shape[1], shape[2]));
fim.dispose();
console.log(`strip: ${a.out} (${m} rows: the input, then its ${top} most influential training images; ${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
Deno.exit(0);
