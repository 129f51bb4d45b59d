// The wasm SIMD128 arithmetic ceiling on this CPU: a kernel of independent f32x4.relaxed_madd
// chains in registers (no memory traffic), on 1 thread and on --threads threads at once (node
// worker_threads, each its own instance), in GFLOP/s (2 per lane per multiply-add), per wall second
// and per process CPU second (what another job's load on this shared machine disturbs least). What no wasm
// product can beat, against which the PyTorch comparison's rows that stay slower are measured
// (bench/README.md); PyTorch's AVX2/AVX-512 kernels have two to four times the lanes.
//   deno run -A bench/wasm_peak.ts [--threads 2] [--chains 12] [--iterations 20000000]
import "../src/cli/errors.ts";
import process from "node:process";
import { int, parseOptions } from "../src/io/options.ts";
import { Fn, I32, moduleBytes, simd, V128 } from "../src/kernels/wasm/emit.ts";

const a = parseOptions("wasm_peak", {
  threads: int({ min: 1, max: 64 }).default(2), chains: int({ min: 1, max: 32 }).default(12),
  iterations: int({ min: 1000, max: 1e9 }).default(20_000_000),
});

/** peak(n): n iterations of `chains` independent acc = acc * b + c (relaxed madd); returns lane 0 of the sum so nothing is dead. */
function peakFn(chains: number): Fn {
  const f = new Fn("peak", [I32], 0x7d);
  const i = f.local(), b = f.local(V128), c = f.local(V128);
  const acc = Array.from({ length: chains }, () => f.local(V128));
  f.f32(0.999).simd(simd.f32x4splat).set(b);
  f.f32(0.001).simd(simd.f32x4splat).set(c);
  acc.forEach((x, k) => f.f32(k * 0.01).simd(simd.f32x4splat).set(x));
  f.loop(i, () => f.i32(0), () => f.get(0), 1, () => {
    for (const x of acc) f.get(x).get(b).get(c).simd(simd.relaxedMadd).set(x);
  });
  f.get(acc[0]);
  for (const x of acc.slice(1)) f.get(x).simd(simd.f32x4add);
  f.simd(simd.f32x4extract, 0);
  return f;
}

const bytes = moduleBytes([peakFn(a.chains)], { initial: 1, maximum: 1, shared: false });
const module = new WebAssembly.Module(bytes);
const flops = 2 * 4 * a.chains * a.iterations;

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
/** [wall ms, CPU ms] of one run on this thread. */
function once(): [number, number] {
  const peak = new WebAssembly.Instance(module, { env: { mem: new WebAssembly.Memory({ initial: 1, maximum: 1 }) } }).exports.peak as (n: number) => number;
  peak(1000);
  const t0 = performance.now(), c0 = cpuMs();
  peak(a.iterations);
  return [performance.now() - t0, cpuMs() - c0];
}

const runs = [once(), once(), once()];
const one = Math.min(...runs.map((r) => r[0])), oneCpu = Math.min(...runs.map((r) => r[1]));
console.log(`1 thread: ${(flops / one / 1e6).toFixed(1)} GFLOP/s per wall second, ${(flops / oneCpu / 1e6).toFixed(1)} per CPU second (${a.chains} chains of f32x4.relaxed_madd)`);
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
