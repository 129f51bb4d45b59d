// The wasm SIMD128 arithmetic ceiling on this CPU: a kernel of independent f32x4.relaxed_madd
// chains in registers (no memory traffic), on 1 thread and on --threads threads at once (node
// worker_threads, each its own instance), in GFLOP/s (2 per lane per multiply-add), per wall second
// and per process CPU second (what another job's load on this shared machine disturbs least). What no wasm
// product can beat, against which the PyTorch comparison's rows that stay slower are measured
// (bench/README.md); PyTorch's AVX2/AVX-512 kernels have two to four times the lanes.
//   deno run -A bench/wasm_peak.ts [--threads 2] [--chains 12] [--iterations 20000000]
import "../src/cli/errors.ts";
import { int, parseOptions } from "../src/io/options.ts";
import { peakBytes, singleThreadPeak } from "./peak.ts";
import { cpuMs } from "./op_timer.ts";

const a = parseOptions("wasm_peak", {
  threads: int({ min: 1, max: 64 }).default(2), chains: int({ min: 1, max: 32 }).default(12),
  iterations: int({ min: 1000, max: 1e9 }).default(20_000_000),
});

const bytes = peakBytes(a.chains);
const flops = 2 * 4 * a.chains * a.iterations;
const one = singleThreadPeak(a.chains, a.iterations);
console.log(`1 thread: ${one.wall.toFixed(1)} GFLOP/s per wall second, ${one.cpu.toFixed(1)} per CPU second (${a.chains} chains of f32x4.relaxed_madd)`);
if (a.threads > 1) {
  const { Worker } = await import("node:worker_threads");
  const src = `const { parentPort, workerData } = require("node:worker_threads");
    const m = new WebAssembly.Module(workerData.bytes);
    const peak = new WebAssembly.Instance(m, { env: { mem: new WebAssembly.Memory({ initial: 1, maximum: 1 }) } }).exports.peak;
    peak(1000);
    parentPort.on("message", () => { const t0 = performance.now(); peak(workerData.n); parentPort.postMessage(performance.now() - t0); });`;
  const ws = Array.from({ length: a.threads }, () => new Worker(src, { eval: true, workerData: { bytes, n: a.iterations } }));
  const round = () => Promise.all(ws.map((w) => new Promise<number>((res) => { w.once("message", res); w.postMessage(0); })));
  await round();
  let best = Infinity, bestCpu = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now(), c0 = cpuMs();
    await round();
    best = Math.min(best, performance.now() - t0);
    bestCpu = Math.min(bestCpu, cpuMs() - c0);
  }
  console.log(`${a.threads} threads at once: ${(a.threads * flops / best / 1e6).toFixed(1)} GFLOP/s together per wall second, ${(a.threads * flops / bestCpu / 1e6).toFixed(1)} per CPU second (x${a.threads} threads: ${(a.threads * a.threads * flops / bestCpu / 1e6).toFixed(1)} when each has a core)`);
  ws.forEach((w) => w.terminate());
}
console.log(`load average ${Deno.loadavg()[0].toFixed(1)}`);
Deno.exit(0);
