// The full-FIM metric the blog proposes (via Sherman-Morrison / Woodbury): from the fit gradients
// s_1..s_N (one per fit input or group, over all P parameters), F_N = lambda I + (1/N) sum s s^T,
// and the score of a new gradient g is q = g^T F_N^{-1} g, computed exactly through N x N systems:
//
//   F_N^{-1} = (1/lambda) (I - S^T A^{-1} S),  A = lambda N I + S S^T   (S: the N x P rows s_i)
//   q = (|g|^2 - |L^{-1} S g|^2) / lambda,     A = L L^T (Cholesky)
//
// No P x P matrix is ever formed. S stays on the backend in chunks of parameter tensors
// (S_c, [N, P_c]), so a batch's S g is a split-K product: one partial sum w_c = g_c S_c^T
// per chunk, added up. For the per-layer block version (F block-diagonal over parameter tensors,
// q_block = sum_l g_l^T F_l^{-1} g_l), each layer with P_l >= N is a chunk of its own and its
// score (|g_l|^2 - |w_l L_l^{-T}|^2) / lambda_l reuses that partial sum: only the N x N factor
// L_l^{-T} is added, not a second P_l x N matrix. Smaller layers use the P_l x P_l factor of F_l
// itself. Triangular factors are stored as column blocks without their zero part (UpperFactor).
//
// lambda (documented rule): the mean of the empirical FIM's diagonal, tr(S^T S / N) / P (per layer:
// over that layer's P_l entries), times `lambdaScale` (default 1). It is the empirical FIM's mean
// eigenvalue over all P directions: F_N then has every eigenvalue at least that, so a direction
// the N fit gradients do not span costs as much as an average direction of the FIM, not infinitely.
// It is scale-free (rescaling the NLL rescales lambda with F) and needs no held-out data.
//
// Memory: S is P x N floats; L^{-T} about 0.63 N^2; the block version adds about 0.63 N^2 per layer
// with P_l >= N and P_l^2 per smaller layer (Glow, N = 1000: 30.3 M + 0.6 M + 12.5 M + 1.4 M floats).
import * as T from "../autograd/index.ts";
import { addDiagonal, cholesky, lowerInverse } from "./linalg.ts";

/**
 * An upper-triangular N x N matrix U (here L^{-T}) kept as column blocks: block j holds columns
 * [c_j, e_j) and only rows [0, e_j) (the rows below are zero), so w U costs sum_j e_j (e_j - c_j)
 * multiply-adds per row of w, 62.5% of the dense N^2 with 4 blocks. Each block is stored
 * transposed ([e_j - c_j, e_j]: rows c_j..e_j of L^{-1}), the operand order lavapipe's product
 * kernel runs fastest (bench/README.md).
 */
class UpperFactor {
  constructor(readonly blocks: T.Tensor[], readonly ends: number[], readonly n: number) {}

  /** From the lower-triangular L^{-1} (row-major, float64): U = (L^{-1})^T in `parts` column blocks. */
  static fromLowerInverse(li: Float64Array, n: number, parts: number, on: (m: Float64Array, r: number, c: number) => T.Tensor): UpperFactor {
    const k = Math.max(1, Math.min(parts, n)), ends = Array.from({ length: k }, (_, j) => Math.round(((j + 1) * n) / k));
    const blocks = ends.map((e, j) => {
      const c0 = j ? ends[j - 1] : 0, w = e - c0, m = new Float64Array(w * e);
      for (let c = c0; c < e; c++) for (let i = 0; i < e; i++) m[(c - c0) * e + i] = li[c * n + i]; // U^T[c][i] = L^{-1}[c][i]
      return on(m, w, e);
    });
    return new UpperFactor(blocks, ends, n);
  }

  #lead(w: T.Tensor, e: number): T.Tensor {
    return e === this.n ? w : T.slice(w, [0, 0], [w.shape[0], e]);
  }
  /** |w U|^2 per row of w [G, N]: [G]. */
  quad(w: T.Tensor): T.Tensor {
    return this.blocks.map((b, j) => T.sumSquares(T.mm(this.#lead(w, this.ends[j]), b, false, true), 1)).reduce((x, y) => T.add(x, y));
  }
  /** w U: [G, N]. */
  times(w: T.Tensor): T.Tensor {
    const parts = this.blocks.map((b, j) => T.mm(this.#lead(w, this.ends[j]), b, false, true));
    return parts.length === 1 ? parts[0] : T.concat(parts, 1);
  }
  /** y U^T [G, N] on the host (row-major float64): block j adds y[:, c_j:e_j] block_j^T into columns [0, e_j). */
  async timesTransposed(y: T.Tensor): Promise<Float64Array> {
    const G = y.shape[0], out = new Float64Array(G * this.n);
    for (const [j, b] of this.blocks.entries()) {
      const c0 = j ? this.ends[j - 1] : 0, e = this.ends[j];
      const part = await host(T.tidy(() => T.mm(T.slice(y, [0, c0], [G, e]), b)));
      for (let g = 0; g < G; g++) for (let i = 0; i < e; i++) out[g * this.n + i] += part[g * e + i];
    }
    return out;
  }
  get floats(): number {
    return this.blocks.reduce((a, t) => a + t.size, 0);
  }
  dispose(): void {
    this.blocks.forEach((t) => t.dispose());
  }
}

/** Columns of S (some parameter tensors side by side), in slices along the parameter axis. */
interface Chunk {
  layers: number[];
  /** S_c's columns [starts[i], starts[i] + slices[i].shape[1]): [N, p_i] each, on the backend. */
  slices: T.Tensor[];
  starts: number[];
}

type BlockFactor =
  /** Layers with P_l >= N: q_l = (|g_l|^2 - |w_l U_l|^2) / lambda_l, w_l = g_l S_l^T from the layer's own chunk, U_l = L_l^{-T}. */
  | { kind: "woodbury"; chunk: number; u: UpperFactor; lambda: number }
  /** Smaller layers: q_l = |g_l M_l|^2 with M_l = (L^{-1} of F_l itself)^T, [P_l, P_l]. */
  | { kind: "explicit"; m: T.Tensor; lambda: number };

export interface FimScores {
  /** g^T F_N^{-1} g with the full F_N. */
  full: Float64Array;
  /** sum over layers of g_l^T F_l^{-1} g_l (block-diagonal F); zeros when not computed. */
  block: Float64Array;
  /** Per layer, g_l^T F_l^{-1} g_l: [layer][group] (empty when not computed). */
  perLayer: Float64Array[];
}

export interface FimOptions {
  lambdaScale?: number;
  /** Also build the block version's factors (default true). */
  block?: boolean;
  /** At most this many parameters per slice of S (default: as many as keep a slice under 16 Mi floats). */
  sliceRows?: number;
  /** Column blocks of each triangular factor (default 4; 1 = one dense product). */
  triangleBlocks?: number;
}

/** Reads a tensor to the host as float64 and frees it. */
async function host(t: T.Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

/** Floats per slice of S, so that one stays well inside a WebGPU buffer binding (128 MiB on lavapipe). */
const BLOCK_FLOATS = 16 * 2 ** 20;

/**
 * F_N from the fit gradients, ready to score new gradients. S is held in chunks of parameter
 * tensors (S_c, [N, P_c]: every layer with P_l >= N its own chunk, the smaller layers together),
 * each cut into slices along the parameter axis so no buffer exceeds a binding limit.
 * A batch's S g is then a split-K product, one partial sum w_c = g_c S_c^T per chunk, and the block
 * version reuses those partial sums: a layer's own w_l needs only its N x N triangular factor, not
 * a second pass over its P_l x N gradients. Call dispose() to free its matrices.
 */
export class WoodburyFim {
  readonly n: number;
  readonly sizes: number[];
  readonly lambda: number;
  /** S in chunks of parameter tensors, on the backend. */
  readonly chunks: Chunk[];
  /** A = lambda N I + S S^T = L L^T; U = L^{-T} on the backend. */
  readonly #u: UpperFactor;
  readonly #blocks: BlockFactor[] | null;

  private constructor(chunks: Chunk[], n: number, sizes: number[], lambda: number, u: UpperFactor, blocks: BlockFactor[] | null) {
    this.chunks = chunks;
    this.n = n;
    this.sizes = sizes;
    this.lambda = lambda;
    this.#u = u;
    this.#blocks = blocks;
  }

  /**
   * gradients: the fit gradients, per batch of fit inputs a list of [n_b, P_l] tensors (one per
   * parameter tensor), or one such list for all N; consumed (freed here).
   */
  static async fit(gradients: T.Tensor[] | T.Tensor[][], o: FimOptions = {}): Promise<WoodburyFim> {
    const batches = (Array.isArray(gradients[0]) ? gradients : [gradients]) as T.Tensor[][];
    const sizes = batches[0].map((t) => t.shape[1]);
    const n = batches.reduce((a, b) => a + b[0].shape[0], 0), P = sizes.reduce((a, b) => a + b, 0);
    const backend = batches[0][0].backend, dtype = batches[0][0].dtype, scale = o.lambdaScale ?? 1, parts = o.triangleBlocks ?? 4;
    const onDevice = (m: Float64Array, r: number, c: number) => T.keep(T.tensor(m, [r, c], { backend, dtype }));
    // Per-layer squared norms (the traces of the per-layer Grams): lambda and the per-layer lambda_l.
    const sq = await host(T.tidy(() => T.concat(sizes.map((_, l) => T.reshape(batches.map((b) => T.sumSquares(b[l])).reduce((x, y) => T.add(x, y)), [1])), 0)));
    const lambda = (scale * sq.reduce((a, b) => a + b, 0)) / (n * P);
    if (!(lambda > 0)) throw new Error("FIM: the fit gradients are all zero");
    const lam = sizes.map((p, l) => (scale * sq[l]) / (n * p) || lambda);
    const block = o.block !== false, own = sizes.map((p) => block && p >= n);
    // Chunks: with the block version, each layer with P_l >= N alone (its w_l is needed on its own)
    // and the rest together; without it, consecutive layers merged up to a slice's size.
    const rowsPer = Math.max(1, Math.min(o.sliceRows ?? Infinity, Math.floor(BLOCK_FLOATS / n)));
    const groups: number[][] = [];
    if (block) {
      sizes.forEach((_, l) => own[l] && groups.push([l]));
      const rest = sizes.map((_, l) => l).filter((l) => !own[l]);
      if (rest.length) groups.push(rest);
    } else {
      let cur: number[] = [], width = 0;
      sizes.forEach((p, l) => {
        if (cur.length && width + p > rowsPer) { groups.push(cur); cur = []; width = 0; }
        cur.push(l);
        width += p;
      });
      groups.push(cur);
    }
    const blocks: (BlockFactor | null)[] = sizes.map(() => null);
    // The smaller layers' own P_l x P_l F_l = lambda_l I + S_l^T S_l / N, factored directly.
    if (block) {
      for (const [l, p] of sizes.entries()) {
        if (own[l]) continue;
        const c = await host(T.tidy(() => batches.map((b) => T.mm(b[l], b[l], true, false)).reduce((x, y) => T.add(x, y))));
        for (let i = 0; i < c.length; i++) c[i] /= n;
        const li = lowerInverse(cholesky(addDiagonal(c, p, lam[l]), p), p), mt = new Float64Array(p * p);
        for (let i = 0; i < p; i++) for (let j = 0; j <= i; j++) mt[j * p + i] = li[i * p + j]; // M = (L_l^{-1})^T
        blocks[l] = { kind: "explicit", m: onDevice(mt, p, p), lambda: lam[l] };
      }
    }
    // S_c per chunk (the batches' tensors for its layers freed as it is made), its Gram K_c = S_c S_c^T, K = sum_c K_c.
    const k = new Float64Array(n * n), chunks: Chunk[] = [];
    for (const [ci, layers] of groups.entries()) {
      const width = layers.reduce((a, l) => a + sizes[l], 0);
      const sc = T.keep(T.tidy(() => T.concat(batches.map((b) => layers.length === 1 ? b[layers[0]] : T.concat(layers.map((l) => b[l]), 1)), 0)));
      batches.forEach((b) => layers.forEach((l) => b[l] !== sc && b[l].dispose())); // (one batch, one layer: sc is that tensor)
      const starts: number[] = [];
      for (let r = 0; r < width; r += rowsPer) starts.push(r);
      const slices = starts.length === 1 ? [sc] : starts.map((r) => T.keep(T.tidy(() => T.slice(sc, [0, r], [n, Math.min(width, r + rowsPer)]))));
      if (starts.length > 1) sc.dispose();
      chunks.push({ layers, slices, starts });
      const kc = await host(T.tidy(() => slices.map((s) => T.mm(s, s, false, true)).reduce((x, y) => T.add(x, y))));
      for (let i = 0; i < kc.length; i++) k[i] += kc[i];
      if (block && layers.length === 1 && own[layers[0]]) {
        const l = layers[0];
        const li = lowerInverse(cholesky(addDiagonal(kc, n, lam[l] * n), n), n);
        blocks[l] = { kind: "woodbury", chunk: ci, u: UpperFactor.fromLowerInverse(li, n, parts, onDevice), lambda: lam[l] };
      }
    }
    const u = UpperFactor.fromLowerInverse(lowerInverse(cholesky(addDiagonal(k, n, lambda * n), n), n), n, parts, onDevice);
    return new WoodburyFim(chunks, n, sizes, lambda, u, block ? blocks as BlockFactor[] : null);
  }

  get parameters(): number {
    return this.sizes.reduce((a, b) => a + b, 0);
  }

  /** Floats held on the backend: S (P x N), the N x N triangular factor and the block factors. */
  get floats(): number {
    const b = (this.#blocks ?? []).reduce((a, f) => a + (f.kind === "woodbury" ? f.u.floats : f.m.size), 0);
    return this.chunks.reduce((a, c) => a + c.slices.reduce((x, t) => x + t.size, 0), 0) + this.#u.floats + b;
  }

  /** w_c = g_c S_c^T for one chunk ([G, N]): a sum over its slices. */
  #chunkTimes(c: Chunk, g: T.Tensor[]): T.Tensor {
    const gc = c.layers.length === 1 ? g[c.layers[0]] : T.concat(c.layers.map((l) => g[l]), 1), G = gc.shape[0];
    if (c.slices.length === 1) return T.mm(gc, c.slices[0], false, true);
    return c.slices.map((s, i) => T.mm(T.slice(gc, [0, c.starts[i]], [G, c.starts[i] + s.shape[1]]), s, false, true)).reduce((x, y) => T.add(x, y));
  }
  /** Per chunk, g S_c^T; their sum is g S^T ([G, N]). */
  #sTimes(g: T.Tensor[]): { parts: T.Tensor[]; w: T.Tensor } {
    const parts = this.chunks.map((c) => this.#chunkTimes(c, g));
    return { parts, w: parts.length === 1 ? parts[0] : parts.reduce((x, y) => T.add(x, y)) };
  }
  #check(g: T.Tensor[]): void {
    if (g.length !== this.sizes.length) throw new Error(`FIM: ${g.length} gradient layers, fitted on ${this.sizes.length}`);
  }

  /**
   * Scores G gradients given per layer ([G, P_l] each, on the fit gradients' backend): the full
   * score and, unless `block: false` (or the fit had none), the per-layer block scores.
   */
  async score(g: T.Tensor[], o: { block?: boolean } = {}): Promise<FimScores> {
    this.#check(g);
    const G = g[0].shape[0], blocks = o.block === false ? null : this.#blocks;
    const out = T.tidy(() => {
      const { parts, w } = this.#sTimes(g);
      const sqs = g.map((t) => T.sumSquares(t, 1));
      const full = T.mul(T.sub(sqs.reduce((x, y) => T.add(x, y)), this.#u.quad(w)), 1 / this.lambda);
      const per = (blocks ?? []).map((b, l) => b.kind === "woodbury" ? T.mul(T.sub(sqs[l], b.u.quad(parts[b.chunk])), 1 / b.lambda) : T.sumSquares(T.mm(g[l], b.m), 1));
      // One table [1 + L, G], one readback.
      return T.concat([full, ...per].map((t) => T.reshape(t, [1, G])), 0);
    });
    const d = await host(out);
    const full = d.slice(0, G), perLayer = blocks ? this.sizes.map((_, l) => d.slice((1 + l) * G, (2 + l) * G)) : [];
    const block = new Float64Array(G);
    for (const p of perLayer) for (let j = 0; j < G; j++) block[j] += p[j];
    return { full, block, perLayer };
  }

  /**
   * FIM inner products g_a^T F_N^{-1} g_b for every pair (a from `a`, b from `b`, each [G, P_l] per
   * layer): (g_a . g_b - (g_a S^T U) . (g_b S^T U)) / lambda, a [Ga, Gb] row-major matrix.
   */
  async inner(a: T.Tensor[], b: T.Tensor[]): Promise<Float64Array> {
    this.#check(a);
    this.#check(b);
    return await host(T.tidy(() => {
      const ya = this.#u.times(this.#sTimes(a).w), yb = this.#u.times(this.#sTimes(b).w);
      const dot = a.map((t, l) => T.mm(t, b[l], false, true)).reduce((x, y) => T.add(x, y));
      return T.mul(T.sub(dot, T.mm(ya, yb, false, true)), 1 / this.lambda);
    }));
  }

  /**
   * FIM inner products of G gradients with every fit gradient: g^T F_N^{-1} s_t for t = 1..N, as a
   * [G, N] row-major matrix. Through the Woodbury form these are N (g S^T) A^{-1} (A^{-1} = U U^T),
   * no P-sized solve. With `diagonal`, F is instead diag(mean of s^2 over the fit) + lambda.
   */
  async fitInner(g: T.Tensor[], diagonal = false): Promise<Float64Array> {
    this.#check(g);
    if (diagonal) {
      return await host(T.tidy(() => this.chunks.flatMap((c) => {
        const gc = c.layers.length === 1 ? g[c.layers[0]] : T.concat(c.layers.map((l) => g[l]), 1), G = gc.shape[0];
        return c.slices.map((s, i) => {
          const d = T.add(T.mul(T.sum(T.square(s), 0), 1 / this.n), this.lambda);
          const gs = c.slices.length === 1 ? gc : T.slice(gc, [0, c.starts[i]], [G, c.starts[i] + s.shape[1]]);
          return T.mm(T.div(gs, T.reshape(d, [1, -1])), s, false, true);
        });
      }).reduce((x, y) => T.add(x, y))));
    }
    const y = T.tidy(() => this.#u.times(this.#sTimes(g).w)); // g S^T L^{-T}, [G, N]
    const out = await this.#u.timesTransposed(y); // ... L^{-1}
    y.dispose();
    for (let i = 0; i < out.length; i++) out[i] *= this.n;
    return out;
  }

  dispose(): void {
    this.chunks.forEach((c) => c.slices.forEach((t) => t.dispose()));
    this.#u.dispose();
    this.#blocks?.forEach((b) => (b.kind === "woodbury" ? b.u.dispose() : b.m.dispose()));
  }
}
