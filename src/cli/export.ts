// export --checkpoint weights/runs/x.ckpt.safetensors --out weights/runs/x.safetensors [--eval-n 10000]
//        [--command TEXT] [--backend auto|cpu|webgpu|wasm] [--force]
// Turns a training checkpoint into shipped weights (parameters only), evaluating the test NLL and
// recording steps, training time and the command in the metadata. The input must be a training
// checkpoint (step and optimiser state), not a weights file; writing over a shipped or git-tracked
// file needs --force.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, checkApart, flag, inFile, int, outFile, parseOptions, text, usageError } from "../io/options.ts";
import { DATASETS, imageShapeOf, loadDataset, splitSize } from "../data/mnist.ts";
import { saveTensors } from "../io/safetensors.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkImageShape, checkModelFile, isTrainingCheckpoint, loadModel } from "../models/registry.ts";
import { evaluate, metadataOf } from "../models/train.ts";
import { barFor } from "./progress.ts";

const a = parseOptions("export", {
  checkpoint: inFile().required(),
  out: outFile().required(),
  "eval-n": int({ min: 1, max: 10000 }).default(10000),
  backend: BACKEND,
  command: text(),
  force: flag(),
});
checkApart("export", [{ option: "--out", path: a.out, kind: "file" }], [{ option: "--checkpoint", path: a.checkpoint }]);
const file = await checkModelFile(a.checkpoint);
const meta = file.decoded.metadata;
if (!isTrainingCheckpoint(file.decoded)) {
  throw usageError("export", "--checkpoint", a.checkpoint, "is a weights file, not a training checkpoint (allowed: a *.ckpt.safetensors written by train, with step and optimiser state)");
}
const data = meta.data ?? "fashion";
if (!(DATASETS as readonly string[]).includes(data)) throw new Error(`checkpoint ${a.checkpoint}: __metadata__.data '${data}' is not a dataset (allowed: ${DATASETS.join(", ")})`);
for (const k of ["seed", "lr", "batch", "optimizer"] as const) {
  if (meta[k] === undefined) throw new Error(`checkpoint ${a.checkpoint}: no '${k}' in __metadata__ (not a checkpoint written by train)`);
}
checkImageShape(file.kind, file.config, imageShapeOf(data), data, `checkpoint ${a.checkpoint}`);
const n = Math.min(a["eval-n"], splitSize(data, "test"));
workStarts();
const backend = await selectBackend(a.backend, { onNotice: notice });
const model = await loadModel(a.checkpoint, backend, file);
const bar = barFor("eval ", "ex");
const bpd = await evaluate(model, loadDataset(data, "test", { onNotice: notice }), n, { onProgress: (d, t) => bar.update(d, t) }).finally(() => bar.stop());
await saveTensors(a.out, model.namedState(), metadataOf(model, {
  data, steps: meta.step, seed: meta.seed, lr: meta.lr, batch: meta.batch, optimizer: meta.optimizer,
  train_seconds: Number(meta.elapsed_s ?? 0).toFixed(0), test_bpd: bpd.toFixed(4), test_eval_n: n,
  command: a.command ?? `npm run train -- --model ${model.kind} --data ${data} (checkpoint at step ${meta.step})`,
}));
console.log(`${a.out}: ${model.kind} on ${data}, step ${meta.step}, ${(Number(meta.elapsed_s ?? 0) / 60).toFixed(1)} min of training, test NLL ${bpd.toFixed(4)} bits/dim`);
Deno.exit(0);
