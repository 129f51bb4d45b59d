// Driver for reductions: per-output loop, or a workgroup per output when outputs are few and long.
import type { ReduceOp } from "../backend.ts";
import { REDUCE, reduceShader, reduceWideShader } from "../../../shaders/reduce.wgsl.ts";
import { WG } from "../../../shaders/preamble.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { groups } from "./elementwise.ts";

/** Lanes of the wide kernel's workgroup, which takes one output. */
const WIDE_WG = WG;
/** auto: the wide kernel for fewer outputs than this, each over at least WIDE_MIN_R elements. */
const WIDE_MAX_OUTPUTS = 2048, WIDE_MIN_R = 256;

export type ReduceVariant = "auto" | "loop" | "wide";
/** Every reduce variant, for the parity tests and the benches. */
export const REDUCE_VARIANTS: ReduceVariant[] = ["loop", "wide", "auto"];

export function reduce(rt: Runtime, op: ReduceOp, x: GpuStorage, outer: number, R: number, inner: number, variant: ReduceVariant = "auto"): GpuStorage {
  const n = outer * inner;
  const out = rt.alloc(n);
  const wide = variant === "wide" || (variant === "auto" && n < WIDE_MAX_OUTPUTS && R >= WIDE_MIN_R);
  if (wide) rt.dispatch(`reduceWide:${op}`, () => reduceWideShader(op, WIDE_WG), REDUCE.pack({ n, R, inner }), [x], out, n);
  else rt.dispatch(`reduce:${op}`, () => reduceShader(op), REDUCE.pack({ n, R, inner }), [x], out, groups(n));
  return out;
}
