// The products (convolutions and matrix products) a piece of work runs on the wasm backend, by
// kind and shape, and their FLOPs (2 per multiply-add): what bench/wasm_profile.ts and the
// PyTorch comparison (bench/torch.ts) count a row's GFLOP/s by.
import type { Backend, ConvParams, MatmulSpec } from "../src/kernels/backend.ts";
import type { WasmBackend } from "../src/kernels/wasm/backend.ts";

export type Product = { op: "conv2d" | "conv2dInputGrad" | "conv2dWeightGrad"; p: ConvParams } | { op: "matmul"; s: MatmulSpec };
export const flopsOf = (q: Product) => q.op === "matmul"
  ? 2 * Math.max(q.s.batchA, q.s.batchB) * q.s.M * q.s.K * q.s.N
  : 2 * q.p.N * q.p.Cout * (q.p.Cin / q.p.groups) * q.p.KH * q.p.KW * q.p.OH * q.p.OW;
export const keyOf = (q: Product) => q.op === "matmul" ? `matmul ${q.s.batchA}/${q.s.batchB} ${q.s.M}x${q.s.K}x${q.s.N}${q.s.transA ? " tA" : ""}${q.s.transB ? " tB" : ""}`
  : `${q.op} [${q.p.N},${q.p.Cin},${q.p.H},${q.p.W}]->${q.p.Cout} k${q.p.KH}${q.p.KW === q.p.KH ? "" : `x${q.p.KW}`} s${q.p.stride} p${q.p.pad} g${q.p.groups}`;

const PRODUCT_OPS = ["conv2d", "conv2dInputGrad", "conv2dWeightGrad", "matmul"] as const;

/**
 * Records every product of b (its kind and shape) while on; returns the list and a restore
 * function. A fused convolution with its bias and activation (conv2dBias) counts as its conv2d, an
 * input gradient times an activation's derivative (conv2dInputGradTimes) as its conv2dInputGrad.
 */
export function recordProducts(b: Backend): { list: Product[]; restore: () => void } {
  const list: Product[] = [];
  // deno-lint-ignore no-explicit-any
  const bb = b as any, proto = Object.getPrototypeOf(b);
  for (const op of PRODUCT_OPS) {
    bb[op] = (...xs: unknown[]) => {
      if ((xs[3] as string) !== "float64") list.push(op === "matmul" ? { op, s: xs[2] as MatmulSpec } : { op, p: xs[2] as ConvParams });
      return proto[op].apply(b, xs);
    };
  }
  // the fused ops, each as its product: conv2dBias's params 4th, conv2dInputGradTimes's 3rd
  const fused = ([["conv2dBias", "conv2d", 3], ["conv2dInputGradTimes", "conv2dInputGrad", 2]] as const).filter(([f]) => typeof proto[f] === "function");
  for (const [f, op, at] of fused) {
    bb[f] = (...xs: unknown[]) => {
      const r = proto[f].apply(b, xs);
      if (r) list.push({ op, p: xs[at] as ConvParams });
      return r;
    };
  }
  return { list, restore: () => { for (const op of [...PRODUCT_OPS, ...fused.map(([f]) => f)]) delete bb[op]; } };
}

/** The distinct products of a list (by keyOf), each with how many times it occurs, in order of first occurrence. */
export function distinctProducts(list: Product[]): { q: Product; n: number }[] {
  const byKey = new Map<string, { q: Product; n: number }>();
  for (const q of list) {
    const e = byKey.get(keyOf(q)) ?? { q, n: 0 };
    e.n++;
    byKey.set(keyOf(q), e);
  }
  return [...byKey.values()];
}

/** Elements of a product's two operands, in the order the backend takes them (conv2d: x, w; input gradient: gy, w; weight gradient: x, gy; matmul: a, b). */
export function operandSizes(q: Product): [number, number] {
  if (q.op === "matmul") return [q.s.batchA * q.s.M * q.s.K, q.s.batchB * q.s.K * q.s.N];
  const p = q.p, xs = p.N * p.Cin * p.H * p.W, ws = p.Cout * (p.Cin / p.groups) * p.KH * p.KW, ys = p.N * p.Cout * p.OH * p.OW;
  return q.op === "conv2d" ? [xs, ws] : q.op === "conv2dInputGrad" ? [ys, ws] : [xs, ys];
}

/**
 * One product alone on the wasm backend, on storages of its operands' sizes (the same ones every
 * run, so its data stays in the caches): the best of `runs` timed runs after one untimed, in ms
 * of the clock `now` (op_timer's clockMs: process CPU time, which the machine's other load
 * disturbs least, or wall time).
 */
export function productAloneMs(b: WasmBackend, q: Product, now: () => number, runs = 5): number {
  const [n0, n1] = operandSizes(q);
  const x = b.alloc(n0).fill(0.5), y = b.alloc(n1).fill(0.25);
  const f = q.op === "matmul" ? () => b.matmul(x, y, q.s, "float32") as Float32Array
    : () => (b[q.op] as (a: Float32Array, c: Float32Array, p: ConvParams, d: "float32") => Float32Array)(x, y, q.p, "float32");
  let best = Infinity;
  for (let r = 0; r <= runs; r++) {
    const t0 = now();
    const o = f();
    if (r) best = Math.min(best, now() - t0);
    b.release(o);
  }
  b.release(x);
  b.release(y);
  return best;
}
