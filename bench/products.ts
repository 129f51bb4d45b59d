// The products (convolutions and matrix products) a piece of work runs on the wasm backend, by
// kind and shape, and their FLOPs (2 per multiply-add): what bench/wasm_profile.ts and the
// PyTorch comparison (bench/torch.ts) count a row's GFLOP/s by.
import type { Backend, ConvParams, MatmulSpec } from "../src/kernels/backend.ts";

export type Product = { op: "conv2d" | "conv2dInputGrad" | "conv2dWeightGrad"; p: ConvParams } | { op: "matmul"; s: MatmulSpec };
export const flopsOf = (q: Product) => q.op === "matmul"
  ? 2 * Math.max(q.s.batchA, q.s.batchB) * q.s.M * q.s.K * q.s.N
  : 2 * q.p.N * q.p.Cout * (q.p.Cin / q.p.groups) * q.p.KH * q.p.KW * q.p.OH * q.p.OW;
export const keyOf = (q: Product) => q.op === "matmul" ? `matmul ${q.s.batchA}/${q.s.batchB} ${q.s.M}x${q.s.K}x${q.s.N}${q.s.transA ? " tA" : ""}${q.s.transB ? " tB" : ""}`
  : `${q.op} [${q.p.N},${q.p.Cin},${q.p.H},${q.p.W}]->${q.p.Cout} k${q.p.KH} s${q.p.stride} g${q.p.groups}`;

const PRODUCT_OPS = ["conv2d", "conv2dInputGrad", "conv2dWeightGrad", "matmul"] as const;

/** Records every product of b (its kind and shape) while on; returns the list and a restore function. */
export function recordProducts(b: Backend): { list: Product[]; restore: () => void } {
  const list: Product[] = [];
  // deno-lint-ignore no-explicit-any
  const bb = b as any;
  for (const op of PRODUCT_OPS) {
    bb[op] = (...xs: unknown[]) => {
      if ((xs[3] as string) !== "float64") list.push(op === "matmul" ? { op, s: xs[2] as MatmulSpec } : { op, p: xs[2] as ConvParams });
      return Object.getPrototypeOf(b)[op].apply(b, xs);
    };
  }
  return { list, restore: () => { for (const op of PRODUCT_OPS) delete bb[op]; } };
}
