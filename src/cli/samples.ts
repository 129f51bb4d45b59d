// samples --model weights/glow-fashion.safetensors [--n 64] [--temperature 0.7] [--out samples.png]
import "./errors.ts";
import { parseArgs } from "node:util";
import * as T from "../autograd/index.ts";
import { type BackendChoice, selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { imageGridPng } from "../io/png.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "weights/glow-fashion.safetensors" },
    n: { type: "string", default: "64" },
    temperature: { type: "string", default: "0.7" },
    out: { type: "string" },
    seed: { type: "string", default: "0" },
    backend: { type: "string", default: "auto" },
  },
});
const backend = await selectBackend(a.backend as BackendChoice);
const model = await loadModel(a.model!, backend);
const n = Number(a.n), gen = new T.Generator(Number(a.seed));
// Glow draws its latents at --temperature; the VAE shows its decoder means (each model uses what applies to it).
const images = await model.sample(n, gen, { temperature: Number(a.temperature), mean: true });
const out = a.out ?? a.model!.replace(/\.safetensors$/, "") + "-samples.png";
Deno.writeFileSync(out, imageGridPng(images, n, ...model.imageShape));
console.log(`${n} samples${model.kind === "glow" ? ` at temperature ${a.temperature}` : " (decoder means)"}: ${out}`);
Deno.exit(0);
