// Driver for batched matmul; the variant is selectable (see bench/README.md for measurements).
import type { MatmulSpec } from "../backend.ts";
import { blockDims, GROUP_SIDE, MATMUL, matmulShader, type MatmulVariant, rowsDims, SHARED_LANES, sharedDims, TILE } from "../../../shaders/matmul.wgsl.ts";
import { MAX_GROUPS_X, WG } from "../../../shaders/preamble.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";

/** Element strides of A and B per batch, row and column (0 = broadcast); A[b % aWrap] is used for batch b. */
export interface MatmulStrides {
  aBatch: number; aM: number; aK: number;
  bBatch: number; bK: number; bN: number;
  aWrap?: number;
}

/**
 * "auto" (tuned on lavapipe; the shared and subgroup variants are for real GPUs and chosen by name): the rows-uniform kernel when B's columns come in vec4s, else the 8x8 register block;
 * for one or two rows, the 4x8 block unless N is long (naive was 2-4x slower on every such shape).
 * (Copying a transposed B to row-major first cost more than it saved: bench/README.md.)
 */
export function matmul(rt: Runtime, a: GpuStorage, b: GpuStorage, s: MatmulSpec, variant: MatmulVariant): GpuStorage {
  const { batchA, batchB, M, K, N, transA, transB } = s;
  const strides = {
    aBatch: batchA === 1 ? 0 : M * K, aM: transA ? 1 : K, aK: transA ? M : 1,
    bBatch: batchB === 1 ? 0 : K * N, bK: transB ? 1 : N, bN: transB ? K : 1,
  };
  return matmulStrided(rt, a, b, Math.max(batchA, batchB), M, K, N, strides, variant);
}

/** C[b] (contiguous [batch, M, N]) from A and B read through explicit strides. */
export function matmulStrided(
  rt: Runtime, a: GpuStorage, b: GpuStorage, batch: number, M: number, K: number, N: number, s: MatmulStrides, variant: MatmulVariant,
): GpuStorage {
  // rows-uniform kernels read B and write C as vec4 along N.
  const vec4B = N % 4 === 0 && s.bN === 1 && s.bK % 4 === 0 && s.bBatch % 4 === 0;
  if (variant === "auto") {
    variant = M <= 2 ? (vec4B && N >= 256 ? "rows4x8" : "block4x8") : vec4B && N >= 32 ? (M <= 4 ? "rows4x8" : "rows8x8") : "block8x8";
  }
  // rows, tiled and shared put the batch on the z grid axis (at most MAX_GROUPS_X workgroups per axis); block kernels use a flat grid.
  const zBatch = rowsDims(variant) || sharedDims(variant) || variant === "tiled";
  if ((rowsDims(variant) && !vec4B) || (zBatch && batch > MAX_GROUPS_X)) variant = "block8x8";
  if (variant === "subgroup" && rt.subgroupsOff) throw new Error(`matmul variant subgroup: ${rt.subgroupsOff}`);
  const out = rt.alloc(batch * M * N);
  const params = MATMUL.pack({ batch, M, K, N, ...s, aWrap: s.aWrap ?? batch });
  // The shared variants read A (B) as vec4s along k (n) when four consecutive elements are contiguous and aligned everywhere.
  const vecA = !!sharedDims(variant) && s.aK === 1 && K % 4 === 0 && s.aM % 4 === 0 && s.aBatch % 4 === 0;
  const vecB = !!sharedDims(variant) && s.bN === 1 && N % 4 === 0 && s.bK % 4 === 0 && s.bBatch % 4 === 0;
  const key = sharedDims(variant) ? `matmul:${variant}:${+vecA}${+vecB}` : `matmul:${variant}`;
  const code = () => matmulShader(variant, vecA, vecB, rt.subgroupHeader ?? undefined);
  const rd = rowsDims(variant), sd = sharedDims(variant);
  if (rd) rt.dispatch(key, code, params, [a, b], out, [Math.ceil(N / (WG * rd[1])), Math.ceil(M / rd[0]), batch]);
  else if (sd) rt.dispatch(key, code, params, [a, b], out, [Math.ceil(N / (SHARED_LANES * sd[1])), Math.ceil(M / (SHARED_LANES * sd[0])), batch]);
  else if (variant === "subgroup") rt.dispatch(key, code, params, [a, b], out, batch * Math.ceil(M / 4) * Math.ceil(N / 4));
  else if (variant === "tiled") rt.dispatch(key, code, params, [a, b], out, [Math.ceil(N / TILE), Math.ceil(M / TILE), batch]);
  else if (blockDims(variant)) {
    const [rm, rn] = blockDims(variant)!;
    const tm = Math.ceil(M / rm), tn = Math.ceil(N / rn);
    const n = variant.startsWith("grouped") ? batch * Math.ceil(tm / GROUP_SIDE) * Math.ceil(tn / GROUP_SIDE) * WG : batch * tm * tn;
    rt.dispatch(key, code, params, [a, b], out, groups(n));
  } else rt.dispatch(key, code, params, [a, b], out, groups(batch * M * N));
  return out;
}
