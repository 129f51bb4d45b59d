// Driver for reductions: per-output loop, or a workgroup per output when outputs are few and long.
import type { ReduceOp } from "../backend.ts";
import { reduceShader, reduceWideShader } from "../../../shaders/reduce.wgsl.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";

const WIDE_WG = 64;

export type ReduceVariant = "auto" | "loop" | "wide";

export function reduce(rt: Runtime, op: ReduceOp, x: GpuStorage, outer: number, R: number, inner: number, variant: ReduceVariant = "auto"): GpuStorage {
  const n = outer * inner;
  const out = rt.alloc(n);
  const wide = variant === "wide" || (variant === "auto" && n < 2048 && R >= 256);
  if (wide) rt.dispatch(`reduceWide:${op}`, () => reduceWideShader(op, WIDE_WG), [n, R, inner], [x], out, n);
  else rt.dispatch(`reduce:${op}`, () => reduceShader(op), [n, R, inner], [x], out, groups(n));
  return out;
}
