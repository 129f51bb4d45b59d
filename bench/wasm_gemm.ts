// Micro-benchmark of the wasm SIMD128 matrix-product kernel's register blocks, one thread
// (packing excluded): GFLOP/s on n x n x n. `deno run -A bench/wasm_gemm.ts [--n 1024]`
import "../src/cli/errors.ts";
import { int, parseOptions } from "../src/io/options.ts";
import { moduleBytes } from "../src/kernels/wasm/emit.ts";
import { type GemmShape, gemmFn } from "../src/kernels/wasm/gemm.ts";

const n = parseOptions("wasm_gemm", { n: int({ min: 1, max: 4096 }).default(1024) }).n;
const shapes: GemmShape[] = [
  { MR: 4, NR: 8, KC: 256, MCP: 16, fma: true }, { MR: 6, NR: 8, KC: 256, MCP: 16, fma: true },
  { MR: 8, NR: 8, KC: 256, MCP: 16, fma: true }, { MR: 4, NR: 12, KC: 256, MCP: 16, fma: true },
  { MR: 4, NR: 16, KC: 256, MCP: 16, fma: true }, { MR: 6, NR: 8, KC: 256, MCP: 16, fma: false },
  { MR: 6, NR: 8, KC: 128, MCP: 16, fma: true }, { MR: 6, NR: 8, KC: 512, MCP: 8, fma: true },
];
const mem = new WebAssembly.Memory({ initial: 1024, maximum: 16384, shared: true });
const A = new Float32Array(n * n).map(() => Math.random() - 0.5), B = new Float32Array(n * n).map(() => Math.random() - 0.5);
for (const s of shapes) {
  const mod = new WebAssembly.Module(moduleBytes([gemmFn(s, "packed", "packed", "gemm")], { initial: 1024, maximum: 16384, shared: true }));
  const inst = new WebAssembly.Instance(mod, { env: { mem } });
  const gemm = inst.exports.gemm as (...a: number[]) => void;
  const rp = Math.ceil(n / s.MR), cp = Math.ceil(n / s.NR), Mp = rp * s.MR, Np = cp * s.NR;
  const apOff = 0, bpOff = apOff + Mp * n * 4, cOff = bpOff + Np * n * 4;
  const f = new Float32Array(mem.buffer);
  for (let i = 0; i < rp; i++) for (let k = 0; k < n; k++) for (let r = 0; r < s.MR; r++) {
    const m = i * s.MR + r;
    f[apOff / 4 + (i * n + k) * s.MR + r] = m < n ? A[m * n + k] : 0;
  }
  for (let j = 0; j < cp; j++) for (let k = 0; k < n; k++) for (let v = 0; v < s.NR; v++) {
    const c = j * s.NR + v;
    f[bpOff / 4 + (j * n + k) * s.NR + v] = c < n ? B[k * n + c] : 0;
  }
  const times: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    gemm(apOff, 0, bpOff, 0, cOff, Np, n, 0, rp, 0, cp, 0, 1, 0, 0);
    times.push(performance.now() - t0);
  }
  // spot-check 20 entries
  let err = 0;
  for (let t = 0; t < 20; t++) {
    const m = (t * 97) % n, c = (t * 131) % n;
    let ref = 0;
    for (let k = 0; k < n; k++) ref += A[m * n + k] * B[k * n + c];
    err = Math.max(err, Math.abs(ref - f[cOff / 4 + m * Np + c]));
  }
  times.sort((a, b) => a - b);
  console.log(`${JSON.stringify(s)}: median ${times[2].toFixed(1)} ms (${(2 * n ** 3 / times[2] / 1e6).toFixed(1)} GFLOP/s), min ${times[0].toFixed(1)}, err ${err.toExponential(1)}`);
}
