// Drivers for the elementwise family (unary, broadcasting binary, where, fill).
import type { BinaryOp, UnaryOp } from "../backend.ts";
import { broadcastStrides, sameShape, sizeOf } from "../shape.ts";
import { BROADCAST, binaryShader, FILL, SAME, fillShader, UNARY, unaryShader, whereShader } from "../../../shaders/elementwise.wgsl.ts";
import { f32bits, MAX_RANK, WG } from "../../../shaders/preamble.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";

/** Workgroups of a flat kernel over n elements. */
const groups = (n: number) => Math.ceil(n / WG);

export function checkRank(op: string, r: number) {
  if (r > MAX_RANK) throw new Error(`${op}: rank ${r} exceeds the WebGPU kernels' limit of ${MAX_RANK}`);
}

export function fill(rt: Runtime, n: number, value: number): GpuStorage {
  const out = rt.alloc(n);
  rt.dispatch("fill", fillShader, FILL.pack({ n, value: f32bits(value) }), [], out, groups(n));
  return out;
}

export function unary(rt: Runtime, op: UnaryOp, x: GpuStorage, n: number, p: number): GpuStorage {
  const out = rt.alloc(n);
  rt.dispatch(`unary:${op}`, () => unaryShader(op), UNARY.pack({ n, p: f32bits(p) }), [x], out, groups(n));
  return out;
}

/**
 * BROADCAST params, with size-1 dims dropped and adjacent dims merged where every input walks
 * them linearly (fewer divisions per element).
 */
function broadcastParams(outShape: readonly number[], inShapes: (readonly number[])[]): number[] {
  const strides = inShapes.map((s) => broadcastStrides(s, outShape));
  const shape: number[] = [], st: number[][] = inShapes.map(() => []);
  outShape.forEach((size, d) => {
    if (size === 1) return;
    const last = shape.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k][last] === size * s[d])) {
      shape[last] *= size;
      strides.forEach((s, k) => (st[k][last] = s[d]));
    } else {
      shape.push(size);
      strides.forEach((s, k) => st[k].push(s[d]));
    }
  });
  return BROADCAST.pack({ n: sizeOf(outShape), rank: shape.length, shape, in0: st[0], in1: st[1], in2: st[2] });
}

export function binary(rt: Runtime, op: BinaryOp, a: GpuStorage, aShape: readonly number[], b: GpuStorage, bShape: readonly number[], outShape: readonly number[]): GpuStorage {
  checkRank(op, outShape.length);
  const n = sizeOf(outShape);
  const out = rt.alloc(n);
  const same = sameShape(aShape, outShape) && sameShape(bShape, outShape);
  const params = same ? SAME.pack({ n }) : broadcastParams(outShape, [aShape, bShape]);
  const rank = same ? 0 : params[BROADCAST.offset.rank];
  rt.dispatch(`binary:${op}:${same ? "same" : `r${rank}`}`, () => binaryShader(op, same, rank), params, [a, b], out, groups(n));
  return out;
}

export function where(rt: Runtime, c: GpuStorage, cShape: readonly number[], a: GpuStorage, aShape: readonly number[], b: GpuStorage, bShape: readonly number[], outShape: readonly number[]): GpuStorage {
  checkRank("where", outShape.length);
  const n = sizeOf(outShape);
  const out = rt.alloc(n);
  const params = broadcastParams(outShape, [cShape, aShape, bShape]);
  const rank = params[BROADCAST.offset.rank];
  rt.dispatch(`where:r${rank}`, () => whereShader(rank), params, [c, a, b], out, groups(n));
  return out;
}

export { f32bits, groups, MAX_RANK };
