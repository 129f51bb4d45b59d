// samples --model weights/glow-fashion.safetensors [--n 64] [--temperature 0.7] [--out samples.png]
//         [--sampler ddim|ddpm] [--steps 100]   (diffusion models)
import "./errors.ts";
import { parseArgs } from "node:util";
import * as T from "../autograd/index.ts";
import { type BackendChoice, selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { imageGridPng } from "../io/png.ts";
import type { Glow } from "../models/glow.ts";
import type { VAE } from "../models/vae.ts";
import type { Diffusion } from "../models/diffusion.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "weights/glow-fashion.safetensors" },
    n: { type: "string", default: "64" },
    temperature: { type: "string", default: "0.7" },
    out: { type: "string" },
    seed: { type: "string", default: "0" },
    backend: { type: "string", default: "auto" },
    sampler: { type: "string", default: "ddim" },
    steps: { type: "string", default: "100" },
  },
});
const backend = await selectBackend(a.backend as BackendChoice);
const model = await loadModel(a.model!, backend);
const n = Number(a.n), gen = new T.Generator(Number(a.seed));
if (model.kind === "diffusion" && a.sampler !== "ddim" && a.sampler !== "ddpm") throw new Error(`samples: --sampler '${a.sampler}': expected ddim or ddpm`);
const images = model.kind === "glow"
  ? await (model as unknown as Glow).sample(n, Number(a.temperature), gen)
  : model.kind === "diffusion"
  ? await (model as unknown as Diffusion).sample(n, gen, { sampler: a.sampler as "ddim" | "ddpm", steps: Number(a.steps) })
  : await (model as unknown as VAE).sample(n, gen, true);
const out = a.out ?? a.model!.replace(/\.safetensors$/, "") + "-samples.png";
Deno.writeFileSync(out, imageGridPng(images, n, 1, 28, 28));
const how = model.kind === "glow" ? ` at temperature ${a.temperature}` : model.kind === "diffusion" ? (a.sampler === "ddpm" ? " (ancestral DDPM, every step)" : ` (DDIM, ${a.steps} steps)`) : " (decoder means)";
console.log(`${n} samples${how}: ${out}`);
Deno.exit(0);
