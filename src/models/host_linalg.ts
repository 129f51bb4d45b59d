// Small dense linear algebra on the host in float64 (n x n row-major), for the invertible 1x1
// convolution: its initial rotation, LU factors, and inverse for decoding; and for tests' log|det|.
import type { Generator } from "../autograd/random.ts";

/** A random orthogonal matrix: Gram-Schmidt on a Gaussian matrix. */
export function randomRotation(n: number, gen: Generator): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) q[i] = gen.normal();
  for (let c = 0; c < n; c++) {
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let r = 0; r < n; r++) dot += q[r * n + c] * q[r * n + p];
      for (let r = 0; r < n; r++) q[r * n + c] -= dot * q[r * n + p];
    }
    let norm = 0;
    for (let r = 0; r < n; r++) norm += q[r * n + c] ** 2;
    norm = Math.sqrt(norm);
    for (let r = 0; r < n; r++) q[r * n + c] /= norm;
  }
  return q;
}

/** A = P L U with partial pivoting; L unit lower, U upper. perm[i] = row of A that is row i of LU. */
export function luDecompose(a: Float64Array, n: number): { perm: number[]; l: Float64Array; u: Float64Array; sign: number } {
  const m = a.slice();
  const perm = [...Array(n).keys()];
  let sign = 1;
  for (let k = 0; k < n; k++) {
    let piv = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(m[i * n + k]) > Math.abs(m[piv * n + k])) piv = i;
    if (piv !== k) {
      for (let j = 0; j < n; j++) [m[k * n + j], m[piv * n + j]] = [m[piv * n + j], m[k * n + j]];
      [perm[k], perm[piv]] = [perm[piv], perm[k]];
      sign = -sign;
    }
    const d = m[k * n + k];
    if (d === 0) continue;
    for (let i = k + 1; i < n; i++) {
      const f = (m[i * n + k] /= d);
      for (let j = k + 1; j < n; j++) m[i * n + j] -= f * m[k * n + j];
    }
  }
  const l = new Float64Array(n * n), u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j < i) l[i * n + j] = m[i * n + j];
      else u[i * n + j] = m[i * n + j];
    }
    l[i * n + i] = 1;
  }
  return { perm, l, u, sign };
}

/** The permutation matrix P with A = P L U (P[perm[i], i] = 1). */
export function permutationMatrix(perm: number[]): Float64Array {
  const n = perm.length, p = new Float64Array(n * n);
  perm.forEach((r, i) => (p[r * n + i] = 1));
  return p;
}

export function logAbsDet(a: ArrayLike<number>, n: number): number {
  const { u } = luDecompose(Float64Array.from(a), n);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(Math.abs(u[i * n + i]));
  return s;
}

/** Inverse by Gauss-Jordan with partial pivoting; throws on a singular matrix. */
export function invert(a: ArrayLike<number>, n: number): Float64Array {
  const m = Float64Array.from(a), inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let k = 0; k < n; k++) {
    let piv = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(m[i * n + k]) > Math.abs(m[piv * n + k])) piv = i;
    if (Math.abs(m[piv * n + k]) < 1e-300) throw new Error(`invert: singular ${n}x${n} matrix`);
    for (let j = 0; j < n; j++) {
      [m[k * n + j], m[piv * n + j]] = [m[piv * n + j], m[k * n + j]];
      [inv[k * n + j], inv[piv * n + j]] = [inv[piv * n + j], inv[k * n + j]];
    }
    const d = m[k * n + k];
    for (let j = 0; j < n; j++) {
      m[k * n + j] /= d;
      inv[k * n + j] /= d;
    }
    for (let i = 0; i < n; i++) {
      if (i === k) continue;
      const f = m[i * n + k];
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        m[i * n + j] -= f * m[k * n + j];
        inv[i * n + j] -= f * inv[k * n + j];
      }
    }
  }
  return inv;
}
