// Batched matmul C[b] = op(A[b]) op(B[b]); transposes and batch broadcast are strides.
// params: [batch, M, K, N, aBatch, aM, aK, bBatch, bK, bN]  (element strides; 0 = broadcast)
import { wgsl } from "wgsl-preprocessor";
import { entry, PARAMS } from "./preamble.ts";

const IO = `${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;`;

export type MatmulVariant = "naive" | "block4x4" | "tiled";
export const MATMUL_VARIANTS: MatmulVariant[] = ["naive", "block4x4", "tiled"];

/** One output per invocation. */
function naive(): string {
  return `${IO}
${entry()}
  let M = P[1]; let K = P[2]; let N = P[3];
  if (idx >= P[0] * M * N) { return; }
  let b = idx / (M * N);
  let m = (idx / N) % M;
  let n = idx % N;
  var ai = b * P[4] + m * P[5];
  var bi = b * P[7] + n * P[9];
  var acc = 0.0;
  for (var k = 0u; k < K; k++) {
    acc = fma(A[ai], B[bi], acc);
    ai += P[6];
    bi += P[8];
  }
  C[idx] = acc;
}`;
}

/**
 * Each invocation owns a 4x4 block held in four vec4 accumulators (no arrays: lavapipe keeps
 * these in registers). Out-of-range rows/cols read a clamped index and are not written.
 */
function block4x4(): string {
  return `${IO}
${entry()}
  let M = P[1]; let K = P[2]; let N = P[3];
  let tm = (M + 3u) / 4u;
  let tn = (N + 3u) / 4u;
  if (idx >= P[0] * tm * tn) { return; }
  let b = idx / (tm * tn);
  let m0 = ((idx / tn) % tm) * 4u;
  let n0 = (idx % tn) * 4u;
  let aM = P[5]; let aK = P[6]; let bK = P[8]; let bN = P[9];
  let a0 = b * P[4] + min(m0, M - 1u) * aM;
  let a1 = b * P[4] + min(m0 + 1u, M - 1u) * aM;
  let a2 = b * P[4] + min(m0 + 2u, M - 1u) * aM;
  let a3 = b * P[4] + min(m0 + 3u, M - 1u) * aM;
  let bb = b * P[7];
  let c0 = min(n0, N - 1u) * bN;
  let c1 = min(n0 + 1u, N - 1u) * bN;
  let c2 = min(n0 + 2u, N - 1u) * bN;
  let c3 = min(n0 + 3u, N - 1u) * bN;
  var r0 = vec4<f32>(0.0); var r1 = vec4<f32>(0.0); var r2 = vec4<f32>(0.0); var r3 = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let kb = bb + k * bK;
    let bv = vec4<f32>(B[kb + c0], B[kb + c1], B[kb + c2], B[kb + c3]);
    let ka = k * aK;
    r0 = fma(vec4<f32>(A[a0 + ka]), bv, r0);
    r1 = fma(vec4<f32>(A[a1 + ka]), bv, r1);
    r2 = fma(vec4<f32>(A[a2 + ka]), bv, r2);
    r3 = fma(vec4<f32>(A[a3 + ka]), bv, r3);
  }
  let base = b * M * N;
  store(base, m0, n0, M, N, r0);
  store(base, m0 + 1u, n0, M, N, r1);
  store(base, m0 + 2u, n0, M, N, r2);
  store(base, m0 + 3u, n0, M, N, r3);
}

fn store(base: u32, m: u32, n0: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  let o = base + m * N;
  for (var j = 0u; j < 4u; j++) {
    if (n0 + j < N) { C[o + n0 + j] = v[j]; }
  }
}`;
}

/**
 * Shared-memory tiling, the GPU classic: a 16x16 workgroup computes a 64x64 tile, 4x4 per
 * invocation, staging 64x16 slices of A and B in workgroup memory.
 */
function tiled(): string {
  return wgsl`${IO}
const TS = 64u;
const TK = 16u;
var<workgroup> As: array<f32, 1024>;  // [TK][TS]
var<workgroup> Bs: array<f32, 1024>;  // [TK][TS]
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = P[1]; let K = P[2]; let N = P[3];
  let b = wid.z;
  let mBase = wid.y * TS;
  let nBase = wid.x * TS;
  let tid = lid.y * 16u + lid.x;
  var r0 = vec4<f32>(0.0); var r1 = vec4<f32>(0.0); var r2 = vec4<f32>(0.0); var r3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += TK) {
    for (var e = tid; e < TS * TK; e += 256u) {
      let kk = e / TS;
      let t = e % TS;
      let k = k0 + kk;
      let m = mBase + t;
      let n = nBase + t;
      As[kk * TS + t] = select(0.0, A[b * P[4] + min(m, M - 1u) * P[5] + min(k, K - 1u) * P[6]], m < M && k < K);
      Bs[kk * TS + t] = select(0.0, B[b * P[7] + min(k, K - 1u) * P[8] + min(n, N - 1u) * P[9]], n < N && k < K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let bv = vec4<f32>(Bs[kk * TS + lid.x * 4u], Bs[kk * TS + lid.x * 4u + 1u], Bs[kk * TS + lid.x * 4u + 2u], Bs[kk * TS + lid.x * 4u + 3u]);
      let ar = kk * TS + lid.y * 4u;
      r0 = fma(vec4<f32>(As[ar]), bv, r0);
      r1 = fma(vec4<f32>(As[ar + 1u]), bv, r1);
      r2 = fma(vec4<f32>(As[ar + 2u]), bv, r2);
      r3 = fma(vec4<f32>(As[ar + 3u]), bv, r3);
    }
    workgroupBarrier();
  }
  let base = b * M * N;
  let m0 = mBase + lid.y * 4u;
  let n0 = nBase + lid.x * 4u;
  store(base, m0, n0, M, N, r0);
  store(base, m0 + 1u, n0, M, N, r1);
  store(base, m0 + 2u, n0, M, N, r2);
  store(base, m0 + 3u, n0, M, N, r3);
}

fn store(base: u32, m: u32, n0: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  let o = base + m * N;
  for (var j = 0u; j < 4u; j++) {
    if (n0 + j < N) { C[o + n0 + j] = v[j]; }
  }
}`;
}

export function matmulShader(v: MatmulVariant): string {
  return v === "naive" ? naive() : v === "block4x4" ? block4x4() : tiled();
}
