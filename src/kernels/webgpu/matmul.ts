// Driver for batched matmul; the variant is selectable (see bench/README.md for measurements).
import type { MatmulSpec } from "../backend.ts";
import { blockDims, matmulShader, type MatmulVariant, rowsDims } from "../../../shaders/matmul.wgsl.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";
import { strided } from "./strided.ts";

/**
 * "auto": the rows-uniform kernel when columns come in vec4s (a transposed B is first copied
 * to row-major, O(KN) against O(MKN)), else the 8x8 register block.
 */
export function matmul(rt: Runtime, a: GpuStorage, b: GpuStorage, s: MatmulSpec, variant: MatmulVariant): GpuStorage {
  if (variant === "auto") {
    if (s.N % 4 !== 0 || s.N < 32) return matmul(rt, a, b, s, "block8x8");
    if (!s.transB) return matmul(rt, a, b, s, "rows8x8");
    const bt = strided(rt, b, {
      inShape: [s.batchB, s.N, s.K], outShape: [s.batchB, s.K, s.N], map: [0, 2, 1], start: [0, 0, 0], step: [1, 1, 1], padValue: 0,
    });
    const out = matmul(rt, a, bt, { ...s, transB: false }, "rows8x8");
    rt.free(bt);
    return out;
  }
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
