// GroupNorm's normalisation and its gradient, one workgroup per row of [rows, M] (a row is one
// example's group of channels): the lanes stride the row (neighbouring lanes read neighbouring
// elements), reduce through workgroup memory, then write the row.
import { Layout, PARAMS } from "./preamble.ts";

/** Params: rows of M elements; eps as f32 bits. */
export const GROUPNORM = new Layout({ rows: 1, M: 1, eps: 1 });

/** Tree sum of `arr` over the workgroup's wg lanes (wg a power of two); every lane then reads arr[0]. */
const tree = (wg: number, arrs: string[]) => `
  for (var s = ${wg / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${arrs.map((a) => `${a}[lid] += ${a}[lid + s];`).join(" ")} }
    workgroupBarrier();
  }`;

const HEAD = (wg: number) => `
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  ${GROUPNORM.declare("rows", "M")}
  let valid = row < rows;
  let o = row * M;
  let fm = f32(M);`;

/**
 * Forward: the mean, then the mean squared deviation from it (two reads of the row, as the
 * definition; no cancellation), then y = (x - mean) * rstd and rstd per row.
 */
export function groupNormShader(wg: number): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> RSTD: array<f32>;
var<workgroup> part: array<f32, ${wg}>;
${HEAD(wg)}
  var s = 0.0;
  if (valid) { for (var i = lid; i < M; i += ${wg}u) { s += X[o + i]; } }
  part[lid] = s;
  workgroupBarrier();
  ${tree(wg, ["part"])}
  let mu = part[0] / fm;
  workgroupBarrier();
  var v = 0.0;
  if (valid) { for (var i = lid; i < M; i += ${wg}u) { let d = X[o + i] - mu; v = fma(d, d, v); } }
  part[lid] = v;
  workgroupBarrier();
  ${tree(wg, ["part"])}
  let k = 1.0 / sqrt(part[0] / fm + ${GROUPNORM.f("eps")});
  if (valid) {
    for (var i = lid; i < M; i += ${wg}u) { Y[o + i] = (X[o + i] - mu) * k; }
    if (lid == 0u) { RSTD[row] = k; }
  }
}`;
}

/** Backward: the sums of g and g * y in one read, then dx = rstd * (g - mean(g) - y * mean(g y)). */
export function groupNormGradShader(wg: number): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read> Y: array<f32>;
@group(0) @binding(3) var<storage, read> RSTD: array<f32>;
@group(0) @binding(4) var<storage, read_write> DX: array<f32>;
var<workgroup> pg: array<f32, ${wg}>;
var<workgroup> pgy: array<f32, ${wg}>;
${HEAD(wg)}
  var sg = 0.0;
  var sgy = 0.0;
  if (valid) {
    for (var i = lid; i < M; i += ${wg}u) { let g = G[o + i]; sg += g; sgy = fma(g, Y[o + i], sgy); }
  }
  pg[lid] = sg;
  pgy[lid] = sgy;
  workgroupBarrier();
  ${tree(wg, ["pg", "pgy"])}
  if (valid) {
    let k = RSTD[row];
    let a = k * pg[0] / fm;
    let b = k * pgy[0] / fm;
    for (var i = lid; i < M; i += ${wg}u) { DX[o + i] = k * G[o + i] - a - Y[o + i] * b; }
  }
}`;
}
