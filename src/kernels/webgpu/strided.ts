// Driver for the strided copy (permute, slice, pad, flip, broadcast). Adjacent output dims that
// walk the input linearly are merged first: fewer dims, fewer integer divisions per element.
// Where what is left is a few long contiguous runs (a slice along leading axes, a broadcast along
// a new leading axis such as the per-example parameter copies), buffer copies do it instead.
import type { StridedSpec } from "../backend.ts";
import { sizeOf, stridesOf } from "../shape.ts";
import { PLACE, placeShader, STRIDED, stridedShader, takeShader } from "../../../shaders/strided.wgsl.ts";
import { FILL, fillShader } from "../../../shaders/elementwise.wgsl.ts";
import { f32bits } from "../../../shaders/preamble.ts";
import type { GpuStorage, Runtime } from "./runtime.ts";
import { checkRank, groups } from "./elementwise.ts";

interface Dim {
  size: number;
  estride: number;
  checked: boolean;
  start: number;
  step: number;
  extent: number;
  inStride: number;
}

/** Per-dim walks with bounds checks only where the walk can leave the input; merged where linear. */
export function coalesceStrided(spec: StridedSpec): { base: number; dims: Dim[] } {
  const inSt = stridesOf(spec.inShape);
  let base = 0;
  const dims: Dim[] = [];
  spec.outShape.forEach((size, d) => {
    const m = spec.map[d], start = spec.start[d], step = spec.step[d], extent = spec.inShape[m];
    const last = start + (size - 1) * step;
    const checked = size > 0 && !(start >= 0 && start < extent && last >= 0 && last < extent);
    if (!checked) base += start * inSt[m];
    if (size === 1 && !checked) return; // contributes only its start
    dims.push({ size, estride: step * inSt[m], checked, start, step, extent, inStride: inSt[m] });
  });
  const merged: Dim[] = [];
  for (const d of dims) {
    const prev = merged[merged.length - 1];
    if (prev && !prev.checked && !d.checked && prev.estride === d.size * d.estride) {
      prev.size *= d.size;
      prev.estride = d.estride;
    } else merged.push({ ...d });
  }
  return { base, dims: merged };
}

/** kernel: always the shader; copy: buffer copies wherever the runs are contiguous; auto: copies for few long runs. */
export type StridedVariant = "kernel" | "copy" | "auto";
export const STRIDED_VARIANTS: StridedVariant[] = ["kernel", "copy", "auto"];
const AUTO_MIN_RUN = 1024, AUTO_MAX_RUNS = 256, COPY_MAX_RUNS = 4096;

/** Source offsets of each contiguous output run, or null where the layout is not runs of a unit-stride walk. */
function contiguousRuns(base: number, dims: Dim[], maxRuns: number): { run: number; offsets: number[] } | null {
  const last = dims[dims.length - 1];
  if (!last || last.checked || last.estride !== 1 || dims.some((d) => d.checked || d.estride < 0)) return null;
  const outer = dims.slice(0, -1);
  const count = outer.reduce((s, d) => s * d.size, 1);
  if (count > maxRuns) return null;
  const offsets: number[] = [];
  for (let r = 0; r < count; r++) {
    let rem = r, off = base;
    for (let d = outer.length - 1; d >= 0; d--) {
      off += (rem % outer[d].size) * outer[d].estride;
      rem = Math.floor(rem / outer[d].size);
    }
    offsets.push(off);
  }
  return { run: last.size, offsets };
}

/**
 * A pad along one axis only (what a slice's gradient is), [outer, before | x | after, inner], or a
 * slice along one axis, [outer, x[off .. off + blk], inner]: one division per element instead of
 * the per-dimension index walk.
 */
function singleAxis(spec: StridedSpec): { kind: "pad" | "slice"; outer: number; blk: number; total: number; off: number } | null {
  const { inShape, outShape, map, start, step } = spec;
  if (inShape.length !== outShape.length) return null;
  let axis = -1;
  for (let d = 0; d < outShape.length; d++) {
    if (map[d] !== d || step[d] !== 1) return null;
    if (start[d] === 0 && outShape[d] === inShape[d]) continue;
    if (axis >= 0) return null;
    axis = d;
  }
  if (axis < 0) return null;
  const inner = sizeOf(inShape.slice(axis + 1)), outer = sizeOf(inShape.slice(0, axis)), s0 = start[axis];
  if (s0 <= 0 && s0 + outShape[axis] >= inShape[axis]) return { kind: "pad", outer, blk: inShape[axis] * inner, total: outShape[axis] * inner, off: -s0 * inner };
  if (s0 >= 0 && s0 + outShape[axis] <= inShape[axis]) return { kind: "slice", outer, blk: outShape[axis] * inner, total: inShape[axis] * inner, off: s0 * inner };
  return null;
}

export function strided(rt: Runtime, x: GpuStorage, spec: StridedSpec, variant: StridedVariant = "auto"): GpuStorage {
  checkRank("strided copy", spec.outShape.length);
  const n = sizeOf(spec.outShape);
  const one = variant === "kernel" || n === 0 ? null : singleAxis(spec);
  if (one?.kind === "pad") {
    // Fill, then place x.
    const out = rt.alloc(n);
    rt.dispatch("fill", fillShader, FILL.pack({ n, value: f32bits(spec.padValue) }), [], out, groups(n));
    const moved = one.outer * one.blk;
    if (moved) rt.dispatch("place", placeShader, PLACE.pack({ n: moved, blk: one.blk, total: one.total, off: one.off }), [x], out, groups(moved));
    return out;
  }
  const out = rt.alloc(n);
  const { base, dims } = coalesceStrided(spec);
  const runs = variant === "kernel" ? null : contiguousRuns(base, dims, variant === "copy" ? COPY_MAX_RUNS : AUTO_MAX_RUNS);
  if (runs && (variant === "copy" || runs.run >= AUTO_MIN_RUN)) {
    runs.offsets.forEach((o, i) => rt.copy(x, o, out, i * runs.run, runs.run));
    return out;
  }
  if (one?.kind === "slice") {
    rt.dispatch("take", takeShader, PLACE.pack({ n, blk: one.blk, total: one.total, off: one.off }), [x], out, groups(n));
    return out;
  }
  const params = STRIDED.pack({
    n, rank: dims.length, padValue: f32bits(spec.padValue), base,
    size: dims.map((d) => d.size), estride: dims.map((d) => d.estride), start: dims.map((d) => d.start),
    step: dims.map((d) => d.step), extent: dims.map((d) => d.extent), inStride: dims.map((d) => d.inStride),
  });
  const checked = dims.map((d) => d.checked);
  rt.dispatch(`strided:${checked.map((c) => (c ? "c" : "u")).join("")}`, () => stridedShader(checked), params, [x], out, groups(n));
  return out;
}

/** Concatenation: each part written into its column block of the output, one pass per part. */
export function concat(rt: Runtime, parts: GpuStorage[], blocks: readonly number[], outer: number, variant: StridedVariant = "auto"): GpuStorage {
  const total = blocks.reduce((a, b) => a + b, 0);
  const out = rt.alloc(outer * total);
  let off = 0;
  parts.forEach((x, i) => {
    const blk = blocks[i], n = outer * blk;
    const copies = variant === "copy" ? outer <= COPY_MAX_RUNS : variant === "auto" && outer <= AUTO_MAX_RUNS && blk >= AUTO_MIN_RUN;
    if (copies) for (let o = 0; o < outer; o++) rt.copy(x, o * blk, out, o * total + off, blk);
    else if (n) rt.dispatch("place", placeShader, PLACE.pack({ n, blk, total, off }), [x], out, groups(n));
    off += blk;
  });
  return out;
}
