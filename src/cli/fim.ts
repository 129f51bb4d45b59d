// fim --model weights/glow-fashion.safetensors [--samples 128] [--weights 8] [--layers a,b] [--seed 0]
//     [--backend auto|cpu|webgpu|wasm]
// Estimates the Fisher information from model samples for a few random weights in two layers and
// prints how the layer-diagonal blocks compare with the cross-layer block.
import { notice, workStarts } from "./errors.ts";
import { BACKEND, inFile, int, parseOptions, shippedDefault, text, usageError } from "../io/options.ts";
import { selectBackend } from "../kernels/select.ts";
import { checkModelFile, loadModel } from "../models/registry.ts";
import { fimStudy } from "../ood/fim.ts";

const a = parseOptions("fim", {
  model: inFile().default(shippedDefault("weights/glow-fashion.safetensors")),
  samples: int({ min: 1, max: 100000 }).default(128),
  weights: int({ min: 1, max: 256 }).default(8),
  layers: text(),
  backend: BACKEND,
  seed: int({ max: 2 ** 32 - 1 }).default(0),
});
const file = await checkModelFile(a.model);
// The chosen layers must be two different parameter tensors of this model with at least --weights entries.
const sizes = new Map(file.shapes.map(([n, s]) => [n, s.reduce((p, d) => p * d, 1)]));
let layers: [string, string] | undefined;
if (a.layers !== undefined) {
  const ls = a.layers.split(",").map((s) => s.trim());
  const names = [...sizes.keys()];
  const list = `${names.slice(0, 6).join(", ")}${names.length > 6 ? `, ... (${names.length} in all)` : ""}`;
  if (ls.length !== 2 || ls.some((l) => l === "") || ls[0] === ls[1]) throw usageError("fim", "--layers", a.layers, `two different parameter tensor names, comma-separated (this model has ${list})`);
  for (const l of ls) {
    if (!sizes.has(l)) throw usageError("fim", "--layers", a.layers, `'${l}' is not a parameter tensor of ${a.model} (it has ${list})`);
    if (sizes.get(l)! < a.weights) throw usageError("fim", "--layers", a.layers, `'${l}' has ${sizes.get(l)} weights, fewer than --weights ${a.weights}`);
  }
  layers = ls as [string, string];
} else if ([...sizes.values()].filter((s) => s >= a.weights).length < 2) {
  throw usageError("fim", "--weights", String(a.weights), `at most the size of this model's second-largest tensor`);
}
workStarts();
const backend = await selectBackend(a.backend, { onNotice: notice });
const model = await loadModel(a.model, backend, file);
const r = await fimStudy(model, { samples: a.samples, perLayer: a.weights, seed: a.seed, layers });
console.log(`Fisher information from ${r.samples} model samples, ${r.weights} random weights in each of:\n  A = ${r.layers[0]}\n  B = ${r.layers[1]}`);
console.log(`mean |F| on the diagonal:                ${r.meanAbsDiagonal.toExponential(3)}`);
console.log(`mean |F| off-diagonal, within a layer:   ${r.meanAbsWithin.toExponential(3)}`);
console.log(`mean |F| across the two layers:          ${r.meanAbsAcross.toExponential(3)}`);
console.log(`within-layer blocks / cross-layer block: ${(r.meanAbsWithin / r.meanAbsAcross).toFixed(2)}x (diagonal / cross: ${(r.meanAbsDiagonal / r.meanAbsAcross).toFixed(2)}x)`);
console.log(`scale-free, mean |F_ab| / sqrt(F_aa F_bb): within a layer ${r.meanAbsCorrWithin.toFixed(3)}, across ${r.meanAbsCorrAcross.toFixed(3)} (${(r.meanAbsCorrWithin / r.meanAbsCorrAcross).toFixed(2)}x)`);
console.log(`largest share of trace(F) from one sample: ${(100 * r.maxSampleShare).toFixed(1)}%${r.maxSampleShare > 0.5 ? " (heavy-tailed: the raw means above rest on a few samples)" : ""}`);
Deno.exit(0);
