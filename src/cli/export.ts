// export --checkpoint weights/x.ckpt.safetensors --out weights/x.safetensors [--eval-n 10000]
// Turns a training checkpoint into shipped weights (parameters only), evaluating the test NLL and
// recording steps, training time and the command in the metadata.
import "./errors.ts";
import { barFor } from "./progress.ts";
import { parseArgs } from "node:util";
import { loadDataset } from "../data/mnist.ts";
import { readCheckpoint, saveTensors } from "../io/safetensors.ts";
import { type BackendChoice, selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { evaluate, metadataOf } from "../models/train.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    checkpoint: { type: "string" }, out: { type: "string" }, "eval-n": { type: "string", default: "10000" },
    backend: { type: "string", default: "auto" }, command: { type: "string" },
  },
});
if (!a.checkpoint || !a.out) throw new Error("export: --checkpoint and --out are required");
const meta = readCheckpoint(a.checkpoint).metadata;
const backend = await selectBackend(a.backend as BackendChoice);
const model = await loadModel(a.checkpoint, backend);
const data = meta.data ?? "fashion";
const n = Number(a["eval-n"]);
const bar = barFor("eval ", "ex");
const bpd = await evaluate(model, loadDataset(data, "test"), n, { onProgress: (d, t) => bar.update(d, t) }).finally(() => bar.stop());
await saveTensors(a.out, model.namedParameters(), metadataOf(model, {
  data, steps: meta.step, seed: meta.seed, lr: meta.lr, batch: meta.batch, optimizer: meta.optimizer,
  train_seconds: Number(meta.elapsed_s ?? 0).toFixed(0), test_bpd: bpd.toFixed(4), test_eval_n: Math.min(n, 10000),
  command: a.command ?? `npm run train -- --model ${model.kind} --data ${data} (checkpoint at step ${meta.step})`,
}));
console.log(`${a.out}: ${model.kind} on ${data}, step ${meta.step}, ${(Number(meta.elapsed_s) / 60).toFixed(1)} min of training, test NLL ${bpd.toFixed(4)} bits/dim`);
Deno.exit(0);
