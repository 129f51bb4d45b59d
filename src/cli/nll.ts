// nll --model weights/glow-fashion.safetensors [--data fashion,mnist] [--n 10000] [--backend auto|cpu|webgpu|wasm]
// Mean test NLL (bits/dim) of a model on each dataset's test split: the likelihood failure shows
// as a lower NLL on the dataset the model never saw.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, choices, inFile, int, parseOptions } from "../io/options.ts";
import { DATASETS, imageShapeOf, loadDataset, splitSize } from "../data/mnist.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkImageShape, checkModelFile, loadModel } from "../models/registry.ts";
import { evaluateStats } from "../models/train.ts";

const a = parseOptions("nll", {
  model: inFile().required(),
  data: choices(DATASETS).default(["fashion", "mnist"]),
  n: int({ min: 1, max: 10000 }).default(10000),
  backend: BACKEND,
});
const file = await checkModelFile(a.model);
for (const d of a.data) checkImageShape(file.kind, file.config, imageShapeOf(d), d, `nll: --model ${a.model}`);
workStarts();
const model = await loadModel(a.model, await selectBackend(a.backend, { onNotice: notice }), file);
for (const d of a.data) {
  const n = Math.min(a.n, splitSize(d, "test"));
  const r = await evaluateStats(model, loadDataset(d, "test", { onNotice: notice }), n);
  console.log(`${a.model}: mean NLL on ${d} test (${n} images): ${r.mean.toFixed(4)} bits/dim (standard error ${r.se.toFixed(4)}; median ${r.median.toFixed(4)}, largest ${r.max.toFixed(2)})`);
}
Deno.exit(0);
