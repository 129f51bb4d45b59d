// The strided copy behind permute, slice, pad, flip and broadcast. Each (coalesced) output dim has
// a size and either an element stride into the input, or, where it can run outside the input
// (padding), a checked walk: coordinate start + i*step, bounds-tested, times the input stride.
import { wgsl } from "wgsl-preprocessor";
import { entry, Layout, MAX_RANK, PARAMS } from "./preamble.ts";

/**
 * Params of the strided copy: n outputs, padValue (f32), the input offset at output 0 (base), then
 * per (coalesced) output dim, MAX_RANK words each: its size; for unchecked dims the element stride
 * (estride, i32); for checked dims the input coordinate at index 0 and its step (i32), the input
 * dim's extent and its element stride.
 */
export const STRIDED = new Layout({
  n: 1, rank: 1, padValue: 1, base: 1,
  size: MAX_RANK, estride: MAX_RANK, start: MAX_RANK, step: MAX_RANK, extent: MAX_RANK, inStride: MAX_RANK,
});

/** Params of place and take: n = outer * blk elements moved between rows of blk and rows of total, at column off. */
export const PLACE = new Layout({ n: 1, blk: 1, total: 1, off: 1 });

/**
 * The rank and which dims are checked are baked in (one pipeline each): the unrolled walk beat a
 * loop over a runtime rank on lavapipe (see the broadcast kernels in elementwise.wgsl.ts).
 */
export function stridedShader(checked: readonly boolean[]): string {
  const L = STRIDED;
  // One step per dim, innermost first: its index i_k (the last dim takes what is left), then its
  // offset, bounds-checked where the walk can leave the input.
  const steps = [...checked.keys()].reverse().map((k) => {
    const i = k === 0 ? "rem" : `i${k}`;
    return wgsl`
#if ${k > 0}
  let q${k} = rem / ${L.u("size", k)};
  let i${k} = rem - q${k} * ${L.u("size", k)};
  rem = q${k};
#endif
#if ${checked[k]}
  let c${k} = ${L.i("start", k)} + i32(${i}) * ${L.i("step", k)};
  inside = inside && c${k} >= 0 && c${k} < i32(${L.u("extent", k)});
  off += c${k} * i32(${L.u("inStride", k)});
#else
  off += i32(${i}) * ${L.i("estride", k)};
#endif`;
  });
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= ${L.u("n")}) { return; }
  var rem = idx;
  var off = ${L.i("base")};
  var inside = true;
${steps.join("")}
  Y[idx] = select(${L.f("padValue")}, X[u32(max(off, 0))], inside);
}`;
}

/** Y[o * total + off + j] = X[o * blk + j]. */
export function placeShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  ${PLACE.declare("n", "blk", "total", "off")}
  if (idx >= n) { return; }
  let o = idx / blk;
  Y[o * total + off + (idx - o * blk)] = X[idx];
}`;
}

/** Y[o * blk + j] = X[o * total + off + j]. */
export function takeShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  ${PLACE.declare("n", "blk", "total", "off")}
  if (idx >= n) { return; }
  let o = idx / blk;
  Y[idx] = X[o * total + off + (idx - o * blk)];
}`;
}
