// Batched matmul C[b] = op(A[b]) op(B[b]); transposes and batch broadcast are strides.
import { wgsl } from "wgsl-preprocessor";
import { entry, Layout, PARAMS, WG } from "./preamble.ts";

/**
 * Params: C is [batch, M, N]; A and B are read through element strides per batch, row and column
 * (0 = broadcast), A repeating every aWrap batches (A[b % aWrap]: a convolution pairs per-group
 * weights with every image that way).
 */
export const MATMUL = new Layout({ batch: 1, M: 1, K: 1, N: 1, aBatch: 1, aM: 1, aK: 1, bBatch: 1, bK: 1, bN: 1, aWrap: 1 });
const L = MATMUL;
const DIMS = L.declare("M", "K", "N");

/** Block kernels: a workgroup's WG lanes take a GROUP_SIDE x GROUP_SIDE grid of blocks in the grouped order. */
export const GROUP_SIDE = Math.sqrt(WG);
if (!Number.isInteger(GROUP_SIDE)) throw new Error("matmul: the grouped order needs WG to be a square");
/** The tiled kernel: a TILE_LANES x TILE_LANES workgroup computes a TILE x TILE block of C. */
export const TILE = 64, TILE_K = 16, TILE_LANES = 16;

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
  ${DIMS}
  if (idx >= ${L.u("batch")} * M * N) { return; }
  let b = idx / (M * N);
  let m = (idx / N) % M;
  let n = idx % N;
  var ai = (b % ${L.u("aWrap")}) * ${L.u("aBatch")} + m * ${L.u("aM")};
  var bi = b * ${L.u("bBatch")} + n * ${L.u("bN")};
  var acc = 0.0;
  for (var k = 0u; k < K; k++) {
    acc = fma(A[ai], B[bi], acc);
    ai += ${L.u("aK")};
    bi += ${L.u("bK")};
  }
  C[idx] = acc;
}`;
}


/**
 * Each invocation owns an RM x RN block (RN a multiple of 4) held in vec4 accumulators, no
 * arrays (lavapipe keeps these in registers). Out-of-range rows/cols read a clamped index and
 * are not written.
 */
function block(RM: number, RN: number, grouped: boolean): string {
  const rows = [...Array(RM).keys()], quads = [...Array(RN / 4).keys()], cols = [...Array(RN).keys()];
  const G = GROUP_SIDE;
  // Grouped order: the WG invocations of a workgroup take a G x G grid of blocks instead of a row
  // of WG, so they share rows of A and columns of B in cache.
  return wgsl`${IO}
${entry()}
  ${DIMS}
  let tm = (M + ${RM - 1}u) / ${RM}u;
  let tn = (N + ${RN - 1}u) / ${RN}u;
#if ${grouped}
  let wgs = (tm + ${G - 1}u) / ${G}u * ((tn + ${G - 1}u) / ${G}u);
  let w = idx / ${WG}u;
  let l = idx % ${WG}u;
  let b = w / wgs;
  let wr = w % wgs;
  let tnw = (tn + ${G - 1}u) / ${G}u;
  let bm = (wr / tnw) * ${G}u + l / ${G}u;
  let bn = (wr % tnw) * ${G}u + l % ${G}u;
  if (b >= ${L.u("batch")} || bm >= tm || bn >= tn) { return; }
  let m0 = bm * ${RM}u;
  let n0 = bn * ${RN}u;
#else
  if (idx >= ${L.u("batch")} * tm * tn) { return; }
  let b = idx / (tm * tn);
  let m0 = ((idx / tn) % tm) * ${RM}u;
  let n0 = (idx % tn) * ${RN}u;
#endif
  ${L.declare("aM", "aK", "bK", "bN")}
  let bb = b * ${L.u("bBatch")};
  ${rows.map((r) => `let a${r} = (b % ${L.u("aWrap")}) * ${L.u("aBatch")} + min(m0 + ${r}u, M - 1u) * aM;`).join("\n  ")}
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
 * Needs N % 4 == 0 and B not transposed; a workgroup is WG lanes x RN columns by RM rows
 * (grid: x over columns, y over rows, z over the batch).
 */
function rowsUniform(RM: number, RN: number): string {
  const rows = [...Array(RM).keys()], quads = [...Array(RN / 4).keys()];
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> C4: array<vec4<f32>>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${DIMS}
  let b = wid.z;
  let m0 = wid.y * ${RM}u;
  let qf = (wid.x * ${WG}u + lid) * ${RN / 4}u;   // first vec4 column of this lane
  let nq = N / 4u;
  if (qf >= nq) { return; }
  ${L.declare("aM", "aK")} let bK4 = ${L.u("bK")} / 4u;
  ${rows.map((r) => `let a${r} = (b % ${L.u("aWrap")}) * ${L.u("aBatch")} + min(m0 + ${r}u, M - 1u) * aM;`).join("\n  ")}
  ${quads.map((q) => `let q${q} = b * ${L.u("bBatch")} / 4u + min(qf + ${q}u, nq - 1u);`).join("\n  ")}
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
 * Shared-memory tiling, the GPU classic: a TILE_LANES^2 workgroup computes a TILE x TILE tile,
 * 4x4 per invocation, staging TILE x TILE_K slices of A and B in workgroup memory.
 */
function tiled(): string {
  if (TILE !== 4 * TILE_LANES) throw new Error("matmul tiled: each lane computes 4x4 of the tile");
  return `${IO}
const TS = ${TILE}u;
const TK = ${TILE_K}u;
const LANES = ${TILE_LANES * TILE_LANES}u;
var<workgroup> As: array<f32, ${TILE * TILE_K}>;  // [TK][TS]
var<workgroup> Bs: array<f32, ${TILE * TILE_K}>;  // [TK][TS]
@compute @workgroup_size(${TILE_LANES}, ${TILE_LANES})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${DIMS}
  let b = wid.z;
  let mBase = wid.y * TS;
  let nBase = wid.x * TS;
  let tid = lid.y * ${TILE_LANES}u + lid.x;
  var r0 = vec4<f32>(0.0); var r1 = vec4<f32>(0.0); var r2 = vec4<f32>(0.0); var r3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += TK) {
    for (var e = tid; e < TS * TK; e += LANES) {
      let kk = e / TS;
      let t = e % TS;
      let k = k0 + kk;
      let m = mBase + t;
      let n = nBase + t;
      As[kk * TS + t] = select(0.0, A[(b % ${L.u("aWrap")}) * ${L.u("aBatch")} + min(m, M - 1u) * ${L.u("aM")} + min(k, K - 1u) * ${L.u("aK")}], m < M && k < K);
      Bs[kk * TS + t] = select(0.0, B[b * ${L.u("bBatch")} + min(k, K - 1u) * ${L.u("bK")} + min(n, N - 1u) * ${L.u("bN")}], n < N && k < K);
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
