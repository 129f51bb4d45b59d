// nll --model weights/glow-fashion.safetensors [--data fashion,mnist] [--n 10000]
// Mean test NLL (bits/dim) of a model on each dataset's test split: the likelihood failure shows
// as a lower NLL on the dataset the model never saw.
import "./errors.ts";
import { parseArgs } from "node:util";
import { loadDataset } from "../data/mnist.ts";
import { type BackendChoice, selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { evaluate } from "../models/train.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: { model: { type: "string" }, data: { type: "string", default: "fashion,mnist" }, n: { type: "string", default: "10000" }, backend: { type: "string", default: "auto" } },
});
if (!a.model) throw new Error("nll: --model is required");
const model = await loadModel(a.model, await selectBackend(a.backend as BackendChoice));
for (const d of a.data!.split(",")) {
  const bpd = await evaluate(model, loadDataset(d, "test"), Number(a.n));
  console.log(`${a.model}: mean NLL on ${d} test (${Math.min(Number(a.n), 10000)} images): ${bpd.toFixed(4)} bits/dim`);
}
Deno.exit(0);
