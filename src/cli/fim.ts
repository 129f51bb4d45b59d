// fim --model weights/glow-fashion.safetensors [--samples 128] [--weights 8] [--layers a,b] [--backend auto]
// Estimates the Fisher information from model samples for a few random weights in two layers and
// prints how the layer-diagonal blocks compare with the cross-layer block.
import "./errors.ts";
import { parseArgs } from "node:util";
import { type BackendChoice, selectBackend } from "../kernels/select.ts";
import { loadModel } from "../models/registry.ts";
import { fimStudy } from "../ood/fim.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "weights/glow-fashion.safetensors" },
    samples: { type: "string", default: "128" },
    weights: { type: "string", default: "8" },
    layers: { type: "string" },
    backend: { type: "string", default: "auto" },
    seed: { type: "string", default: "0" },
  },
});
const backend = await selectBackend(a.backend as BackendChoice);
const model = await loadModel(a.model!, backend);
const r = await fimStudy(model, {
  samples: Number(a.samples), perLayer: Number(a.weights), seed: Number(a.seed),
  layers: a.layers ? a.layers.split(",") as [string, string] : undefined,
});
console.log(`Fisher information from ${r.samples} model samples, ${r.weights} random weights in each of:\n  A = ${r.layers[0]}\n  B = ${r.layers[1]}`);
console.log(`mean |F| on the diagonal:                ${r.meanAbsDiagonal.toExponential(3)}`);
console.log(`mean |F| off-diagonal, within a layer:   ${r.meanAbsWithin.toExponential(3)}`);
console.log(`mean |F| across the two layers:          ${r.meanAbsAcross.toExponential(3)}`);
console.log(`within-layer blocks / cross-layer block: ${(r.meanAbsWithin / r.meanAbsAcross).toFixed(2)}x (diagonal / cross: ${(r.meanAbsDiagonal / r.meanAbsAcross).toFixed(2)}x)`);
console.log(`scale-free, mean |F_ab| / sqrt(F_aa F_bb): within a layer ${r.meanAbsCorrWithin.toFixed(3)}, across ${r.meanAbsCorrAcross.toFixed(3)} (${(r.meanAbsCorrWithin / r.meanAbsCorrAcross).toFixed(2)}x)`);
console.log(`largest share of trace(F) from one sample: ${(100 * r.maxSampleShare).toFixed(1)}%${r.maxSampleShare > 0.5 ? " (heavy-tailed: the raw means above rest on a few samples)" : ""}`);
Deno.exit(0);
