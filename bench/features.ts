// Per-example layer-wise gradient norms for a batch of 64 on the shipped models: the batched pass
// (per-group parameter copies, one forward + one backward) against the per-input loop, same run.
//   deno run -A bench/features.ts [--models weights/vae-fashion.safetensors,weights/glow-fashion.safetensors] [--n 64] [--rounds 3] [--profile]
// --profile: also time every kernel of one batched pass on the device (timestamp queries) and
// print where the device time goes.
import { parseArgs } from "node:util";
import { Bench } from "tinybench";
import { range } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { type BackendChoice, selectBackend } from "../src/kernels/select.ts";
import { loadModel } from "../src/models/registry.ts";
import { featuresBatched, featuresLoop, noiseFor } from "../src/ood/features.ts";
import * as T from "../src/autograd/index.ts";
import { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";

/** Device time per kernel of one run of f (one compute pass per dispatch while profiling). */
async function profile(be: WebGPUBackend, f: () => Promise<unknown>) {
  be.rt.startProfile();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const rows = await be.rt.stopProfile();
  const ms = rows.reduce((s, r) => s + r.ms, 0), n = rows.reduce((s, r) => s + r.count, 0);
  console.log(`  batched pass, profiled: ${n} dispatches, ${ms.toFixed(1)} ms on the device, ${wall.toFixed(0)} ms wall (profiling adds a pass per dispatch)`);
  for (const r of rows.slice(0, 12)) console.log(`  ${r.ms.toFixed(1).padStart(7)} ms ${String(r.count).padStart(5)}x  ${r.kernel}`);
}

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    models: { type: "string", default: "weights/vae-fashion.safetensors,weights/glow-fashion.safetensors" },
    n: { type: "string", default: "64" }, rounds: { type: "string", default: "3" }, backend: { type: "string", default: "auto" },
    profile: { type: "boolean", default: false },
  },
});
const backend = await selectBackend(a.backend as BackendChoice);
const n = Number(a.n), rounds = Number(a.rounds);
const data = loadDataset("fashion", "test");
console.log(`backend ${backend.name}${"description" in backend ? ` (${(backend as { description: string }).description})` : ""}; ${n} inputs, B=1; medians of ${rounds} interleaved rounds with full readback`);
for (const path of a.models!.split(",")) {
  const model = await loadModel(path, backend);
  const x = model.input(data, range(0, n));
  const noise = noiseFor(model, n, new T.Generator(1));
  const batched = () => featuresBatched(model, x, 1, noise), loop = () => featuresLoop(model, x, 1, noise);
  await batched();
  await loop();
  const samples: [number[], number[]] = [[], []];
  for (let r = 0; r < rounds; r++) {
    const bench = new Bench({ iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 });
    bench.add("batched", batched).add("loop", loop);
    await bench.run();
    bench.tasks.forEach((t, i) => samples[i].push((t.result as { latency: { p50: number } }).latency.p50));
  }
  const [mb, ml] = samples.map((s) => s.sort((p, q) => p - q)[Math.floor(s.length / 2)]);
  console.log(`${path}: batched ${mb.toFixed(0)} ms, per-input loop ${ml.toFixed(0)} ms, speed-up ${(ml / mb).toFixed(2)}x`);
  if (a.profile && backend instanceof WebGPUBackend) await profile(backend, batched);
  x.dispose();
  noise?.dispose();
}
Deno.exit(0);
