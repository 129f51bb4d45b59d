// Reduction of the middle axis of [outer, R, inner].
import type { ReduceOp } from "../src/kernels/ops.ts";
import { entry, Layout, nonFinite, PARAMS } from "./preamble.ts";

/** Params: n = outer * inner outputs, each the reduction of R elements inner apart. */
export const REDUCE = new Layout({ n: 1, R: 1, inner: 1 });

// max starts at -inf, made at run time from n (both shaders declare n first: preamble.ts nonFinite).
const INIT = { sum: "0.0", max: nonFinite(0xff800000, "n"), sumsq: "0.0" };
// max propagates NaN like the CPU reference.
const STEP = { sum: "acc + v", max: "select(acc, v, v > acc || v != v)", sumsq: "fma(v, v, acc)" };
// Combining two partial results (the workgroup tree): partial sums of squares add.
const COMBINE = { sum: "acc2 + v", max: "select(acc2, v, v > acc2 || v != v)", sumsq: "acc2 + v" };

/** One invocation per output. */
export function reduceShader(op: ReduceOp): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  ${REDUCE.declare("n", "R", "inner")}
  if (idx >= n) { return; }
  let o = idx / inner;
  let i = idx % inner;
  var base = o * R * inner + i;
  var acc = ${INIT[op]};
  for (var r = 0u; r < R; r++) {
    let v = X[base];
    acc = ${STEP[op]};
    base += inner;
  }
  Y[idx] = acc;
}`;
}

/** One workgroup of wg lanes (a power of two) per output, for few outputs over a long axis. */
export function reduceWideShader(op: ReduceOp, wg: number): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
var<workgroup> part: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let out = wid.x + wid.y * nwg.x;
  ${REDUCE.declare("n", "R", "inner")}
  let valid = out < n;
  let o = out / inner;
  let i = out % inner;
  var acc = ${INIT[op]};
  if (valid) {
    for (var r = lid; r < R; r += ${wg}u) {
      let v = X[(o * R + r) * inner + i];
      acc = ${STEP[op]};
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let v = part[lid + s];
      let acc2 = part[lid];
      part[lid] = ${COMBINE[op]};
    }
    workgroupBarrier();
  }
  if (lid == 0u && valid) { Y[out] = part[0]; }
}`;
}
