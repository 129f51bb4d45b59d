// Batched matmul C[b] = op(A[b]) op(B[b]); transposes and batch broadcast are strides.
// params: [batch, M, K, N, aBatch, aM, aK, bBatch, bK, bN, aWrap]  (element strides; 0 = broadcast;
// A repeats every aWrap batches: A[b % aWrap], which lets a convolution pair per-group weights with every image)
import { wgsl } from "wgsl-preprocessor";
import { entry, PARAMS } from "./preamble.ts";

const IO = `${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;`;

/** Writes a vec4 of C at row m from column n0, skipping what falls outside M x N. */
const STORE = /* wgsl */ `
fn store(base: u32, m: u32, n0: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  let o = base + m * N;
  for (var j = 0u; j < 4u; j++) {
    if (n0 + j < N) { C[o + n0 + j] = v[j]; }
  }
}`;

export type MatmulVariant =
  | "auto" | "naive" | "block2x4" | "block4x4" | "block4x8" | "block8x4" | "block8x8"
  | "grouped4x4" | "grouped4x8" | "grouped8x8" | "rows4x8" | "rows8x8" | "rows16x4" | "tiled";
export const MATMUL_VARIANTS: MatmulVariant[] = [
  "naive", "block2x4", "block4x4", "block4x8", "block8x4", "block8x8", "grouped4x4", "grouped4x8", "grouped8x8",
  "rows4x8", "rows8x8", "rows16x4", "tiled",
];

/** Rows and columns per invocation of a block variant. */
export function blockDims(v: MatmulVariant): [number, number] | null {
  const m = /^(?:block|grouped)(\d)x(\d)$/.exec(v);
  return m ? [+m[1], +m[2]] : null;
}

/** One output per invocation. */
function naive(): string {
  return `${IO}
${entry()}
  let M = P[1]; let K = P[2]; let N = P[3];
  if (idx >= P[0] * M * N) { return; }
  let b = idx / (M * N);
  let m = (idx / N) % M;
  let n = idx % N;
  var ai = (b % P[10]) * P[4] + m * P[5];
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
 * Grouped order: the 64 invocations of a workgroup take an 8x8 grid of blocks instead of a row
 * of 64, so they share rows of A and columns of B in cache.
 */
const GROUPED = `
  let wgs = (tm + 7u) / 8u * ((tn + 7u) / 8u);
  let w = idx / 64u;
  let l = idx % 64u;
  let b = w / wgs;
  let wr = w % wgs;
  let tnw = (tn + 7u) / 8u;
  let bm = (wr / tnw) * 8u + l / 8u;
  let bn = (wr % tnw) * 8u + l % 8u;
  if (b >= P[0] || bm >= tm || bn >= tn) { return; }
  let m0 = bm * RMu;
  let n0 = bn * RNu;`;

/**
 * Each invocation owns an RM x RN block (RN a multiple of 4) held in vec4 accumulators, no
 * arrays (lavapipe keeps these in registers). Out-of-range rows/cols read a clamped index and
 * are not written.
 */
function block(RM: number, RN: number, grouped: boolean): string {
  const rows = [...Array(RM).keys()], quads = [...Array(RN / 4).keys()], cols = [...Array(RN).keys()];
  return `${IO}
${entry()}
  let M = P[1]; let K = P[2]; let N = P[3];
  let tm = (M + ${RM - 1}u) / ${RM}u;
  let tn = (N + ${RN - 1}u) / ${RN}u;
${grouped ? GROUPED.replace("RMu", `${RM}u`).replace("RNu", `${RN}u`) : `  if (idx >= P[0] * tm * tn) { return; }
  let b = idx / (tm * tn);
  let m0 = ((idx / tn) % tm) * ${RM}u;
  let n0 = (idx % tn) * ${RN}u;`}
  let aM = P[5]; let aK = P[6]; let bK = P[8]; let bN = P[9];
  let bb = b * P[7];
  ${rows.map((r) => `let a${r} = (b % P[10]) * P[4] + min(m0 + ${r}u, M - 1u) * aM;`).join("\n  ")}
  ${cols.map((c) => `let c${c} = min(n0 + ${c}u, N - 1u) * bN;`).join("\n  ")}
  ${rows.map((r) => quads.map((q) => `var r${r}_${q} = vec4<f32>(0.0);`).join(" ")).join("\n  ")}
  for (var k = 0u; k < K; k++) {
    let kb = bb + k * bK;
    ${quads.map((q) => `let b${q} = vec4<f32>(${[0, 1, 2, 3].map((e) => `B[kb + c${q * 4 + e}]`).join(", ")});`).join("\n    ")}
    let ka = k * aK;
    ${rows.map((r) => `let av${r} = vec4<f32>(A[a${r} + ka]); ` + quads.map((q) => `r${r}_${q} = fma(av${r}, b${q}, r${r}_${q});`).join(" ")).join("\n    ")}
  }
  let base = b * M * N;
  ${rows.map((r) => quads.map((q) => `store(base, m0 + ${r}u, n0 + ${q * 4}u, M, N, r${r}_${q});`).join(" ")).join("\n  ")}
}

${STORE}`;
}

/**
 * Rows from the workgroup, columns from the lane: every load of A is then uniform across the
 * SIMD lanes (one scalar load and a broadcast on lavapipe), and B and C move as vec4 along N.
 * Needs N % 4 == 0 and B not transposed; a workgroup is 64 lanes x RN columns by RM rows.
 */
function rowsUniform(RM: number, RN: number): string {
  const rows = [...Array(RM).keys()], quads = [...Array(RN / 4).keys()];
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> C4: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let M = P[1]; let K = P[2]; let N = P[3];
  let b = wid.z;
  let m0 = wid.y * ${RM}u;
  let qf = (wid.x * 64u + lid) * ${RN / 4}u;   // first vec4 column of this lane
  let nq = N / 4u;
  if (qf >= nq) { return; }
  let aM = P[5]; let aK = P[6]; let bK4 = P[8] / 4u;
  ${rows.map((r) => `let a${r} = (b % P[10]) * P[4] + min(m0 + ${r}u, M - 1u) * aM;`).join("\n  ")}
  ${quads.map((q) => `let q${q} = b * P[7] / 4u + min(qf + ${q}u, nq - 1u);`).join("\n  ")}
  ${rows.map((r) => quads.map((q) => `var r${r}_${q} = vec4<f32>(0.0);`).join(" ")).join("\n  ")}
  for (var k = 0u; k < K; k++) {
    let kb = k * bK4;
    ${quads.map((q) => `let b${q} = B4[q${q} + kb];`).join("\n    ")}
    let ka = k * aK;
    ${rows.map((r) => `let av${r} = A[a${r} + ka]; ` + quads.map((q) => `r${r}_${q} = fma(vec4<f32>(av${r}), b${q}, r${r}_${q});`).join(" ")).join("\n    ")}
  }
  let base = b * M * nq;
  ${rows.map((r) => `if (m0 + ${r}u < M) { ` + quads.map((q) => `if (qf + ${q}u < nq) { C4[base + (m0 + ${r}u) * nq + qf + ${q}u] = r${r}_${q}; }`).join(" ") + " }").join("\n  ")}
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
      As[kk * TS + t] = select(0.0, A[(b % P[10]) * P[4] + min(m, M - 1u) * P[5] + min(k, K - 1u) * P[6]], m < M && k < K);
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

${STORE}`;
}

/** Rows and columns per lane of a rows-uniform variant. */
export function rowsDims(v: MatmulVariant): [number, number] | null {
  const m = /^rows(\d+)x(\d)$/.exec(v);
  return m ? [+m[1], +m[2]] : null;
}

export function matmulShader(v: MatmulVariant): string {
  const rd = rowsDims(v);
  if (rd) return rowsUniform(rd[0], rd[1]);
  const bd = blockDims(v);
  return bd ? block(bd[0], bd[1], v.startsWith("grouped")) : v === "naive" ? naive() : tiled();
}
