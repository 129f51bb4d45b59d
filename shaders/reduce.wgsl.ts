// Reduction of the middle axis of [outer, R, inner].
import { wgsl } from "wgsl-preprocessor";
import type { ReduceOp } from "../src/kernels/ops.ts";
import { entry, PARAMS } from "./preamble.ts";

const INIT = { sum: "0.0", max: "bitcast<f32>(0xff800000u)", sumsq: "0.0" };
// max propagates NaN like the CPU reference.
const STEP = { sum: "acc + v", max: "select(acc, v, v > acc || v != v)", sumsq: "fma(v, v, acc)" };
// Combining two partial results (the workgroup tree): partial sums of squares add.
const COMBINE = { sum: "acc2 + v", max: "select(acc2, v, v > acc2 || v != v)", sumsq: "acc2 + v" };

/** One invocation per output. params: [outer*inner, R, inner] */
export function reduceShader(op: ReduceOp): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= P[0]) { return; }
  let R = P[1];
  let inner = P[2];
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

/** One workgroup per output, for few outputs over a long axis. params as above. */
export function reduceWideShader(op: ReduceOp, wg: number): string {
  return wgsl`${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
var<workgroup> part: array<f32, ${wg}>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let out = wid.x + wid.y * nwg.x;
  let valid = out < P[0];
  let R = P[1];
  let inner = P[2];
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
