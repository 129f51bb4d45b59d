// In the page: gpu.js's WebGL2 kernels against the CPU backend, in the same browser, interleaved
// (cpu, gpujs, cpu, gpujs, ...), on matmul and conv forward and backward; and a correctness check
// of every gpu.js kernel against the CPU on odd, size-1, strided, grouped and transposed shapes.
// Run by scripts/web/bench_fallback.ts (the numbers in bench/README.md) and test/browser.test.ts.
import * as F from "../mod.ts";
import type { ConvParams, Data, MatmulSpec } from "../src/kernels/backend.ts";

type Op = { name: string; op: F.GpujsOp; macs: number; run: (b: F.Backend) => Data; inputs: number };

function randArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

function conv(N: number, Cin: number, H: number, W: number, Cout: number, K: number, stride: number, pad: number, groups = 1): ConvParams {
  return { N, Cin, H, W, Cout, KH: K, KW: K, stride, pad, groups, OH: Math.floor((H + 2 * pad - K) / stride) + 1, OW: Math.floor((W + 2 * pad - K) / stride) + 1 };
}

function matmulCase(spec: MatmulSpec, seed: number): Op {
  const a = randArray(spec.batchA * spec.M * spec.K, seed), b = randArray(spec.batchB * spec.K * spec.N, seed + 1);
  const batch = Math.max(spec.batchA, spec.batchB);
  const t = `${spec.transA ? "T" : ""}${spec.transB ? "·T" : ""}`;
  return { name: `matmul ${batch > 1 ? `${batch}x` : ""}${spec.M}x${spec.K}x${spec.N}${t}`, op: "matmul", macs: batch * spec.M * spec.K * spec.N, inputs: 2, run: (be) => be.matmul(a, b, spec, "float32") as Data };
}

function convCases(p: ConvParams, seed: number): Op[] {
  const cg = p.Cin / p.groups;
  const x = randArray(p.N * p.Cin * p.H * p.W, seed), w = randArray(p.Cout * cg * p.KH * p.KW, seed + 1), gy = randArray(p.N * p.Cout * p.OH * p.OW, seed + 2);
  const macs = p.N * p.Cout * p.OH * p.OW * cg * p.KH * p.KW;
  const tag = `${p.N}x${p.Cin}x${p.H}x${p.W} -> ${p.Cout}, ${p.KH}x${p.KW}${p.stride > 1 ? ` s${p.stride}` : ""}${p.groups > 1 ? ` g${p.groups}` : ""}`;
  return [
    { name: `conv fwd ${tag}`, op: "conv2d", macs, inputs: 2, run: (be) => be.conv2d(x, w, p, "float32") as Data },
    { name: `conv dX ${tag}`, op: "conv2dInputGrad", macs, inputs: 2, run: (be) => be.conv2dInputGrad(gy, w, p, "float32") as Data },
    { name: `conv dW ${tag}`, op: "conv2dWeightGrad", macs, inputs: 2, run: (be) => be.conv2dWeightGrad(x, gy, p, "float32") as Data },
  ];
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let scale = 0, err = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= err)) err = Number.isNaN(e) ? Infinity : e;
  }
  return err / Math.max(scale, 1e-30);
}

/** Every gpu.js kernel against the CPU backend on awkward shapes: the worst error relative to the output's largest value. */
export function checkGpujs(GPU: F.GpujsBackend): { name: string; err: number }[] {
  const gj = new F.GpujsBackend(GPU.gpuClass, { ops: F.GPUJS_OPS, minMacs: 0 }), cpu = new F.CpuBackend();
  const cases: Op[] = [
    matmulCase({ batchA: 1, batchB: 1, M: 1, K: 1, N: 1, transA: false, transB: false }, 1),
    matmulCase({ batchA: 1, batchB: 1, M: 7, K: 13, N: 5, transA: false, transB: false }, 2),
    matmulCase({ batchA: 3, batchB: 1, M: 5, K: 9, N: 11, transA: true, transB: false }, 3),
    matmulCase({ batchA: 1, batchB: 4, M: 6, K: 3, N: 17, transA: false, transB: true }, 4),
    matmulCase({ batchA: 2, batchB: 2, M: 33, K: 65, N: 31, transA: true, transB: true }, 5),
    ...convCases(conv(1, 1, 1, 1, 1, 1, 1, 0), 6),
    ...convCases(conv(2, 3, 7, 5, 4, 3, 1, 1), 7),
    ...convCases(conv(3, 4, 9, 9, 6, 3, 2, 1), 8),
    ...convCases(conv(2, 6, 6, 7, 4, 3, 1, 1, 2), 9),
    ...convCases(conv(1, 2, 8, 8, 3, 1, 2, 0), 10),
  ];
  const out = cases.map((c) => ({ name: c.name, err: maxRel(c.run(gj), c.run(cpu)) }));
  gj.dispose();
  return out;
}

export interface FallbackTiming {
  name: string;
  op: F.GpujsOp;
  macs: number;
  cpuMs: number;
  gpujsMs: number;
  /** cpu / gpujs: above 1, gpu.js is faster. */
  speedup: number;
  err: number;
}

function benchCases(): Op[] {
  return [
    ...[32, 64, 128, 256, 512].map((n, i) => matmulCase({ batchA: 1, batchB: 1, M: n, K: n, N: n, transA: false, transB: false }, 20 + i)),
    matmulCase({ batchA: 1, batchB: 1, M: 64, K: 784, N: 512, transA: false, transB: false }, 30),
    ...convCases(conv(1, 16, 14, 14, 16, 3, 1, 1), 40), // a Glow coupling conv, one input
    ...convCases(conv(16, 16, 14, 14, 16, 3, 1, 1), 41), // the same, a batch of 16
    ...convCases(conv(16, 1, 28, 28, 16, 3, 2, 1), 42), // the VAE's first conv
    ...convCases(conv(16, 32, 14, 14, 32, 3, 1, 1), 43), // a wider layer
  ];
}

export const fallbackCaseNames = () => benchCases().map((c) => c.name);

/**
 * Interleaved timings of the cases numbered in `only` (all by default), median of `reps` after one
 * warm-up each (the warm-up compiles gpu.js's kernel).
 */
export async function benchFallback(GPU: F.GpujsBackend, reps = 3, only?: number[]): Promise<FallbackTiming[]> {
  const gj = new F.GpujsBackend(GPU.gpuClass, { ops: F.GPUJS_OPS, minMacs: 0 }), cpu = new F.CpuBackend();
  const all = benchCases();
  const cases = only ? only.map((i) => all[i]) : all;
  const res: FallbackTiming[] = [];
  for (const c of cases) {
    const ref = c.run(cpu), got = c.run(gj);
    const tc: number[] = [], tg: number[] = [];
    for (let r = 0; r < reps; r++) {
      let t = performance.now();
      c.run(cpu);
      tc.push(performance.now() - t);
      t = performance.now();
      c.run(gj);
      tg.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 0));
    }
    const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const t: FallbackTiming = { name: c.name, op: c.op, macs: c.macs, cpuMs: med(tc), gpujsMs: med(tg), speedup: med(tc) / med(tg), err: maxRel(got, ref) };
    res.push(t);
  }
  gj.dispose();
  return res;
}
