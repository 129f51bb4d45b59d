// samples --model weights/glow-fashion.safetensors [--n 64] [--temperature 0.7] [--out FILE.png] [--seed 0]
//         [--backend auto|cpu|webgpu|wasm] [--force] [--sampler ddim|ddpm] [--steps 100]
// A PNG grid of samples. Default output: a new file reports/samples/<model file name>-samples.png
// (-samples-2.png, ... when taken; never the shipped weights/*-samples.png; writing over a shipped
// or git-tracked file needs --force).
// --temperature applies to Glow only (the VAE's grid shows decoder means); --sampler and --steps to
// diffusion models (DDIM with --steps steps, deterministic given --seed, or ancestral DDPM over every step).
import { notice, onFailure, workStarts } from "./errors.ts";
import { BACKEND, checkApart, checkOutput, choice, flag, inFile, int, num, outFile, parseOptions, shippedDefault, usageError } from "../io/options.ts";
import * as T from "../autograd/index.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkModelFile, loadModel } from "../models/registry.ts";
import { releaseReservation, reserveNewName, writeFileAtomic } from "../io/atomic.ts";
import { imageGridPng } from "../io/png.ts";

const a = parseOptions("samples", {
  model: inFile().default(shippedDefault("weights/glow-fashion.safetensors")),
  n: int({ min: 1, max: 1024 }).default(64),
  temperature: num({ min: 0, max: 10 }).default(0.7),
  out: outFile(),
  seed: int({ max: 2 ** 32 - 1 }).default(0),
  backend: BACKEND,
  force: flag(),
  sampler: choice(["ddim", "ddpm"] as const).default("ddim"),
  steps: int({ min: 1, max: 100000 }).default(100),
});
const file = await checkModelFile(a.model);
// Each model names the sample options it takes (Glow: temperature; diffusion: sampler, steps; the VAE shows its decoder means).
const takes: readonly string[] = file.probe.sampleOptions;
for (const o of ["temperature", "sampler", "steps"] as const) {
  if (a.given.has(o) && !takes.includes(o)) throw usageError("samples", `--${o}`, String(a[o]), `does not apply to ${a.model}, a ${file.kind} model (its sample options: ${takes.filter((t) => t !== "mean").join(", ") || "none"}); leave it out`);
}
const sampling = { temperature: a.temperature, mean: true, sampler: a.sampler, steps: a.steps };
let how: string;
try {
  how = file.probe.describeSampling(sampling);
} catch (e) {
  throw usageError("samples", `--${(e as Error).message.split(" ")[0]}`, (e as Error).message.split(" ")[1]?.replace(/:$/, ""), `${(e as Error).message.replace(/^\S+ \S+ /, "")} (${a.model})`);
}
const stem = a.model.replace(/^.*\//, "").replace(/\.safetensors$/, "");
// The default: a new name in reports/samples/ (<model>-samples.png, then -samples-2.png, ...), reserved once work starts.
const defaultOut = (k: number) => `reports/samples/${stem}-samples${k === 1 ? "" : `-${k}`}.png`;
let out = a.out ?? defaultOut(1);
if (!a.out) checkOutput("samples", "--out (default)", "reports/samples", a.force, "dir"); // created once work starts
checkApart("samples", [{ option: a.out ? "--out" : "--out (default)", path: out, kind: "file" }], [{ option: "--model", path: a.model }]);
workStarts();
if (!a.out) {
  Deno.mkdirSync("reports/samples", { recursive: true });
  const reserved = out = reserveNewName(defaultOut);
  onFailure(() => releaseReservation(reserved));
}
const backend = await selectBackend(a.backend, { onNotice: notice });
const model = await loadModel(a.model, backend, file);
const gen = new T.Generator(a.seed);
// Glow draws its latents at --temperature; the VAE shows its decoder means; the diffusion model runs its sampler (each model takes what applies to it).
const images = await model.sample(a.n, gen, sampling);
writeFileAtomic(out, imageGridPng(images, a.n, ...model.imageShape));
console.log(`${a.n} samples ${how}: ${out}`);
Deno.exit(0);
