// The strided copy behind permute, slice, pad, flip and broadcast. Each (coalesced) output dim has
// a size and either an element stride into the input, or, where it can run outside the input
// (padding), a checked walk: coordinate start + i*step, bounds-tested, times the input stride.
import { entry, PARAMS } from "./preamble.ts";

/**
 * params: [n, rank, padValue, base, then per dim (8 slots each group):
 *   size[8], estride[8] (i32), checked[8], start[8] (i32), step[8] (i32), extent[8], inStride[8]]
 */
export function stridedShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= P[0]) { return; }
  let rank = P[1];
  var rem = idx;
  var off = pi(3u);
  var inside = true;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let size = P[4u + k];
    let i = rem % size;
    rem = rem / size;
    if (P[20u + k] != 0u) {
      let c = pi(28u + k) + i32(i) * pi(36u + k);
      inside = inside && c >= 0 && c < i32(P[44u + k]);
      off += c * i32(P[52u + k]);
    } else {
      off += i32(i) * pi(12u + k);
    }
  }
  Y[idx] = select(pf(2u), X[u32(max(off, 0))], inside);
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
