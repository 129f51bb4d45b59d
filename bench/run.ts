// Kernel and training-step benchmarks (tinybench): our CPU and WebGPU backends and TensorFlow.js's
// WebGPU backend on the same adapter in the same run. Prints median time, GFLOP/s, ours/theirs.
//   npx deno run -A bench/run.ts [--only=matmul,conv,MLP] [--no-cpu] [--no-tf] [--iterations=N]
//                                [--matmul=block8x8] [--conv=block4] [--json=file]
import { Bench } from "tinybench";
import { parseArgs } from "node:util";
import { cpu } from "../src/autograd/index.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { workloads } from "./workloads.ts";
import type { MatmulVariant } from "../shaders/matmul.wgsl.ts";
import type { ConvVariant } from "../shaders/conv2d.wgsl.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    only: { type: "string" }, "no-cpu": { type: "boolean" }, "no-tf": { type: "boolean" },
    iterations: { type: "string", default: "5" }, matmul: { type: "string" }, conv: { type: "string" }, json: { type: "string" },
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
console.log(`adapter: ${gpu?.description ?? "none"}; iterations per task: ${iterations} (+1 warm-up); median of full-readback runs`);
if (gpu) console.log(`kernel variants: ${JSON.stringify(gpu.variants)}`);

async function median(name: string, make: () => { run: () => Promise<unknown>; dispose: () => void }, iters: number): Promise<number> {
  const w = make();
  const bench = new Bench({ iterations: iters, time: 0, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, w.run);
  await bench.run();
  w.dispose();
  const r = bench.tasks[0].result as { latency?: { p50: number }; error?: unknown };
  if (!r.latency) throw new Error(`${name}: ${String(r.error)}`);
  return r.latency.p50;
}

const rows: Record<string, string | number>[] = [];
const fmt = (ms: number, flops: number) => `${ms.toFixed(1).padStart(8)} ms ${(flops / ms / 1e6).toFixed(2).padStart(6)} GF/s`;
console.log(`\n${"workload".padEnd(34)} | ${"cpu".padEnd(23)} | ${"webgpu (ours)".padEnd(23)} | ${"tfjs-webgpu".padEnd(23)} | ours/tfjs speed`);
for (const w of list) {
  const cpuMs = args["no-cpu"] ? NaN : await median(`${w.name} cpu`, () => w.ours(cpu as Backend), Math.min(iterations, 3));
  const gpuMs = gpu ? await median(`${w.name} webgpu`, () => w.ours(gpu!), iterations) : NaN;
  const tfMs = tf && w.tf ? await median(`${w.name} tfjs`, () => w.tf!(tf), iterations) : NaN;
  const cell = (ms: number) => (Number.isNaN(ms) ? "-".padEnd(23) : fmt(ms, w.flops));
  console.log(`${w.name.padEnd(34)} | ${cell(cpuMs)} | ${cell(gpuMs)} | ${cell(tfMs)} | ${Number.isNaN(tfMs) ? "-" : (tfMs / gpuMs).toFixed(2) + "x"}`);
  rows.push({ workload: w.name, gflop: w.flops / 1e9, cpu_ms: cpuMs, webgpu_ms: gpuMs, tfjs_webgpu_ms: tfMs });
}
if (args.json) Deno.writeTextFileSync(args.json, JSON.stringify({ adapter: gpu?.description, variants: gpu?.variants, rows }, null, 2));
Deno.exit(0);
