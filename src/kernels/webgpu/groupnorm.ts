// Driver for the GroupNorm family: one workgroup per row (shaders/groupnorm.wgsl.ts).
import { GROUPNORM, groupNormGradShader, groupNormShader } from "../../../shaders/groupnorm.wgsl.ts";
import { f32bits, WG } from "../../../shaders/preamble.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";

export function groupNorm(rt: Runtime, x: GpuStorage, rows: number, M: number, eps: number): { y: GpuStorage; rstd: GpuStorage } {
  const y = rt.alloc(rows * M), rstd = rt.alloc(rows);
  rt.dispatch("groupNorm", () => groupNormShader(WG), GROUPNORM.pack({ rows, M, eps: f32bits(eps) }), [x], [y, rstd], rows);
  return { y, rstd };
}

export function groupNormGrad(rt: Runtime, g: GpuStorage, y: GpuStorage, rstd: GpuStorage, rows: number, M: number): GpuStorage {
  const dx = rt.alloc(rows * M);
  rt.dispatch("groupNormGrad", () => groupNormGradShader(WG), GROUPNORM.pack({ rows, M }), [g, y, rstd], dx, rows);
  return dx;
}
