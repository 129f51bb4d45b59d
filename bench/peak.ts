// The wasm SIMD128 arithmetic ceiling on this CPU (bench/wasm_peak.ts, bench/torch.ts): a kernel of
// independent f32x4.relaxed_madd chains in registers, no memory traffic, in GFLOP/s (2 per lane per
// multiply-add) on the calling thread.
import { Fn, I32, moduleBytes, simd, V128 } from "../src/kernels/wasm/emit.ts";
import { cpuMs } from "./op_timer.ts";

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

/** The peak kernel's module bytes (its export: peak(n)). */
export function peakBytes(chains: number): Uint8Array<ArrayBuffer> {
  return moduleBytes([peakFn(chains)], { initial: 1, maximum: 1, shared: false });
}

/** The best of `runs` runs of `iterations` iterations on this thread: GFLOP/s per wall second and per process CPU second. */
export function singleThreadPeak(chains = 12, iterations = 20_000_000, runs = 3): { wall: number; cpu: number } {
  const module = new WebAssembly.Module(peakBytes(chains));
  const flops = 2 * 4 * chains * iterations;
  let wall = Infinity, cpu = Infinity;
  for (let r = 0; r < runs; r++) {
    const peak = new WebAssembly.Instance(module, { env: { mem: new WebAssembly.Memory({ initial: 1, maximum: 1 }) } }).exports.peak as (n: number) => number;
    peak(1000);
    const t0 = performance.now(), c0 = cpuMs();
    peak(iterations);
    wall = Math.min(wall, performance.now() - t0);
    cpu = Math.min(cpu, cpuMs() - c0);
  }
  return { wall: flops / wall / 1e6, cpu: flops / cpu / 1e6 };
}
