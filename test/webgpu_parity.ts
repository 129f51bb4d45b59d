// The shared parity cases (test/kernel_parity.ts) over every WebGPU kernel variant: each family's
// variants, the subgroup ones where the device has the feature, and the gemm convolutions over
// the matrix-product kernels they run on. Run by Deno on its adapter (test/webgpu_kernels.test.ts)
// and by Chromium on SwiftShader (test/parity_page.ts, driven by test/browser_kernels.test.ts).
import { kernelParity } from "./kernel_parity.ts";
import { withVariants } from "./helpers.ts";
import { MATMUL_VARIANTS, SUBGROUP_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS } from "../shaders/conv.wgsl.ts";
import { STRIDED_VARIANTS } from "../src/kernels/webgpu/strided.ts";
import { REDUCE_VARIANTS } from "../src/kernels/webgpu/reduce.ts";
import type { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";

/** The subgroup variants the device can run (none without its `subgroups` feature, or where its compiler takes no subgroup shader). */
export function subgroupVariants(gpu: WebGPUBackend | null): typeof SUBGROUP_VARIANTS {
  return gpu && !gpu.rt.subgroupsOff ? SUBGROUP_VARIANTS : [];
}

/**
 * Registers every case, over every variant, with `test` (which skips them where gpu is null: no
 * adapter); the subgroup variants are the device's unless given.
 */
export function webgpuParity(gpu: WebGPUBackend | null, test: (name: string, fn: () => Promise<void>) => void, subgroups = subgroupVariants(gpu)): void {
  kernelParity({
    backend: gpu!,
    test,
    variants: { reduce: REDUCE_VARIANTS, strided: STRIDED_VARIANTS, matmul: [...MATMUL_VARIANTS, ...subgroups], conv: CONV_VARIANTS },
    // gemm runs on the matmul kernels: check it over each of them (per-group weights repeat across images).
    convMatmuls: (conv) => conv === "gemm" ? ["auto", "naive", "block4x8", "grouped8x8", "rows8x8", "rows16x4", "tiled", "shared4x4", "shared8x8", ...subgroups] : ["auto"],
    withVariants: (v, f) => withVariants(gpu!, v, f),
  });
}
