// The strided copy behind permute, slice, pad, flip and broadcast:
// each output dim walks one input dim from `start` by `step`; outside the input reads padValue.
import { entry, PARAMS } from "./preamble.ts";

/** params: [n, rank, padValue, shape[8], start[8] (i32), step[8] (i32), extent[8], inStride[8]] */
export function stridedShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= P[0]) { return; }
  let rank = P[1];
  var rem = idx;
  var off = 0i;
  var inside = true;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let dim = P[3u + k];
    let c = pi(11u + k) + i32(rem % dim) * pi(19u + k);
    rem = rem / dim;
    inside = inside && c >= 0 && c < i32(P[27u + k]);
    off += c * i32(P[35u + k]);
  }
  Y[idx] = select(pf(2u), X[u32(max(off, 0))], inside);
}`;
}
