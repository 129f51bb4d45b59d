// train --model vae|glow --data fashion|mnist|<images: PNG folder, .npy, IDX, CIFAR-10 .bin> [--steps N] [--batch B] [--lr LR] [--seed S]
//       [--out weights/<model>-<data>.safetensors] [--checkpoint-every N] [--resume FILE]
//       [--eval-n N] [--backend auto|cpu|webgpu] [--config JSON]
import "./errors.ts";
import { parseArgs } from "node:util";
import { conformShape, isBuiltinSet, trainTestSets } from "../data/image_files.ts";
import { saveTensors } from "../io/safetensors.ts";
import { selectBackend, type BackendChoice } from "../kernels/select.ts";
import { createModel } from "../models/registry.ts";
import { evaluate, metadataOf, train } from "../models/train.ts";
import { modelImageShape } from "../ood/detector.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "vae" },
    data: { type: "string", default: "fashion" },
    steps: { type: "string", default: "3000" },
    batch: { type: "string", default: "64" },
    lr: { type: "string" },
    seed: { type: "string", default: "0" },
    optimizer: { type: "string" },
    clip: { type: "string", default: "100" },
    warmup: { type: "string", default: "200" },
    out: { type: "string" },
    "checkpoint-every": { type: "string", default: "500" },
    resume: { type: "string" },
    "eval-n": { type: "string", default: "10000" },
    backend: { type: "string", default: "auto" },
    config: { type: "string" },
  },
});

const kind = a.model!, dataName = a.data!;
const out = a.out ?? `weights/${kind}-${dataName}.safetensors`;
const backend = await selectBackend(a.backend as BackendChoice);
const seed = Number(a.seed);
// Data first (a bad file fails before any work); a Glow takes the files' image shape unless --config gives one.
const sets = trainTestSets(dataName);
const config = a.config ? JSON.parse(a.config) : undefined;
const glowImage = kind === "glow" && !isBuiltinSet(dataName) && !config?.image ? { image: [sets.train.c, sets.train.h, sets.train.w] } : {};
const model = await createModel(kind, config || Object.keys(glowImage).length ? { ...config, ...glowImage } : undefined, backend, seed);
console.log(`${kind} on ${dataName}: ${model.numParameters()} parameters, backend ${backend.name}${isBuiltinSet(dataName) ? "" : `; test set: ${sets.note}`}`);
const shape = modelImageShape(model);
const trainSet = conformShape(sets.train, shape, `--data ${dataName}`), testSet = conformShape(sets.test, shape, `--data ${dataName}`);
const ckpt = out.replace(/\.safetensors$/, "") + ".ckpt.safetensors";
const res = await train(model, trainSet, {
  steps: Number(a.steps), batch: Number(a.batch), lr: Number(a.lr ?? (kind === "glow" ? 1e-3 : 2e-3)), seed,
  optimizer: (a.optimizer ?? (kind === "glow" ? "adamax" : "adam")) as "adam" | "adamax",
  clip: Number(a.clip), warmup: Number(a.warmup), checkpointEvery: Number(a["checkpoint-every"]),
  checkpointPath: ckpt, resume: a.resume, data: dataName,
});
const bpd = await evaluate(model, testSet, Number(a["eval-n"]));
console.log(`trained ${res.steps} steps in ${(res.seconds / 60).toFixed(1)} min; test NLL ${bpd.toFixed(4)} bits/dim (${dataName} test, first ${Math.min(Number(a["eval-n"]), testSet.n)} images)`);
await saveTensors(out, model.namedParameters(), metadataOf(model, {
  data: dataName, steps: res.steps, seed, train_seconds: res.seconds.toFixed(0), test_bpd: bpd.toFixed(4),
  command: `npm run train -- ${Deno.args.join(" ")}`,
}));
console.log(`weights: ${out}`);
Deno.exit(0);
