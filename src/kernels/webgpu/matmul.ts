// Driver for batched matmul; the variant is selectable (see bench/README.md for measurements).
import type { MatmulSpec } from "../backend.ts";
import { blockDims, matmulShader, type MatmulVariant, rowsDims } from "../../../shaders/matmul.wgsl.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";

/**
 * "auto": the rows-uniform kernel when B's columns come in vec4s, else the 8x8 register block.
 * (Copying a transposed B to row-major first cost more than it saved: bench/README.md.)
 */
export function matmul(rt: Runtime, a: GpuStorage, b: GpuStorage, s: MatmulSpec, variant: MatmulVariant): GpuStorage {
  if (variant === "auto") variant = s.M <= 2 ? "naive" : s.N % 4 === 0 && s.N >= 32 && !s.transB ? "rows8x8" : "block8x8";
  const { batchA, batchB, M, K, N, transA, transB } = s;
  const batch = Math.max(batchA, batchB);
  const out = rt.alloc(batch * M * N);
  const params = [
    batch, M, K, N,
    batchA === 1 ? 0 : M * K, transA ? 1 : K, transA ? M : 1,
    batchB === 1 ? 0 : K * N, transB ? 1 : N, transB ? K : 1,
  ];
  // rows-uniform kernels need vec4 columns of B and C; otherwise fall back to the block kernel.
  if (rowsDims(variant) && (N % 4 !== 0 || transB)) variant = "block8x8";
  const key = `matmul:${variant}`;
  const code = () => matmulShader(variant);
  const rd = rowsDims(variant);
  if (rd) rt.dispatch(key, code, params, [a, b], out, [Math.ceil(N / (64 * rd[1])), Math.ceil(M / rd[0]), batch]);
  else if (variant === "tiled") rt.dispatch(key, code, params, [a, b], out, [Math.ceil(N / 64), Math.ceil(M / 64), batch]);
  else if (blockDims(variant)) {
    const [rm, rn] = blockDims(variant)!;
    const tm = Math.ceil(M / rm), tn = Math.ceil(N / rn);
    const n = variant.startsWith("grouped") ? batch * Math.ceil(tm / 8) * Math.ceil(tn / 8) * 64 : batch * tm * tn;
    rt.dispatch(key, code, params, [a, b], out, groups(n));
  }
  else rt.dispatch(key, code, params, [a, b], out, groups(batch * M * N));
  return out;
}
