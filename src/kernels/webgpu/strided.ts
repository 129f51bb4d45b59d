// Driver for the strided copy (permute, slice, pad, flip, broadcast).
import type { StridedSpec } from "../backend.ts";
import { sizeOf, stridesOf } from "../../autograd/shape.ts";
import { stridedShader } from "../../../shaders/strided.wgsl.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { checkRank, f32bits, groups, MAX_RANK } from "./elementwise.ts";

export function strided(rt: Runtime, x: GpuStorage, spec: StridedSpec): GpuStorage {
  const { inShape, outShape, map, start, step, padValue } = spec;
  checkRank("strided copy", outShape.length);
  const n = sizeOf(outShape);
  const out = rt.alloc(n);
  const inSt = stridesOf(inShape);
  const pad8 = (a: number[]) => [...a, ...Array(MAX_RANK - a.length).fill(0)];
  const i32 = (v: number) => v >>> 0;
  const params = [
    n, outShape.length, f32bits(padValue),
    ...pad8([...outShape]),
    ...pad8(start.map(i32)),
    ...pad8(step.map(i32)),
    ...pad8(map.map((d) => inShape[d])),
    ...pad8(map.map((d) => inSt[d])),
  ];
  rt.dispatch("strided", stridedShader, params, [x], out, groups(n));
  return out;
}
