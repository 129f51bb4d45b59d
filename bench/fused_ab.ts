// A fused op against the ops it replaces, in one process: the wasm backend's optional fused ops
// (--ops: conv2dBias, mulUnary, conv2dInputGradTimes, affineCoupling and its gradient, groupNormAffine,
// momentUpdate, sumSquaresAll, scaleAll, channelAffine and its gradient) hidden on alternate runs of the same work, so the autograd falls back to the
// composed ops there (their values are the fused ops' bit for bit). Everything else is the same
// code, heap and threads, so the machine's drift between processes does not enter; a change to
// the pool or to what the heap holds needs bench/wasm_ab.ts --processes instead. The work is
// bench/torch.ts's (the shipped models' feature pass for 64 images and their training step).
// Medians of --rounds runs a side, the sides' order alternating, wall ms.
//   deno run -A bench/fused_ab.ts [--ops conv2dInputGradTimes,mulUnary] [--models a.safetensors,...] [--work features,step] [--rounds 60]
import "../src/cli/errors.ts";
import { choices, inFiles, int, parseOptions } from "../src/io/options.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import { ourWork, TORCH_MODELS, TORCH_WORK } from "./torch.ts";

const FUSED = ["conv2dBias", "mulUnary", "conv2dInputGradTimes", "affineCoupling", "affineCouplingGrad", "momentUpdate", "sumSquaresAll", "scaleAll", "groupNormAffine", "channelAffine", "channelAffineGrad"] as const;
const a = parseOptions("fused_ab", {
  ops: choices(FUSED).default(["conv2dInputGradTimes", "mulUnary"]),
  models: inFiles().default(TORCH_MODELS.slice(0, 2)), work: choices(TORCH_WORK).default([...TORCH_WORK]),
  rounds: int({ min: 1, max: 1000 }).default(60),
});

const be = await createWasmBackend();
const hidable = be as unknown as Record<string, unknown>;
const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
console.log(`${be.description}; hidden on alternate runs: ${a.ops.join(", ")}; ${a.rounds} runs a side, load average ${Deno.loadavg()[0].toFixed(1)}`);
for (const path of a.models) {
  for (const work of a.work) {
    const w = await ourWork(path, work, be);
    for (let i = 0; i < 3; i++) await w.run();
    const t = { fused: [] as number[], composed: [] as number[] };
    for (let r = 0; r < a.rounds; r++) {
      for (const side of r % 2 ? ["fused", "composed"] as const : ["composed", "fused"] as const) {
        if (side === "composed") for (const o of a.ops) hidable[o] = undefined; // an own property hides the prototype's method
        try {
          const t0 = performance.now();
          await w.run();
          t[side].push(performance.now() - t0);
        } finally {
          if (side === "composed") for (const o of a.ops) delete hidable[o];
        }
      }
    }
    const f = med(t.fused), c = med(t.composed);
    console.log(`${path.replace(/^.*\//, "")} ${work}: fused ${f.toFixed(2)} ms, composed ${c.toFixed(2)} ms, composed / fused ${(c / f).toFixed(3)}x`);
  }
}
Deno.exit(0);
