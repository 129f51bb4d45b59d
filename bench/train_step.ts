// One training step (batch 64, Adam, gradient clipping, loss readback: what `npm run train` does
// per step) of the shipped models' architectures, on each backend, interleaved rounds, medians.
//   deno run -A bench/train_step.ts [--models weights/glow-fashion.safetensors,weights/vae-fashion.safetensors]
//        [--backends wasm,webgpu] [--batch 64] [--rounds 5] [--profile]
//        [--matmul <variant>] [--conv <variant>] [--json out.json]
// --profile: wall time per backend op (and per wasm kernel phase) over one step of each model.
// --matmul/--conv set the WebGPU backend's kernel variants; --json writes { "rows": [{ "model",
// "backend", "ms", "range": [min, max] }] }.
import "../src/cli/errors.ts";
import { Bench } from "tinybench";
import { choice, choices, flag, inFiles, int, outFile, parseOptions } from "../src/io/options.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { MATMUL_VARIANTS, SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS } from "../shaders/conv.wgsl.ts";
import * as T from "../src/autograd/index.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { type BackendChoice, BACKEND_CHOICES, selectBackend } from "../src/kernels/select.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { loadModel } from "../src/models/registry.ts";
import { LN2 } from "../src/models/model.ts";
import { Adam, clipGradNorm } from "../src/nn/optim.ts";
import { stepGen } from "../src/models/train.ts";
import { opTable, timeOps } from "./op_timer.ts";

const a = parseOptions("train_step", {
  models: inFiles().default(["weights/glow-fashion.safetensors", "weights/vae-fashion.safetensors"]),
  backends: choices(BACKEND_CHOICES.filter((c) => c !== "auto")).default(["wasm", "webgpu"]),
  batch: int({ min: 1, max: 4096 }).default(64), rounds: int({ min: 1, max: 1000 }).default(5),
  profile: flag(), "conv-shapes": flag(),
  matmul: choice([...MATMUL_VARIANTS, ...SUBGROUP_VARIANTS]), conv: choice(CONV_VARIANTS), json: outFile(),
});
const jsonRows: { model: string; backend: string; ms: number; range: [number, number] }[] = [];
const names = a.backends;
const backends: [string, Backend][] = [];
for (const n of names) backends.push([n, await selectBackend(n as BackendChoice, { makeDefault: false, onNotice: (m: string) => console.error(`notice: ${m}`) })]);
for (const [, b] of backends) {
  if (!(b instanceof WebGPUBackend)) continue;
  if (a.matmul) b.variants.matmul = a.matmul;
  if (a.conv) b.variants.conv = a.conv;
}
const batch = a.batch, rounds = a.rounds;
const data = loadDataset("fashion", "train");
console.log(`${backends.map(([n, b]) => `${n}${"description" in b ? ` (${(b as { description: string }).description})` : ""}`).join(", ")}; batch ${batch}; medians of ${rounds} interleaved rounds`);

for (const path of a.models) {
  const steps: [string, () => Promise<void>][] = [];
  for (const [n, b] of backends) {
    const model = await loadModel(path, b);
    const params = model.namedParameters().map(([, p]) => p);
    const opt = new Adam(params, { lr: 1e-4 });
    model.train();
    let step = 0;
    steps.push([n, async () => {
      const idx = Array.from({ length: batch }, (_, i) => (step * batch + i) % data.n);
      const gen = stepGen(0, step++);
      const loss = T.tidy(() => {
        const x = model.input(data, idx, gen);
        // The trainer's objective: the model's own training loss where it has one (the diffusion eps-loss).
        const l = model.trainingLoss ? T.mean(model.trainingLoss(x, gen)) : T.div(T.mean(model.nll(x, { gen })), model.dims * LN2);
        for (const p of params) p.zeroGrad();
        l.backward();
        return l;
      });
      const norm = clipGradNorm(params, 100);
      opt.update();
      await Promise.all([loss.item(), norm.item()]);
      loss.dispose();
      norm.dispose();
    }]);
  }
  for (const [, s] of steps) await s(); // warm-up
  const samples: number[][] = steps.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const bench = new Bench({ iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 });
    for (const [n, s] of steps) bench.add(n, s);
    await bench.run();
    bench.tasks.forEach((t, i) => samples[i].push((t.result as { latency: { p50: number } }).latency.p50));
  }
  const cells = steps.map(([n], i) => {
    const s = samples[i].sort((p, q) => p - q);
    jsonRows.push({ model: path, backend: n, ms: +s[Math.floor(s.length / 2)].toFixed(2), range: [+s[0].toFixed(2), +s[s.length - 1].toFixed(2)] });
    return `${n} ${s[Math.floor(s.length / 2)].toFixed(0)} ms [${s[0].toFixed(0)}-${s[s.length - 1].toFixed(0)}]`;
  });
  console.log(`${path}: ${cells.join(", ")}`);
  if (a.profile) {
    for (const [i, [n, b]] of backends.entries()) {
      const timer = timeOps(b, a["conv-shapes"]);
      const phases = (b as { profile?: Map<string, number> | null }).profile !== undefined ? new Map<string, number>() : null;
      if (phases) (b as unknown as { profile: Map<string, number> }).profile = phases;
      const t0 = performance.now();
      await steps[i][1]();
      const wall = performance.now() - t0;
      if (phases) (b as unknown as { profile: null }).profile = null;
      timer.restore();
      console.log(`  ${n}, one step ${wall.toFixed(0)} ms:\n${opTable(timer.acc, 14)}`);
      if (phases?.size) console.log(`    kernel phases: ${[...phases].map(([k, v]) => `${k || "copy"} ${v.toFixed(1)}`).join(", ")}`);
    }
  }
}
if (a.json) writeFileAtomic(a.json, JSON.stringify({ batch, rounds, rows: jsonRows }, null, 2));
Deno.exit(0);
