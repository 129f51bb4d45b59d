// Kernel and training-step benchmarks (tinybench): our CPU and WebGPU backends and TensorFlow.js's
// WebGPU backend on the same adapter in the same run. Prints median time, GFLOP/s, ours/theirs.
//   npx deno run -A bench/run.ts [--only=matmul,conv,MLP] [--no-cpu] [--no-tf] [--iterations=N]
//                                [--matmul=block8x8] [--conv=block4] [--json=file]
import { Bench } from "tinybench";
import { parseArgs } from "node:util";
import { cpu } from "../src/autograd/index.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { workloads } from "./workloads.ts";
import type { MatmulVariant } from "../shaders/matmul.wgsl.ts";
import type { ConvVariant } from "../shaders/conv2d.wgsl.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" }, "no-cpu": { type: "boolean" }, "no-tf": { type: "boolean" },
    iterations: { type: "string", default: "7" }, matmul: { type: "string" }, conv: { type: "string" }, json: { type: "string" },
  },
});
const iterations = Number(args.iterations);
const only = args.only?.split(",");
const list = workloads().filter((w) => !only || only.some((o) => w.name.includes(o)));

let gpu: WebGPUBackend | null = null;
try {
  gpu = await createWebGPUBackend();
  if (args.matmul) gpu.variants.matmul = args.matmul as MatmulVariant;
  if (args.conv) gpu.variants.conv = args.conv as ConvVariant;
} catch (e) {
  console.error(`notice: no WebGPU (${(e as Error).message}); benchmarking the cpu backend only`);
}
// deno-lint-ignore no-explicit-any
let tf: any = null;
if (gpu && !args["no-tf"]) {
  // The umbrella package registers the gradients that tfjs-core alone lacks.
  tf = await import("@tensorflow/tfjs");
  await import("@tensorflow/tfjs-backend-webgpu");
  await tf.setBackend("webgpu");
  await tf.ready();
}
console.log(`adapter: ${gpu?.description ?? "none"}; ${iterations} interleaved rounds (+1 warm-up); medians of full-readback runs`);
if (gpu) console.log(`kernel variants: ${JSON.stringify(gpu.variants)}`);

type Handle = { run: () => Promise<unknown>; dispose: () => void };

/**
 * Medians of interleaved rounds: each round is one tinybench run of every engine's task once, so
 * a slow patch of this shared machine hits every engine alike and the ratio stays fair.
 */
async function interleaved(engines: [string, () => Handle][], rounds: number): Promise<number[]> {
  const hs = engines.map(([, make]) => make());
  for (const h of hs) await h.run(); // warm-up: pipelines compiled, pools filled
  const samples: number[][] = hs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const bench = new Bench({ iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 });
    hs.forEach((h, i) => bench.add(engines[i][0], h.run));
    await bench.run();
    bench.tasks.forEach((t, i) => {
      const res = t.result as { latency?: { p50: number }; error?: unknown };
      if (!res.latency) throw new Error(`${engines[i][0]}: ${String(res.error)}`);
      samples[i].push(res.latency.p50);
    });
  }
  hs.forEach((h) => h.dispose());
  return samples.map((s) => s.sort((a, b) => a - b)[Math.floor(s.length / 2)]);
}

const rows: Record<string, string | number>[] = [];
const fmt = (ms: number, flops: number) => `${ms.toFixed(1).padStart(8)} ms ${(flops / ms / 1e6).toFixed(2).padStart(6)} GF/s`;
console.log(`\n${"workload".padEnd(36)} | ${"cpu".padEnd(23)} | ${"webgpu (ours)".padEnd(23)} | ${"tfjs-webgpu".padEnd(23)} | ours/tfjs speed`);
for (const w of list) {
  const cpuMs = args["no-cpu"] ? NaN : (await interleaved([["cpu", () => w.ours(cpu as Backend)]], Math.min(iterations, 3)))[0];
  const engines: [string, () => Handle][] = [];
  if (gpu) engines.push(["webgpu", () => w.ours(gpu!)]);
  if (tf && w.tf) engines.push(["tfjs", () => w.tf!(tf)]);
  const [gpuMs, tfMs] = engines.length ? await interleaved(engines, iterations) : [NaN, NaN];
  const cell = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? "-".padEnd(23) : fmt(ms, w.flops));
  console.log(`${w.name.padEnd(36)} | ${cell(cpuMs)} | ${cell(gpuMs)} | ${cell(tfMs)} | ${tfMs === undefined || Number.isNaN(tfMs) ? "-" : (tfMs / gpuMs).toFixed(2) + "x"}`);
  rows.push({ workload: w.name, gflop: w.flops / 1e9, cpu_ms: cpuMs, webgpu_ms: gpuMs ?? NaN, tfjs_webgpu_ms: tfMs ?? NaN });
}
if (args.json) writeFileAtomic(args.json, JSON.stringify({ adapter: gpu?.description, variants: gpu?.variants, rows }, null, 2));
Deno.exit(0);
