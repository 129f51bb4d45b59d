// The wasm backend's module: every kernel generated here at load time (emit.ts), compiled once
// and instantiated on each thread over one shared memory.
import { Fn, moduleBytes, simd } from "./emit.ts";
import { DIRECT_EPS, dotFn, GEMM_DEFAULT, type GemmShape, gemmFn, packFn } from "./gemm.ts";
import { channelAffineBwdFn, channelAffineFwdFn, couplingBwdFn, couplingFwdFn } from "./coupling.ts";
import { binaryFn, SIMD_APPROX, SIMD_BINARY, SIMD_UNARY, unaryFn, whereFn } from "./elementwise.ts";
import { copy3dFn, copy4dFn, copyPadFn, DERIV_ACTS, derivEpilogueFn, EPILOGUE_ACTS, epilogueFn, fill32Fn } from "./copy.ts";
import { finiteFn, reduceFn } from "./reduce.ts";
import { momentFn } from "./optim.ts";
import { groupNormAffineFn, groupNormBwdFn, groupNormFwdFn } from "./groupnorm.ts";
import { winoFilterFn, winoInFn, winoOutFn } from "./winograd.ts";

export const KERNELS = [
  "gemm_pp", "gemm_pt", "gemm_tp", "pack_a", "pack_b", "copy3d", "gemm_pp4", "gemm_pt4", "gemm_tp4", "pack_a4",
  "gemm_pt2", "pack_a2", "wgrad_dot",
  ...SIMD_UNARY.map((o) => `un_${o}` as const), ...SIMD_APPROX.map((o) => `un_${o}` as const), ...SIMD_BINARY.map((o) => `bin_${o}` as const),
  "copy4d", "fill32", "red_sum", "red_sumsq", "where", "copypad", "moment", "gn_fwd", "gn_bwd",
  ...EPILOGUE_ACTS.map((a) => `ep_${a}` as const), ...SIMD_APPROX.map((o) => `mu_${o}` as const), ...DERIV_ACTS.map((a) => `ed_${a}` as const),
  "cpl_fwd", "cpl_bwd", ...EPILOGUE_ACTS.map((a) => `ga_${a}` as const), "wino_filter", "wino_in", "wino_out",
  ...DIRECT_EPS.map((e) => `gemm_ptd_${e}` as const), ...DIRECT_EPS.map((e) => `gemm_pt4d_${e}` as const), "finite", "ca_fwd", "ca_bwd",
] as const;
/** Columns of the 2-row block gemm_pt2. */
export const TABLE2_NR = 16;
export type KernelName = typeof KERNELS[number];

export function kernelFns(s: GemmShape): Fn[] {
  return [
    gemmFn(s, "packed", "packed", "gemm_pp"), gemmFn(s, "packed", "table", "gemm_pt"), gemmFn(s, "table", "packed", "gemm_tp"),
    packFn(s.MR, "pack_a"), packFn(s.NR, "pack_b"), copy3dFn(),
    // a 4-row block for products with few rows (4 or 8 channels: no padded rows)
    gemmFn({ ...s, MR: 4 }, "packed", "packed", "gemm_pp4"), gemmFn({ ...s, MR: 4 }, "packed", "table", "gemm_pt4"),
    gemmFn({ ...s, MR: 4 }, "table", "packed", "gemm_tp4"), packFn(4, "pack_a4"),
    // a 2-row block, 16 columns wide, for convolutions with 1 or 2 rows (runtime.ts tableRows)
    gemmFn({ ...s, MR: 2, NR: TABLE2_NR }, "packed", "table", "gemm_pt2"), packFn(2, "pack_a2"),
    // weight gradients with at most 4 output channels per group, or few taps, as dot products along the positions (conv.ts)
    dotFn(s, "wgrad_dot"),
    ...SIMD_UNARY.map((o) => unaryFn(o)), ...SIMD_APPROX.map((o) => unaryFn(o)), ...SIMD_BINARY.map(binaryFn),
    copy4dFn(), fill32Fn(), reduceFn("sum"), reduceFn("sumsq"), whereFn(), copyPadFn(), momentFn(), groupNormFwdFn(), groupNormBwdFn(),
    ...EPILOGUE_ACTS.map(epilogueFn), ...SIMD_APPROX.map((o) => unaryFn(o, true)), ...DERIV_ACTS.map(derivEpilogueFn),
    couplingFwdFn(), couplingBwdFn(), ...EPILOGUE_ACTS.map(groupNormAffineFn),
    // the stride-1 3x3 convolutions' Winograd transforms (conv_winograd.ts)
    winoFilterFn(), winoInFn(), winoOutFn(),
    // the 1x1 convolutions' products stored into the output with their epilogue (conv.ts productsOut)
    ...DIRECT_EPS.map((e) => gemmFn(s, "packed", "table", `gemm_ptd_${e}`, e)), ...DIRECT_EPS.map((e) => gemmFn({ ...s, MR: 4 }, "packed", "table", `gemm_pt4d_${e}`, e)),
    // whether a block of floats is all finite (the caller's check of a weight gradient, conv.ts)
    finiteFn(),
    // ActNorm's per-channel affine each way (coupling.ts)
    channelAffineFwdFn(), channelAffineBwdFn(),
  ];
}

/** Whether this engine accepts f32x4.relaxed_madd (relaxed SIMD). */
export function hasRelaxedSimd(): boolean {
  const f = new Fn("t", []);
  f.f32(1).simd(simd.f32x4splat).f32(1).simd(simd.f32x4splat).f32(1).simd(simd.f32x4splat).simd(simd.relaxedMadd).op(0x1a); // drop
  try {
    return WebAssembly.validate(moduleBytes([f], { initial: 1, maximum: 1, shared: false }));
  } catch {
    return false;
  }
}

export const MAX_PAGES = 32768; // 2 GiB of 64 KiB pages

export function buildModule(shared: boolean, shape: GemmShape = { ...GEMM_DEFAULT, fma: hasRelaxedSimd() }): { module: WebAssembly.Module; shape: GemmShape; shared: boolean } {
  const bytes = moduleBytes(kernelFns(shape), { initial: 16, maximum: MAX_PAGES, shared });
  return { module: new WebAssembly.Module(bytes), shape, shared };
}
