// The strided copy behind permute, slice, pad, flip and broadcast. Each (coalesced) output dim has
// a size and either an element stride into the input, or, where it can run outside the input
// (padding), a checked walk: coordinate start + i*step, bounds-tested, times the input stride.
import { entry, PARAMS } from "./preamble.ts";

/**
 * params: [n, rank, padValue, base, then per dim (8 slots each group):
 *   size[8], estride[8] (i32), checked[8], start[8] (i32), step[8] (i32), extent[8], inStride[8]]
 * The rank and which dims are checked are baked in (one pipeline each): the unrolled walk beat a
 * loop over a runtime rank on lavapipe (see the broadcast kernels in elementwise.wgsl.ts).
 */
export function stridedShader(checked: readonly boolean[]): string {
  const steps = [...checked.keys()].reverse().map((k) => {
    const last = k === 0;
    const i = last ? "rem" : `i${k}`;
    const head = last ? "" : `  let q${k} = rem / P[${4 + k}u];\n  let i${k} = rem - q${k} * P[${4 + k}u];\n  rem = q${k};\n`;
    const body = checked[k]
      ? `  let c${k} = pi(${28 + k}u) + i32(${i}) * pi(${36 + k}u);\n  inside = inside && c${k} >= 0 && c${k} < i32(P[${44 + k}u]);\n  off += c${k} * i32(P[${52 + k}u]);\n`
      : `  off += i32(${i}) * pi(${12 + k}u);\n`;
    return head + body;
  });
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= P[0]) { return; }
  var rem = idx;
  var off = pi(3u);
  var inside = true;
${steps.join("")}  Y[idx] = select(pf(2u), X[u32(max(off, 0))], inside);
}`;
}

/** params: [n = outer * blk, blk, total, off]: Y[o * total + off + j] = X[o * blk + j]. */
export function placeShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= P[0]) { return; }
  let o = idx / P[1];
  Y[o * P[2] + P[3] + (idx - o * P[1])] = X[idx];
}`;
}

/** params: [n = outer * blk, blk, total, off]: Y[o * blk + j] = X[o * total + off + j]. */
export function takeShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= P[0]) { return; }
  let o = idx / P[1];
  Y[idx] = X[o * P[2] + P[3] + (idx - o * P[1])];
}`;
}
