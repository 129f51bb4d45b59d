// The wasm backend's elementwise, reduction and movement ops in plain TypeScript, written for
// speed where the reference backend is written for clarity: shapes coalesced first (adjacent
// dimensions that walk every operand linearly merged), then one tight loop per op over the
// innermost dimension (a loop per op, so each stays monomorphic), an odometer over the rest.
// Same formulas as scalar_ops.ts (the CPU reference), so results agree to rounding.
import type { BinaryOp, MatmulSpec, ReduceOp, StridedSpec, UnaryOp } from "../backend.ts";
import { sigmoid, softplus } from "../scalar_ops.ts";

type F = Float32Array | Float64Array;

/** Strides of `shape` (row-major) seen from `outShape` (numpy broadcasting: 0 where broadcast). */
export function bstrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const r = outShape.length, off = r - shape.length;
  const st = new Array<number>(r).fill(0);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d + off] = shape[d] === 1 ? 0 : s;
    s *= shape[d];
  }
  return st;
}

/** Merges adjacent dimensions that every operand walks linearly; drops size-1 dimensions. */
export function coalesce(shape: readonly number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const sh: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = sh.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k][last] === s[d] * shape[d])) {
      sh[last] *= shape[d];
      strides.forEach((s, k) => { st[k][last] = s[d]; });
    } else {
      sh.push(shape[d]);
      strides.forEach((s, k) => st[k].push(s[d]));
    }
  }
  if (!sh.length) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: sh, strides: st };
}

/**
 * Calls inner(offsets..., outOffset, n) for every innermost row of `shape` (coalesced), with
 * each operand's offset of the row's first element; the rows' inner steps are strides[k][last].
 */
function rows(shape: number[], strides: number[][], inner: (offs: number[], o: number, n: number) => void): void {
  const r = shape.length, n = shape[r - 1];
  const outer = shape.slice(0, r - 1);
  const total = outer.reduce((p, q) => p * q, 1);
  const idx = new Array<number>(Math.max(0, r - 1)).fill(0);
  const offs = strides.map(() => 0);
  for (let i = 0, o = 0; i < total; i++, o += n) {
    inner(offs, o, n);
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < offs.length; k++) offs[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < offs.length; k++) offs[k] -= strides[k][d] * shape[d];
      idx[d] = 0;
    }
  }
}

export function unaryInto(op: UnaryOp, x: F, out: F, n: number, p: number): void {
  switch (op) {
    case "neg": for (let i = 0; i < n; i++) out[i] = -x[i]; return;
    case "exp": for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]); return;
    case "log": for (let i = 0; i < n; i++) out[i] = Math.log(x[i]); return;
    case "sqrt": for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]); return;
    case "abs": for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]); return;
    case "relu": for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v > 0 ? v : 0; } return;
    case "step": for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? 1 : 0; return;
    case "sign": for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v > 0 ? 1 : v < 0 ? -1 : 0; } return;
    case "sigmoid": for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]); return;
    case "softplus": for (let i = 0; i < n; i++) out[i] = softplus(x[i]); return;
    case "tanh": for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]); return;
    case "square": for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v * v; } return;
    case "recip": for (let i = 0; i < n; i++) out[i] = 1 / x[i]; return;
    case "powScalar": for (let i = 0; i < n; i++) out[i] = Math.pow(x[i], p); return;
    case "mulScalar": for (let i = 0; i < n; i++) out[i] = x[i] * p; return;
    case "addScalar": for (let i = 0; i < n; i++) out[i] = x[i] + p; return;
    case "leakyRelu": for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v > 0 ? v : p * v; } return;
    case "leakyStep": for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? 1 : p; return;
    case "silu": for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v * sigmoid(v); } return;
    case "siluGrad": for (let i = 0; i < n; i++) { const v = x[i], s = sigmoid(v); out[i] = s * (1 + v * (1 - s)); } return;
  }
}

/** out[o..o+n) = a[ao + i*as] (op) b[bo + i*bs]. */
function binaryRow(op: BinaryOp, a: F, ao: number, as: number, b: F, bo: number, bs: number, out: F, o: number, n: number): void {
  switch (op) {
    case "add": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] + b[bo + i * bs]; return;
    case "sub": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] - b[bo + i * bs]; return;
    case "mul": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] * b[bo + i * bs]; return;
    case "div": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] / b[bo + i * bs]; return;
    case "maximum": for (let i = 0; i < n; i++) { const x = a[ao + i * as], y = b[bo + i * bs]; out[o + i] = x >= y ? x : y; } return;
    case "minimum": for (let i = 0; i < n; i++) { const x = a[ao + i * as], y = b[bo + i * bs]; out[o + i] = x <= y ? x : y; } return;
    case "gt": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] > b[bo + i * bs] ? 1 : 0; return;
    case "ge": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] >= b[bo + i * bs] ? 1 : 0; return;
    case "lt": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] < b[bo + i * bs] ? 1 : 0; return;
    case "le": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] <= b[bo + i * bs] ? 1 : 0; return;
    case "eq": for (let i = 0; i < n; i++) out[o + i] = a[ao + i * as] === b[bo + i * bs] ? 1 : 0; return;
    case "reluMask": for (let i = 0; i < n; i++) out[o + i] = b[bo + i * bs] > 0 ? a[ao + i * as] : 0; return;
  }
}

export function binaryInto(op: BinaryOp, a: F, aShape: readonly number[], b: F, bShape: readonly number[], outShape: readonly number[], out: F): void {
  const c = coalesce(outShape, [bstrides(aShape, outShape), bstrides(bShape, outShape)]);
  const [sa, sb] = c.strides, last = c.shape.length - 1;
  const as = sa[last], bs = sb[last];
  rows(c.shape, c.strides, (offs, o, n) => binaryRow(op, a, offs[0], as, b, offs[1], bs, out, o, n));
}

export function whereInto(cnd: F, cShape: readonly number[], a: F, aShape: readonly number[], b: F, bShape: readonly number[], outShape: readonly number[], out: F): void {
  const c = coalesce(outShape, [cShape, aShape, bShape].map((s) => bstrides(s, outShape)));
  const last = c.shape.length - 1;
  const [cs, as, bs] = c.strides.map((s) => s[last]);
  rows(c.shape, c.strides, (offs, o, n) => {
    const [co, ao, bo] = offs;
    for (let i = 0; i < n; i++) out[o + i] = cnd[co + i * cs] !== 0 ? a[ao + i * as] : b[bo + i * bs];
  });
}

/** Reduces the middle axis of x seen as [outer, R, inner] (double accumulators, like the reference). */
export function reduceInto(op: ReduceOp, x: F, outer: number, R: number, inner: number, out: F): void {
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * R;
      if (op === "sum") { let s = 0; for (let r = 0; r < R; r++) s += x[base + r]; out[o] = s; }
      else if (op === "sumsq") { let s = 0; for (let r = 0; r < R; r++) { const v = x[base + r]; s += v * v; } out[o] = s; }
      else { let m = -Infinity; for (let r = 0; r < R; r++) { const v = x[base + r]; if (v > m || Number.isNaN(v)) m = v; } out[o] = m; }
    }
    return;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(op === "max" ? -Infinity : 0);
    let base = o * R * inner;
    for (let r = 0; r < R; r++, base += inner) {
      if (op === "sum") for (let i = 0; i < inner; i++) acc[i] += x[base + i];
      else if (op === "sumsq") for (let i = 0; i < inner; i++) { const v = x[base + i]; acc[i] += v * v; }
      else for (let i = 0; i < inner; i++) { const v = x[base + i], m = acc[i]; if (v > m || Number.isNaN(v) || Number.isNaN(m)) acc[i] = Number.isNaN(m) ? m : v; }
    }
    out.set(acc, o * inner);
  }
}

/**
 * Strided copy (permute, slice, pad, flip, broadcast): per output dimension the input dimension
 * it walks, a start and a step; padValue where the coordinate falls outside the input.
 */
export function stridedInto(x: F, spec: StridedSpec, out: F): void {
  const { inShape, outShape, map, start, step, padValue } = spec;
  const r = outShape.length;
  const inSt = new Array<number>(inShape.length);
  for (let d = inShape.length - 1, s = 1; d >= 0; d--) { inSt[d] = s; s *= inShape[d]; }
  // Per output dim: element step in x, first offset, and the valid index range [lo, hi).
  const st: number[] = [], lo: number[] = [], hi: number[] = [];
  let base = 0;
  for (let d = 0; d < r; d++) {
    const m = map[d], size = inShape[m], s0 = start[d], sp = step[d];
    st.push(sp * inSt[m]);
    base += s0 * inSt[m];
    // valid i: 0 <= s0 + i*sp < size
    let a = 0, b = outShape[d];
    if (sp > 0) { a = Math.max(0, Math.ceil(-s0 / sp)); b = Math.min(b, Math.ceil((size - s0) / sp)); }
    else if (sp < 0) { a = Math.max(0, Math.ceil((s0 - size + 1) / -sp)); b = Math.min(b, Math.floor(s0 / -sp) + 1); }
    else if (s0 < 0 || s0 >= size) b = 0;
    lo.push(a);
    hi.push(Math.max(a, b));
  }
  const total = out.length;
  if (total === 0) return;
  if (r === 0) { out[0] = x[base]; return; }
  // Coalesce: drop size-1 dims; merge a dim into the previous one where both are unpadded and
  // walk the input linearly (a broadcast of [1, n] to [G, n] becomes one run per row).
  const shp: number[] = [], stp: number[] = [], los: number[] = [], his: number[] = [];
  for (let d = 0; d < r; d++) {
    if (outShape[d] === 1 && lo[d] === 0 && hi[d] === 1) continue;
    const k = shp.length - 1;
    const full = lo[d] === 0 && hi[d] === outShape[d];
    if (k >= 0 && full && los[k] === 0 && his[k] === shp[k] && stp[k] === st[d] * outShape[d]) {
      shp[k] *= outShape[d];
      his[k] = shp[k];
      stp[k] = st[d];
    } else {
      shp.push(outShape[d]); stp.push(st[d]); los.push(lo[d]); his.push(hi[d]);
    }
  }
  if (!shp.length) { out[0] = x[base]; return; }
  const R = shp.length;
  const n = shp[R - 1], sIn = stp[R - 1], l = los[R - 1], h = his[R - 1];
  // Short unpadded rows: two dimensions per inner loop.
  const two = R >= 2 && n < 16 && l === 0 && h === n && los[R - 2] === 0 && his[R - 2] === shp[R - 2];
  const rowDims = two ? R - 2 : R - 1, rowLen = two ? n * shp[R - 2] : n, s1 = two ? stp[R - 2] : 0, n1 = two ? shp[R - 2] : 1;
  const idx = new Array<number>(R).fill(0);
  let off = base; // input offset of the row's element 0 (may be outside: only used inside [l, h))
  for (let o = 0; o < total; o += rowLen) {
    let inside = true;
    for (let d = 0; d < rowDims; d++) if (idx[d] < los[d] || idx[d] >= his[d]) { inside = false; break; }
    if (!inside || l >= h) out.fill(padValue, o, o + rowLen);
    else if (two) {
      for (let j = 0, q = o, pj = off; j < n1; j++, pj += s1) for (let i = 0, p = pj; i < n; i++, p += sIn) out[q++] = x[p];
    } else {
      if (l > 0) out.fill(padValue, o, o + l);
      if (sIn === 1 && h - l >= 16) out.set(x.subarray(off + l, off + h), o + l);
      else for (let i = l, p = off + l * sIn; i < h; i++, p += sIn) out[o + i] = x[p];
      if (h < n) out.fill(padValue, o + h, o + n);
    }
    for (let d = rowDims - 1; d >= 0; d--) {
      idx[d]++;
      off += stp[d];
      if (idx[d] < shp[d]) break;
      off -= stp[d] * shp[d];
      idx[d] = 0;
    }
  }
}

/** A product with K = 1 (an outer product per batch item): out = a[m] b[n], each a float32 product rounded once (the binary multiply's values). */
export function outerInto(a: F, b: F, s: MatmulSpec, out: F): void {
  const { batchA, batchB, M, N } = s;
  for (let bi = 0, o = 0; bi < Math.max(batchA, batchB); bi++) {
    const ao = batchA === 1 ? 0 : bi * M, bo = batchB === 1 ? 0 : bi * N;
    for (let m = 0; m < M; m++) {
      const av = a[ao + m];
      for (let n = 0; n < N; n++) out[o++] = av * b[bo + n];
    }
  }
}

/** out = A B for small products (every batch item), float accumulation in the reference's order. */
export function matmulInto(a: F, b: F, s: MatmulSpec, out: F): void {
  const { batchA, batchB, M, K, N, transA, transB } = s;
  const batch = Math.max(batchA, batchB);
  // A(m, k) = a[ao + m*am + k*ak], B(k, n) = b[bo + k*bk + n*bn]
  const [am, ak] = transA ? [1, M] : [K, 1], [bk, bn] = transB ? [1, K] : [N, 1];
  out.fill(0, 0, batch * M * N);
  for (let bi = 0; bi < batch; bi++) {
    const ao = (batchA === 1 ? 0 : bi) * M * K, bo = (batchB === 1 ? 0 : bi) * K * N, oo = bi * M * N;
    for (let m = 0; m < M; m++) {
      const row = oo + m * N;
      for (let k = 0; k < K; k++) {
        const av = a[ao + m * am + k * ak];
        if (av === 0) continue;
        const bb = bo + k * bk;
        for (let n = 0; n < N; n++) out[row + n] += av * b[bb + n * bn];
      }
    }
  }
}
