// Drivers for conv2d forward and its input- and weight-gradient kernels.
import type { ConvParams } from "../backend.ts";
import {
  conv2dForwardShader, conv2dForwardUniformShader, conv2dInputGradShader, conv2dInputGradUniformShader,
  conv2dWeightGradShader, conv2dWeightGradUniformShader, type ConvVariant, uniformChannels,
} from "../../../shaders/conv.wgsl.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";
import { reduce } from "./reduce.ts";
import type { MatmulVariant } from "../../../shaders/matmul.wgsl.ts";
import { conv2dGemm, conv2dInputGradGemm, conv2dShared, conv2dWeightGradGemm, convParams } from "./conv_gemm.ts";
import { MAX_GROUPS_X, WG } from "../../../shaders/preamble.ts";

/** Largest patch matrix auto gives to gemm. */
const GEMM_MAX_PATCH_BYTES = 256 << 20;
/** The uniform weight gradient splits its sum over images until about this many lanes work. */
const WGRAD_MIN_LANES = 512;

/**
 * "auto": gemm (im2col + matmul; 2.3-3.3x the uniform kernels on the bench's conv, bench/README.md)
 * while its patch matrix stays within one storage binding and GEMM_MAX_PATCH_BYTES; past that the
 * uniform kernel with the smallest channel block (4, 8, 16) covering the channels.
 */
function resolve(rt: Runtime, variant: ConvVariant, p: ConvParams, channels: number): ConvVariant {
  if (variant !== "auto") return variant;
  const colBytes = 4 * p.N * p.Cin * p.KH * p.KW * p.OH * p.OW;
  if (colBytes <= Math.min(rt.device.limits.maxStorageBufferBindingSize, GEMM_MAX_PATCH_BYTES)) return "gemm";
  return channels <= 4 ? "uniform4" : channels <= 8 ? "uniform8" : "uniform16";
}

/** Workgroups for the uniform variants: x (and z past the per-dimension limit) over positions, y over channel blocks. */
function uniformGrid(positions: number, channelBlocks: number): [number, number, number] {
  const wx = Math.ceil(positions / WG);
  const z = Math.ceil(wx / MAX_GROUPS_X);
  return [Math.ceil(wx / z), channelBlocks, z];
}

export function conv2d(rt: Runtime, x: GpuStorage, w: GpuStorage, p: ConvParams, variant: ConvVariant, mm: MatmulVariant = "auto"): GpuStorage {
  const og = p.Cout / p.groups;
  variant = resolve(rt, variant, p, og);
  if (variant === "gemm") return conv2dGemm(rt, x, w, p, mm);
  if (variant === "shared") return conv2dShared(rt, x, w, p);
  const out = rt.alloc(p.N * p.Cout * p.OH * p.OW);
  const ch = uniformChannels(variant);
  if (ch) {
    const grid = uniformGrid(p.N * p.OH * p.OW, p.groups * Math.ceil(og / ch));
    rt.dispatch(`conv2d:${variant}`, () => conv2dForwardUniformShader(ch), convParams(p), [x, w], out, grid);
    return out;
  }
  const cb = variant === "block4" ? 4 : 1;
  const n = p.N * p.groups * Math.ceil(og / cb) * p.OH * p.OW;
  rt.dispatch(`conv2d:${variant}`, () => conv2dForwardShader(variant), convParams(p), [x, w], out, groups(n));
  return out;
}

export function conv2dInputGrad(rt: Runtime, gy: GpuStorage, w: GpuStorage, p: ConvParams, variant: ConvVariant, mm: MatmulVariant = "auto"): GpuStorage {
  variant = resolve(rt, variant, p, p.Cin / p.groups);
  if (variant === "gemm") return conv2dInputGradGemm(rt, gy, w, p, mm);
  if (variant === "shared") return conv2dInputGradGemm(rt, gy, w, p, "shared4x4");
  const n = p.N * p.Cin * p.H * p.W;
  const out = rt.alloc(n);
  const ch = uniformChannels(variant);
  if (ch) {
    const grid = uniformGrid(p.N * p.H * p.W, p.groups * Math.ceil(p.Cin / p.groups / ch));
    rt.dispatch(`conv2dInputGrad:${variant}`, () => conv2dInputGradUniformShader(ch), convParams(p), [gy, w], out, grid);
  } else rt.dispatch("conv2dInputGrad", conv2dInputGradShader, convParams(p), [gy, w], out, groups(n));
  return out;
}

export function conv2dWeightGrad(rt: Runtime, x: GpuStorage, gy: GpuStorage, p: ConvParams, variant: ConvVariant, mm: MatmulVariant = "auto"): GpuStorage {
  variant = resolve(rt, variant, p, p.Cout / p.groups);
  if (variant === "gemm") return conv2dWeightGradGemm(rt, x, gy, p, mm);
  if (variant === "shared") return conv2dWeightGradGemm(rt, x, gy, p, "shared4x4");
  const per = (p.Cin / p.groups) * p.KH * p.KW;
  const ch = uniformChannels(variant);
  if (!ch) {
    const out = rt.alloc(p.Cout * per);
    rt.dispatch("conv2dWeightGrad", conv2dWeightGradShader, convParams(p), [x, gy], out, groups(p.Cout * per));
    return out;
  }
  // Split the sum over images so at least ~WGRAD_MIN_LANES lanes work, then add the splits up.
  const splits = Math.max(1, Math.min(p.N, Math.ceil(WGRAD_MIN_LANES / per)));
  const partial = rt.alloc(splits * p.Cout * per);
  const grid = uniformGrid(per * splits, p.groups * Math.ceil(p.Cout / p.groups / ch));
  rt.dispatch(`conv2dWeightGrad:${variant}`, () => conv2dWeightGradUniformShader(ch), convParams(p, splits), [x, gy], partial, grid);
  if (splits === 1) return partial;
  const out = reduce(rt, "sum", partial, 1, splits, p.Cout * per);
  rt.free(partial);
  return out;
}
