// The full-FIM metric the blog proposes (via Sherman-Morrison / Woodbury): from the fit gradients
// s_1..s_N (one per fit input or group, over all P parameters), F_N = lambda I + (1/N) sum s s^T,
// and the score of a new gradient g is q = g^T F_N^{-1} g, computed exactly through N x N systems:
//
//   F_N^{-1} = (1/lambda) (I - S^T A^{-1} S),  A = lambda N I + S S^T   (S: the N x P rows s_i)
//   q = (|g|^2 - |L^{-1} S g|^2) / lambda,     A = L L^T (Cholesky)
//
// No P x P matrix is ever formed. S stays on the backend in row blocks (groups of fit inputs, every
// layer side by side) and, for the per-layer block version (F block-diagonal over parameter
// tensors, q_block = sum_l g_l^T F_l^{-1} g_l), R_l = L_l^{-1} S_l (row blocks too) for layers with
// P_l >= N, or the P_l x P_l factor L_l^{-1} of F_l itself for smaller layers.
//
// lambda (documented rule): the mean of the empirical FIM's diagonal, tr(S^T S / N) / P (per layer:
// over that layer's P_l entries), times `lambdaScale` (default 1). It is the empirical FIM's mean
// eigenvalue over all P directions: F_N then has every eigenvalue at least that, so a direction
// the N fit gradients do not span costs as much as an average direction of the FIM, not infinitely.
// It is scale-free (rescaling the NLL rescales lambda with F) and needs no held-out data.
//
// Memory: S is P x N floats; the block version's R_l adds up to another P x N (layers with P_l >= N).
import * as T from "../autograd/index.ts";
import type { GenerativeModel } from "../models/model.ts";
import { perGroupGradients, perGroupPass } from "../nn/per_group.ts";

/** Lower Cholesky factor of a symmetric positive definite n x n matrix (row-major). */
export function cholesky(a: ArrayLike<number>, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j];
      for (let p = 0; p < j; p++) s -= c[ri + p] * c[rj + p];
      if (i === j) {
        if (!(s > 0)) throw new Error(`cholesky: matrix is not positive definite (pivot ${i}: ${s})`);
        c[ri + i] = Math.sqrt(s);
      } else c[ri + j] = s / c[rj + j];
    }
  }
  return c;
}

/**
 * Inverse of a lower-triangular n x n matrix (row-major; lower triangular too), column by column:
 * forward substitution L x = e_j reads rows of L and x contiguously (2.5x the row-times-column
 * order at n = 1000, same result).
 */
export function lowerInverse(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n), x = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    for (let i = j; i < n; i++) {
      const ri = i * n;
      let s = i === j ? 1 : 0;
      for (let p = j; p < i; p++) s -= l[ri + p] * x[p];
      x[i] = s / l[ri + i];
    }
    for (let i = j; i < n; i++) inv[i * n + j] = x[i];
  }
  return inv;
}

/**
 * Per-group gradients of the summed NLL, one [G, P_l] matrix per parameter tensor, by one forward
 * and one backward with per-group parameter copies (no norms-only shortcut: the vectors are needed).
 */
export function groupGradients(model: GenerativeModel, x: T.Tensor, B: number, noise?: T.Tensor): T.Tensor[] {
  const G = x.shape[0] / B;
  if (!Number.isInteger(G)) throw new Error(`gradients: ${x.shape[0]} inputs do not split into groups of ${B}`);
  const params = model.parameters();
  return T.tidy(() => {
    const pass = perGroupPass(model, { groups: G }, [x, noise], (xg, ng) => model.nll(xg!, { noise: ng }));
    return perGroupGradients(pass, params).map((g) => T.reshape(g, [G, -1]));
  });
}

/** The reference: one backward per group. Same layout as groupGradients. */
export function groupGradientsLoop(model: GenerativeModel, x: T.Tensor, B: number, noise?: T.Tensor): T.Tensor[] {
  const G = x.shape[0] / B;
  const params = model.parameters();
  const rows: T.Tensor[][] = [];
  for (let g = 0; g < G; g++) {
    rows.push(T.tidy(() => {
      const sl = (t: T.Tensor) => T.slice(t, [g * B], [(g + 1) * B]);
      return T.grad(T.sum(model.nll(sl(x), { noise: noise && sl(noise) })), params).map((gr) => T.reshape(gr!, [1, -1]));
    }));
  }
  const out = params.map((_, l) => T.concat(rows.map((r) => r[l]), 0));
  rows.flat().forEach((t) => t.dispose());
  return out;
}

interface BlockFactor {
  /** "woodbury": R = L^{-1} S_l in row blocks [n_i, P_l]; "explicit": L^{-1} of F_l itself, [P_l, P_l]. */
  kind: "woodbury" | "explicit";
  m: T.Tensor[];
  lambda: number;
}

export interface FimScores {
  /** g^T F_N^{-1} g with the full F_N. */
  full: Float64Array;
  /** sum over layers of g_l^T F_l^{-1} g_l (block-diagonal F). */
  block: Float64Array;
  /** Per layer, g_l^T F_l^{-1} g_l: [layer][group]. */
  perLayer: Float64Array[];
}

export interface FimOptions {
  lambdaScale?: number;
  /** Also build the block version's factors (default true). */
  block?: boolean;
  /** At most this many fit inputs per row block of S (default: as many as keep a block under 16 Mi floats). */
  blockRows?: number;
}

/** Reads a tensor to the host as float64 and frees it. */
async function host(t: T.Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

/** Rows per block of S so that one block stays well inside a WebGPU buffer binding (128 MiB on lavapipe). */
const BLOCK_FLOATS = 16 * 2 ** 20;

/**
 * F_N from the fit gradients, ready to score new gradients. S is kept in row blocks (groups of fit
 * inputs, [n_b, P] each) so no buffer exceeds a binding limit however large N x P gets; products
 * with S are summed or stacked over the blocks. Call dispose() to free its matrices.
 */
export class WoodburyFim {
  readonly n: number;
  readonly sizes: number[];
  readonly lambda: number;
  /** The fit gradients S in row blocks [n_b, P] (layers side by side, in the model's order), on the backend. */
  readonly s: T.Tensor[];
  /** A = lambda N I + S S^T = L L^T; L^{-1} [N, N] on the backend. */
  readonly #linv: T.Tensor;
  readonly #blocks: BlockFactor[] | null;

  private constructor(s: T.Tensor[], sizes: number[], lambda: number, linv: T.Tensor, blocks: BlockFactor[] | null) {
    this.s = s;
    this.n = s.reduce((a, t) => a + t.shape[0], 0);
    this.sizes = sizes;
    this.lambda = lambda;
    this.#linv = linv;
    this.#blocks = blocks;
  }

  /**
   * gradients: the fit gradients, per batch of fit inputs a list of [n_b, P_l] tensors (one per
   * parameter tensor), or one such list for all N; consumed (freed here).
   */
  static async fit(gradients: T.Tensor[] | T.Tensor[][], o: FimOptions = {}): Promise<WoodburyFim> {
    const batches0 = (Array.isArray(gradients[0]) ? gradients : [gradients]) as T.Tensor[][];
    const sizes = batches0[0].map((t) => t.shape[1]);
    const P = sizes.reduce((a, b) => a + b, 0), rowsPer = Math.max(1, Math.min(o.blockRows ?? Infinity, Math.floor(BLOCK_FLOATS / P)));
    // Row blocks of at most rowsPer rows: large batches split, consecutive small ones merged (fewer,
    // larger products: a block is one matmul operand, so their count sets the dispatches per score).
    const pieces: T.Tensor[][] = [];
    for (const b of batches0) {
      const r = b[0].shape[0];
      if (r <= rowsPer) pieces.push(b);
      else {
        for (let i = 0; i < r; i += rowsPer) pieces.push(b.map((t) => T.keep(T.tidy(() => T.slice(t, [i, 0], [Math.min(r, i + rowsPer), t.shape[1]])))));
        b.forEach((t) => t.dispose());
      }
    }
    const batches: T.Tensor[][] = [];
    for (let i = 0; i < pieces.length;) {
      let j = i, rowsIn = 0;
      while (j < pieces.length && rowsIn + pieces[j][0].shape[0] <= rowsPer) rowsIn += pieces[j++][0].shape[0];
      if (j === i) j = i + 1;
      const group = pieces.slice(i, j);
      if (group.length === 1) batches.push(group[0]);
      else {
        batches.push(sizes.map((_, l) => T.keep(T.tidy(() => T.concat(group.map((g) => g[l]), 0)))));
        group.flat().forEach((t) => t.dispose());
      }
      i = j;
    }
    const rows = batches.map((b) => b[0].shape[0]), starts = rows.map((_, i) => rows.slice(0, i).reduce((a, v) => a + v, 0));
    const n = rows.reduce((a, v) => a + v, 0), backend = batches[0][0].backend, dtype = batches[0][0].dtype;
    const scale = o.lambdaScale ?? 1;
    const S = batches.map((b) => T.keep(T.tidy(() => T.concat(b, 1))));
    // Per-layer squared norms (the traces of the per-layer Grams), and the Gram K = S S^T block by block.
    const sq = await host(T.tidy(() => {
      const per = sizes.map((_, l) => batches.map((b) => T.sumSquares(b[l])).reduce((x, y) => T.add(x, y)));
      return T.concat(per.map((t) => T.reshape(t, [1])), 0);
    }));
    const gram = async (blocks: T.Tensor[]) => {
      const k = new Float64Array(n * n);
      for (let i = 0; i < blocks.length; i++) for (let j = 0; j <= i; j++) {
        const kij = await host(T.tidy(() => T.mm(blocks[i], blocks[j], false, true)));
        for (let a = 0; a < rows[i]; a++) for (let b = 0; b < rows[j]; b++) {
          const v = kij[a * rows[j] + b];
          k[(starts[i] + a) * n + starts[j] + b] = v;
          k[(starts[j] + b) * n + starts[i] + a] = v;
        }
      }
      return k;
    };
    const lambda = (scale * sq.reduce((a, b) => a + b, 0)) / (n * P);
    if (!(lambda > 0)) throw new Error("FIM: the fit gradients are all zero");
    const onDevice = (m: Float64Array, r: number, c: number) => T.keep(T.tensor(m, [r, c], { backend, dtype }));
    const linv = onDevice(lowerInverse(cholesky(addDiagonal(await gram(S), n, lambda * n), n), n), n, n);
    let blocks: BlockFactor[] | null = null;
    if (o.block !== false) {
      blocks = [];
      for (const [l, p] of sizes.entries()) {
        const lam = (scale * sq[l]) / (n * p) || lambda, parts = batches.map((b) => b[l]);
        if (p >= n) {
          // R_l = L_l^{-1} S_l, row block i = sum over j <= i of L_l^{-1}[i, j] S_l[j].
          const li = lowerInverse(cholesky(addDiagonal(await gram(parts), n, lam * n), n), n);
          const m = rows.map((ri, i) => {
            const terms = rows.slice(0, i + 1).map((rj, j) => {
              const sub = new Float64Array(ri * rj);
              for (let a = 0; a < ri; a++) for (let b = 0; b < rj; b++) sub[a * rj + b] = li[(starts[i] + a) * n + starts[j] + b];
              return sub;
            });
            return T.keep(T.tidy(() => terms.map((sub, j) => T.mm(T.tensor(sub, [ri, rows[j]], { backend, dtype }), parts[j])).reduce((x, y) => T.add(x, y))));
          });
          blocks.push({ kind: "woodbury", m, lambda: lam });
        } else {
          // A small layer: its own P_l x P_l F_l = lam I + S_l^T S_l / N, factored directly.
          const c = await host(T.tidy(() => parts.map((t) => T.mm(t, t, true, false)).reduce((x, y) => T.add(x, y))));
          for (let i = 0; i < c.length; i++) c[i] /= n;
          blocks.push({ kind: "explicit", m: [onDevice(lowerInverse(cholesky(addDiagonal(c, p, lam), p), p), p, p)], lambda: lam });
        }
      }
    }
    batches.flat().forEach((t) => t.dispose());
    return new WoodburyFim(S, sizes, lambda, linv, blocks);
  }

  get parameters(): number {
    return this.sizes.reduce((a, b) => a + b, 0);
  }

  /** Floats held on the backend: S, L^{-1} and the block factors. */
  get floats(): number {
    return this.s.reduce((a, t) => a + t.size, 0) + this.n * this.n + (this.#blocks ?? []).reduce((a, b) => a + b.m.reduce((x, t) => x + t.size, 0), 0);
  }

  /** S g for gs [G, P]: [N, G], stacked over S's row blocks. */
  #sTimes(gs: T.Tensor): T.Tensor {
    const parts = this.s.map((b) => T.mm(b, gs, false, true));
    return parts.length === 1 ? parts[0] : T.concat(parts, 0);
  }

  /** Scores G gradients given per layer ([G, P_l] each, on the fit gradients' backend). */
  async score(g: T.Tensor[]): Promise<FimScores> {
    const G = g[0].shape[0], L = this.sizes.length;
    if (g.length !== L) throw new Error(`FIM: ${g.length} gradient layers, fitted on ${L}`);
    const out = T.tidy(() => {
      const gs = T.concat(g, 1);
      const w = this.#sTimes(gs), sq = T.sumSquares(gs, 1);
      const per: T.Tensor[] = [];
      for (let l = 0; l < L; l++) {
        const b = this.#blocks?.[l];
        if (!b) continue;
        const proj = b.m.map((m) => T.sumSquares(T.mm(g[l], m, false, true), 1)).reduce((x, y) => T.add(x, y));
        per.push(b.kind === "woodbury" ? T.mul(T.sub(T.sumSquares(g[l], 1), proj), 1 / b.lambda) : proj);
      }
      const full = T.mul(T.sub(sq, T.sumSquares(T.mm(this.#linv, w), 0)), 1 / this.lambda);
      // One table [1 + L, G], one readback.
      return T.concat([full, ...per].map((t) => T.reshape(t, [1, G])), 0);
    });
    const d = await host(out);
    const full = d.slice(0, G), perLayer = this.#blocks ? this.sizes.map((_, l) => d.slice((1 + l) * G, (2 + l) * G)) : [];
    const block = new Float64Array(G);
    for (const p of perLayer) for (let j = 0; j < G; j++) block[j] += p[j];
    return { full, block, perLayer };
  }

  /**
   * FIM inner products g_a^T F_N^{-1} g_b for every pair (a from `a`, b from `b`, each [G, P_l] per
   * layer): (g_a . g_b - (L^{-1} S g_a) . (L^{-1} S g_b)) / lambda, a [Ga, Gb] row-major matrix.
   */
  async inner(a: T.Tensor[], b: T.Tensor[]): Promise<Float64Array> {
    return await host(T.tidy(() => {
      const ga = T.concat(a, 1), gb = T.concat(b, 1);
      const ya = T.mm(this.#linv, this.#sTimes(ga)), yb = T.mm(this.#linv, this.#sTimes(gb));
      return T.mul(T.sub(T.mm(ga, gb, false, true), T.mm(ya, yb, true, false)), 1 / this.lambda);
    }));
  }

  /**
   * FIM inner products of G gradients with every fit gradient: g^T F_N^{-1} s_t for t = 1..N, as a
   * [G, N] row-major matrix. Through the Woodbury form these are N A^{-1} S g (A^{-1} = L^-T L^-1),
   * no P-sized solve. With `diagonal`, F is instead diag(mean of s^2 over the fit) + lambda.
   */
  async fitInner(g: T.Tensor[], diagonal = false): Promise<Float64Array> {
    return await host(T.tidy(() => {
      const gs = T.concat(g, 1);
      if (diagonal) {
        const d = T.add(T.mul(this.s.map((b) => T.sum(T.square(b), 0)).reduce((x, y) => T.add(x, y)), 1 / this.n), this.lambda);
        const scaled = T.div(gs, T.reshape(d, [1, -1]));
        const parts = this.s.map((b) => T.mm(scaled, b, false, true));
        return parts.length === 1 ? parts[0] : T.concat(parts, 1);
      }
      const y = T.mm(this.#linv, this.#sTimes(gs)); // L^-1 S g^T, [N, G]
      return T.mul(T.mm(y, this.#linv, true, false), this.n); // (L^-T y)^T = y^T L^-1, [G, N]
    }));
  }

  dispose(): void {
    this.s.forEach((t) => t.dispose());
    this.#linv.dispose();
    this.#blocks?.forEach((b) => b.m.forEach((t) => t.dispose()));
  }
}

function addDiagonal(m: Float64Array, n: number, v: number): Float64Array {
  const out = Float64Array.from(m);
  for (let i = 0; i < n; i++) out[i * n + i] += v;
  return out;
}

/**
 * The diagonal of the empirical FIM (per parameter, mean of s^2 over the fit gradients) plus the
 * same lambda: the cheap alternative to F_N for inner products (influence with --fim diag).
 */
export function diagonalFim(layers: T.Tensor[], lambda: number): T.Tensor[] {
  return layers.map((t) => T.keep(T.tidy(() => T.add(T.mean(T.square(t), 0), lambda))));
}

/** g_a^T D^{-1} g_b for diagonal D (per layer [P_l]), every pair: a [Ga, Gb] row-major matrix. */
export async function diagonalInner(d: T.Tensor[], a: T.Tensor[], b: T.Tensor[]): Promise<Float64Array> {
  return await host(T.tidy(() => {
    let acc: T.Tensor | null = null;
    d.forEach((dl, l) => {
      const x = T.mm(T.div(a[l], T.reshape(dl, [1, -1])), b[l], false, true);
      acc = acc ? T.add(acc, x) : x;
    });
    return acc!;
  }));
}
