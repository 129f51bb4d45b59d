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
  | "grouped4x4" | "grouped4x8" | "grouped8x8" | "rows4x8" | "rows8x8" | "rows16x4" | "tiled"
  | "shared4x4" | "shared8x8" | "subgroup";
/** Every variant an adapter without the `subgroups` feature runs (the lavapipe-tuned ones first). */
export const MATMUL_VARIANTS: MatmulVariant[] = [
  "naive", "block2x4", "block4x4", "block4x8", "block8x4", "block8x8", "grouped4x4", "grouped4x8", "grouped8x8",
  "rows4x8", "rows8x8", "rows16x4", "tiled", "shared4x4", "shared8x8",
];
/** Variants that need the adapter's `subgroups` feature (the device is asked for it where the adapter has it). */
export const SUBGROUP_VARIANTS: MatmulVariant[] = ["subgroup"];

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

/** Rows and columns of C per lane of a shared variant (a 16 x 16 workgroup: tiles of 16 RM x 16 RN). */
export function sharedDims(v: MatmulVariant): [number, number] | null {
  const m = /^shared(\d)x(\d)$/.exec(v);
  return m ? [+m[1], +m[2]] : null;
}
/** Depth of the K slices the shared variants stage in workgroup memory. */
export const SHARED_K = 8;
/** The shared variants' workgroup side (lanes per tile row and column). */
export const SHARED_LANES = 16;

/**
 * How a tiled kernel reads its operands: WGSL expressions (over the index names given) for A(m, k)
 * and B(k, n) of batch b, and whether a lane may fetch four consecutive k of A (vecA) or four
 * consecutive n of B (vecB) with one vec4 load. Bounds are the kernel's: the loaders see
 * in-range indices only.
 */
export interface TileOperands {
  /** Declarations and bindings before the kernel (params, A, B, C). */
  head: string;
  /** Statements at the top of main (after M, K, N and b are known). */
  setup: string;
  /** A(m, k), or with vecA the vec4 of A(m, k..k+3) (k a multiple of 4). */
  a: (m: string, k: string) => string;
  b: (k: string, n: string) => string;
  vecA: boolean;
  vecB: boolean;
}

/**
 * Shared-memory tiling for real GPUs: a 16 x 16 workgroup computes a (16 RM) x (16 RN) tile of C,
 * each lane an RM x RN block in vec4 registers; per SHARED_K slice of K every lane stages a few
 * elements of A and of B in workgroup memory (one vec4 global load each where the layout allows),
 * then reads its RM rows and RN columns as vec4s: RM/4 + RN/4 shared loads per RM*RN FMAs.
 * A is held k-major ([k][m]), so a lane's 4 rows are one vec4; B likewise [k][n].
 */
export function sharedTiles(RM: number, RN: number, o: TileOperands, batchExpr: string, store: string): string {
  const L = SHARED_LANES, TK = SHARED_K, TM = L * RM, TN = L * RN;
  if (RM % 4 || RN % 4) throw new Error("shared tiles: RM and RN must be multiples of 4");
  const rows = [...Array(RM).keys()], rq = [...Array(RM / 4).keys()], cq = [...Array(RN / 4).keys()];
  // Staging: the tile's TM*TK elements of A by the L*L lanes, in vec4s along k where vecA, else
  // one element at a time; B likewise along n.
  const stageA = o.vecA
    ? `for (var e = tid; e < ${TM * TK / 4}u; e += ${L * L}u) {
      let m = e / ${TK / 4}u; let kq = (e % ${TK / 4}u) * 4u; let gm = mBase + m; let gk = k0 + kq;
      var v = vec4<f32>(0.0);
      if (gm < M && gk < K) { v = ${o.a("gm", "gk")}; }
      As[(kq) * ${TM / 4}u + m / 4u][m % 4u] = v.x; As[(kq + 1u) * ${TM / 4}u + m / 4u][m % 4u] = v.y;
      As[(kq + 2u) * ${TM / 4}u + m / 4u][m % 4u] = v.z; As[(kq + 3u) * ${TM / 4}u + m / 4u][m % 4u] = v.w;
    }`
    : `for (var e = tid; e < ${TM * TK}u; e += ${L * L}u) {
      let kk = e / ${TM}u; let m = e % ${TM}u; let gm = mBase + m; let gk = k0 + kk;
      var v = 0.0;
      if (gm < M && gk < K) { v = ${o.a("gm", "gk")}; }
      As[kk * ${TM / 4}u + m / 4u][m % 4u] = v;
    }`;
  const stageB = o.vecB
    ? `for (var e = tid; e < ${TN * TK / 4}u; e += ${L * L}u) {
      let kk = e / ${TN / 4}u; let nq = (e % ${TN / 4}u) * 4u; let gn = nBase + nq; let gk = k0 + kk;
      var v = vec4<f32>(0.0);
      if (gn < N && gk < K) { v = ${o.b("gk", "gn")}; }
      Bs[kk * ${TN / 4}u + nq / 4u] = v;
    }`
    : `for (var e = tid; e < ${TN * TK}u; e += ${L * L}u) {
      let kk = e / ${TN}u; let n = e % ${TN}u; let gn = nBase + n; let gk = k0 + kk;
      var v = 0.0;
      if (gn < N && gk < K) { v = ${o.b("gk", "gn")}; }
      Bs[kk * ${TN / 4}u + n / 4u][n % 4u] = v;
    }`;
  return `${o.head}
var<workgroup> As: array<vec4<f32>, ${TK * TM / 4}>;  // [k][m / 4]
var<workgroup> Bs: array<vec4<f32>, ${TK * TN / 4}>;  // [k][n / 4]
@compute @workgroup_size(${L}, ${L})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = ${batchExpr};
  ${o.setup}
  let mBase = wid.y * ${TM}u;
  let nBase = wid.x * ${TN}u;
  let tid = lid.y * ${L}u + lid.x;
  ${rows.map((r) => cq.map((q) => `var r${r}_${q} = vec4<f32>(0.0);`).join(" ")).join("\n  ")}
  for (var k0 = 0u; k0 < K; k0 += ${TK}u) {
    ${stageA}
    ${stageB}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      ${rq.map((q) => `let a${q} = As[kk * ${TM / 4}u + lid.y * ${RM / 4}u + ${q}u];`).join(" ")}
      ${cq.map((q) => `let b${q} = Bs[kk * ${TN / 4}u + lid.x * ${RN / 4}u + ${q}u];`).join(" ")}
      ${rows.map((r) => cq.map((q) => `r${r}_${q} = fma(vec4<f32>(a${r >> 2}[${r & 3}]), b${q}, r${r}_${q});`).join(" ")).join("\n      ")}
    }
    workgroupBarrier();
  }
  let m0 = mBase + lid.y * ${RM}u;
  let n0 = nBase + lid.x * ${RN}u;
  ${rows.map((r) => cq.map((q) => `${store}(b, m0 + ${r}u, n0 + ${q * 4}u, M, N, r${r}_${q});`).join(" ")).join("\n  ")}
}`;
}

/** The matmul's operands for the shared variants: vec4 loads where the strides allow (the driver checks, the key records it). */
function sharedMatmul(RM: number, RN: number, vecA: boolean, vecB: boolean): string {
  const head = `${PARAMS}
@group(0) @binding(1) var<storage, read> A${vecA ? "4: array<vec4<f32>>" : ": array<f32>"};
@group(0) @binding(2) var<storage, read> B${vecB ? "4: array<vec4<f32>>" : ": array<f32>"};
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
${STORE}
fn storeB(b: u32, m: u32, n0: u32, M: u32, N: u32, v: vec4<f32>) { store(b * M * N, m, n0, M, N, v); }`;
  const setup = `${DIMS} let aBase = (b % ${L.u("aWrap")}) * ${L.u("aBatch")}; let bBase = b * ${L.u("bBatch")};
  ${L.declare("aM", "aK", "bK", "bN")}`;
  return sharedTiles(RM, RN, {
    head, setup, vecA, vecB,
    a: (m, k) => vecA ? `A4[(aBase + ${m} * aM + ${k}) / 4u]` : `A[aBase + ${m} * aM + ${k} * aK]`,
    b: (k, n) => vecB ? `B4[(bBase + ${k} * bK + ${n}) / 4u]` : `B[bBase + ${k} * bK + ${n} * bN]`,
  }, "wid.z", "storeB");
}

/**
 * Split-K within subgroups, for products with few outputs and a long sum (a convolution's weight
 * gradient: K = output positions): a workgroup of WG lanes owns a 4 x 4 block of C, each lane sums
 * every WG-th k, subgroupAdd reduces a subgroup's partial blocks in registers, the first lane of
 * each subgroup writes its block into workgroup memory at its own index (the other lanes zeros, so
 * nothing assumes how lanes form subgroups), and a tree over the WG slots in a fixed order sums
 * them: the same input gives the same bits run after run, wherever the device forms its subgroups
 * the same way each time (partial blocks placed by an atomic counter were summed in the order the
 * subgroups finished). Lane 0 writes the total. Needs the adapter's \`subgroups\` feature.
 */
function subgroupSplitK(header: string): string {
  if (WG & (WG - 1)) throw new Error(`subgroup matmul: its tree needs a power-of-two workgroup (WG = ${WG})`);
  return `${header}${IO}
${STORE}
var<workgroup> part: array<vec4<f32>, ${4 * WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sl: u32) {
  ${DIMS}
  let tm = (M + 3u) / 4u;
  let tn = (N + 3u) / 4u;
  let blk = wid.x + wid.y * nwg.x;
  if (blk >= ${L.u("batch")} * tm * tn) { return; }
  let b = blk / (tm * tn);
  let m0 = ((blk / tn) % tm) * 4u;
  let n0 = (blk % tn) * 4u;
  ${L.declare("aM", "aK", "bK", "bN")}
  let aBase = (b % ${L.u("aWrap")}) * ${L.u("aBatch")};
  let bBase = b * ${L.u("bBatch")};
  let ar = vec4<u32>(min(m0, M - 1u), min(m0 + 1u, M - 1u), min(m0 + 2u, M - 1u), min(m0 + 3u, M - 1u)) * aM + vec4<u32>(aBase);
  let bc = vec4<u32>(min(n0, N - 1u), min(n0 + 1u, N - 1u), min(n0 + 2u, N - 1u), min(n0 + 3u, N - 1u)) * bN + vec4<u32>(bBase);
  var r0 = vec4<f32>(0.0); var r1 = vec4<f32>(0.0); var r2 = vec4<f32>(0.0); var r3 = vec4<f32>(0.0);
  for (var k = lid; k < K; k += ${WG}u) {
    let bv = vec4<f32>(B[bc.x + k * bK], B[bc.y + k * bK], B[bc.z + k * bK], B[bc.w + k * bK]);
    r0 = fma(vec4<f32>(A[ar.x + k * aK]), bv, r0);
    r1 = fma(vec4<f32>(A[ar.y + k * aK]), bv, r1);
    r2 = fma(vec4<f32>(A[ar.z + k * aK]), bv, r2);
    r3 = fma(vec4<f32>(A[ar.w + k * aK]), bv, r3);
  }
  r0 = subgroupAdd(r0); r1 = subgroupAdd(r1); r2 = subgroupAdd(r2); r3 = subgroupAdd(r3);
  let lead = sl == 0u;
  part[4u * lid] = select(vec4<f32>(0.0), r0, lead); part[4u * lid + 1u] = select(vec4<f32>(0.0), r1, lead);
  part[4u * lid + 2u] = select(vec4<f32>(0.0), r2, lead); part[4u * lid + 3u] = select(vec4<f32>(0.0), r3, lead);
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let o = 4u * (lid + s);
      part[4u * lid] += part[o]; part[4u * lid + 1u] += part[o + 1u]; part[4u * lid + 2u] += part[o + 2u]; part[4u * lid + 3u] += part[o + 3u];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let base = b * M * N;
    store(base, m0, n0, M, N, part[0]); store(base, m0 + 1u, n0, M, N, part[1]); store(base, m0 + 2u, n0, M, N, part[2]); store(base, m0 + 3u, n0, M, N, part[3]);
  }
}`;
}

/** Rows and columns per lane of a rows-uniform variant. */
export function rowsDims(v: MatmulVariant): [number, number] | null {
  const m = /^rows(\d+)x(\d)$/.exec(v);
  return m ? [+m[1], +m[2]] : null;
}

/**
 * The shader of a variant; the shared variants also by whether A and B are read as vec4s (the
 * driver decides); the subgroup one begins with `subgroupHeader`, the line the device's WGSL
 * compiler wants before subgroup builtins (`enable subgroups;`, or nothing for naga: device.ts).
 */
export function matmulShader(v: MatmulVariant, vecA = false, vecB = false, subgroupHeader?: string): string {
  const sd = sharedDims(v);
  if (sd) return sharedMatmul(sd[0], sd[1], vecA, vecB);
  if (v === "subgroup") {
    if (subgroupHeader === undefined) throw new Error("matmulShader: the subgroup variant needs the device's subgroup header (src/kernels/webgpu/device.ts)");
    return subgroupSplitK(subgroupHeader);
  }
  const rd = rowsDims(v);
  if (rd) return rowsUniform(rd[0], rd[1]);
  const bd = blockDims(v);
  return bd ? block(bd[0], bd[1], v.startsWith("grouped")) : v === "naive" ? naive() : tiled();
}
