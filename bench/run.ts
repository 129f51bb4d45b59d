// Kernel and training-step benchmarks (tinybench), every engine interleaved in one run: ours
// (`fimscope wasm`, `fimscope webgpu`, optionally `fimscope cpu`) and the peers (`jax-js wasm`,
// `jax-js webgpu`, `tfjs webgpu`; bench-only devDependencies) on the same machine and adapter.
// The U-Net training step runs only when --only names it (TF.js takes about a minute a step).
// --only=torch runs the PyTorch comparison instead (bench/torch.ts: feature passes and training
// steps of the shipped models; engines fimscope wasm [fimscope webgpu with --engines], pytorch loop, pytorch vmap).
// Prints median ms per engine (and GFLOP/s), the spread (min-max over rounds) and our best engine
// against each peer.
//   npx deno run -A bench/run.ts [--only=matmul,conv,MLP,U-Net] [--engines=fimscope wasm,jax-js wasm,...]
//        [--cpu] [--iterations=N] [--matmul=block8x8] [--conv=block4] [--json=file]
// --json writes { "rows": [{ "workload", "engines": { "<engine>": <median ms> }, "spread": {...} }] }.
import "../src/cli/errors.ts";
import { Bench } from "tinybench";
import { choice, choices, flag, int, outFile, parseOptions, text } from "../src/io/options.ts";
import { cpu } from "../src/autograd/index.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { createWasmBackend, type WasmBackend } from "../src/kernels/wasm/backend.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { type Workload, workloads } from "./workloads.ts";
import { MATMUL_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS } from "../shaders/conv.wgsl.ts";

const ALL = ["fimscope wasm", "fimscope webgpu", "fimscope cpu", "jax-js wasm", "jax-js webgpu", "tfjs webgpu"] as const;
type Engine = typeof ALL[number];

const args = parseOptions("bench", {
  only: text(), engines: choices(ALL), cpu: flag(), iterations: int({ min: 1, max: 10000 }).default(7),
  matmul: choice(MATMUL_VARIANTS), conv: choice(CONV_VARIANTS), json: outFile(),
  // kept for old command lines: the cpu engine is now opt-in, TF.js can be left out
  "no-cpu": flag(), "no-tf": flag(),
});
const iterations = args.iterations;
let wanted: Engine[] = ALL.filter((e) => e !== "fimscope cpu" || args.cpu).filter((e) => !(args["no-tf"] && e.startsWith("tfjs")));
if (args.engines) wanted = args.engines;
const only = args.only?.split(",");
const list = workloads().filter((w) => only ? only.some((o) => w.name.includes(o)) : !w.optIn);

// --only=torch: the PyTorch comparison on the paper's workload (bench/torch.ts), in this format.
if (only?.includes("torch")) {
  const { torchBench, TORCH_ENGINES, TORCH_MODELS } = await import("./torch.ts");
  const engines = TORCH_ENGINES.filter((e) => args.engines ? (args.engines as string[]).includes(e) || e.startsWith("pytorch") : e !== "fimscope webgpu");
  const { rows, ceiling } = await torchBench({ models: TORCH_MODELS, work: ["features", "step"], rounds: args.iterations, engines, threads: 2, log: (l) => console.log(l) });
  if (args.json) writeFileAtomic(args.json, JSON.stringify({ notes: ["pytorch peer (bench/torch.ts)", `the wasm SIMD128 ceiling: ${ceiling} GFLOP/s per CPU second on one thread (bench/peak.ts)`], iterations: args.iterations, ceiling, rows }, null, 2));
  Deno.exit(0);
}

type Handle = { run: () => Promise<unknown>; dispose: () => void };
const makers: Partial<Record<Engine, (w: Workload) => (() => Handle) | null>> = {};
const notes: string[] = [];

if (wanted.includes("fimscope wasm")) {
  const wb: WasmBackend = await createWasmBackend();
  makers["fimscope wasm"] = (w) => () => w.ours(wb);
  notes.push(`fimscope wasm: ${wb.description}`);
}
let gpu: WebGPUBackend | null = null;
if (wanted.some((e) => e.includes("webgpu"))) {
  try {
    gpu = await createWebGPUBackend();
    if (args.matmul) gpu.variants.matmul = args.matmul;
    if (args.conv) gpu.variants.conv = args.conv;
    notes.push(`webgpu adapter: ${gpu.description}; our kernel variants ${JSON.stringify(gpu.variants)}`);
  } catch (e) {
    notes.push(`no WebGPU (${(e as Error).message.split("\n")[0]}): WebGPU engines left out`);
  }
}
if (gpu && wanted.includes("fimscope webgpu")) makers["fimscope webgpu"] = (w) => () => w.ours(gpu!);
if (wanted.includes("fimscope cpu")) makers["fimscope cpu"] = (w) => () => w.ours(cpu as Backend);
if (wanted.includes("jax-js wasm") || (gpu && wanted.includes("jax-js webgpu"))) {
  const jax = await import("@jax-js/jax");
  const devs: string[] = await jax.init(...(gpu && wanted.includes("jax-js webgpu") ? ["wasm", "webgpu"] : ["wasm"]) as ("wasm" | "webgpu")[]);
  for (const d of ["wasm", "webgpu"] as const) {
    const e = `jax-js ${d}` as Engine;
    if (wanted.includes(e) && devs.includes(d)) makers[e] = (w) => (w.jax ? () => w.jax!(jax, d) : null);
  }
  notes.push(`jax-js devices: ${devs.join(", ")}`);
}
if (gpu && wanted.includes("tfjs webgpu")) {
  // The umbrella package registers the gradients that tfjs-core alone lacks.
  const tf = await import("@tensorflow/tfjs");
  await import("@tensorflow/tfjs-backend-webgpu");
  await tf.setBackend("webgpu");
  await tf.ready();
  makers["tfjs webgpu"] = (w) => (w.tf ? () => w.tf!(tf) : null);
}
const engines = wanted.filter((e) => makers[e]);
console.log(notes.join("\n"));
console.log(`${iterations} interleaved rounds (+1 warm-up) of ${engines.join(", ")}; medians of full-readback runs`);

/**
 * Medians of interleaved rounds: each round is one tinybench run of every engine's task once, so
 * a slow patch of this shared machine hits every engine alike and the ratio stays fair.
 */
async function interleaved(es: [string, () => Handle][], rounds: number): Promise<{ median: number; min: number; max: number }[]> {
  const hs = es.map(([, make]) => make());
  for (const h of hs) await h.run(); // warm-up: pipelines compiled, pools filled
  const samples: number[][] = hs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const bench = new Bench({ iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 });
    hs.forEach((h, i) => bench.add(es[i][0], h.run));
    await bench.run();
    bench.tasks.forEach((t, i) => {
      const res = t.result as { latency?: { p50: number }; error?: unknown };
      if (!res.latency) throw new Error(`${es[i][0]}: ${String(res.error)}`);
      samples[i].push(res.latency.p50);
    });
  }
  hs.forEach((h) => h.dispose());
  return samples.map((s) => {
    s.sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
  });
}

const rows: { workload: string; gflop: number; engines: Record<string, number>; spread: Record<string, [number, number]> }[] = [];
const ours = (e: string) => e.startsWith("fimscope");
for (const w of list) {
  const es: [string, () => Handle][] = [];
  for (const e of engines) {
    const m = makers[e]!(w);
    if (m) es.push([e, m]);
  }
  const res = await interleaved(es, iterations);
  const row = { workload: w.name, gflop: w.flops / 1e9, engines: {} as Record<string, number>, spread: {} as Record<string, [number, number]> };
  es.forEach(([e], i) => {
    row.engines[e] = +res[i].median.toFixed(2);
    row.spread[e] = [+res[i].min.toFixed(2), +res[i].max.toFixed(2)];
  });
  rows.push(row);
  const best = es.filter(([e]) => ours(e)).map(([e]) => [e, row.engines[e]] as const).sort((a, b) => a[1] - b[1])[0];
  console.log(`\n${w.name}${w.flops ? ` (${(w.flops / 1e9).toFixed(3)} GFLOP)` : ""}`);
  for (const [e] of es) {
    const ms = row.engines[e], [lo, hi] = row.spread[e];
    // On the same adapter too: our WebGPU engine against a peer's, when our best is another engine.
    const sameAdapter = e.endsWith("webgpu") && best?.[0] !== "fimscope webgpu" && row.engines["fimscope webgpu"]
      ? `, fimscope webgpu ${(ms / row.engines["fimscope webgpu"]).toFixed(2)}x` : "";
    const vs = best && !ours(e) ? `  ${best[0]} is ${(ms / best[1]).toFixed(2)}x as fast${sameAdapter}` : "";
    console.log(`  ${e.padEnd(16)} ${ms.toFixed(1).padStart(9)} ms ${w.flops ? (w.flops / ms / 1e6).toFixed(2).padStart(7) : "      -"} GF/s  [${lo.toFixed(1)}-${hi.toFixed(1)}]${vs}`);
  }
}
if (args.json) writeFileAtomic(args.json, JSON.stringify({ notes, iterations, rows }, null, 2));
Deno.exit(0);
