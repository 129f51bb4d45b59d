// Drivers for conv2d forward and its input- and weight-gradient kernels.
import type { ConvParams } from "../backend.ts";
import { conv2dForwardShader, conv2dInputGradShader, conv2dWeightGradShader, type ConvVariant } from "../../../shaders/conv2d.wgsl.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";

const words = (p: ConvParams) => [p.N, p.Cin, p.H, p.W, p.Cout, p.KH, p.KW, p.stride, p.pad, p.groups, p.OH, p.OW];

export function conv2d(rt: Runtime, x: GpuStorage, w: GpuStorage, p: ConvParams, variant: ConvVariant): GpuStorage {
  const out = rt.alloc(p.N * p.Cout * p.OH * p.OW);
  const cb = variant === "block4" ? 4 : 1;
  const og = p.Cout / p.groups;
  const n = p.N * p.groups * Math.ceil(og / cb) * p.OH * p.OW;
  rt.dispatch(`conv2d:${variant}`, () => conv2dForwardShader(variant), words(p), [x, w], out, groups(n));
  return out;
}

export function conv2dInputGrad(rt: Runtime, gy: GpuStorage, w: GpuStorage, p: ConvParams): GpuStorage {
  const n = p.N * p.Cin * p.H * p.W;
  const out = rt.alloc(n);
  rt.dispatch("conv2dInputGrad", conv2dInputGradShader, words(p), [gy, w], out, groups(n));
  return out;
}

export function conv2dWeightGrad(rt: Runtime, x: GpuStorage, gy: GpuStorage, p: ConvParams): GpuStorage {
  const n = p.Cout * (p.Cin / p.groups) * p.KH * p.KW;
  const out = rt.alloc(n);
  rt.dispatch("conv2dWeightGrad", conv2dWeightGradShader, words(p), [x, gy], out, groups(n));
  return out;
}
