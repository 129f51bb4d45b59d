// The full-FIM score through the N x N Woodbury system equals g^T F^{-1} g with F = lambda I +
// S^T S / N built and inverted explicitly (P x P, float64, a small Glow); the block version equals
// the per-layer explicit inverses; FIM inner products are symmetric and match; the batched
// per-group gradients equal the per-group loop.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Glow } from "../src/models/glow.ts";
import { cholesky, diagonalFim, diagonalInner, groupGradients, groupGradientsLoop, lowerInverse, WoodburyFim } from "../src/ood/woodbury.ts";
import { invert } from "../src/models/host_linalg.ts";

const S = suite("woodbury");
const f64 = { backend: T.cpu, dtype: "float64" as const };

function tinyGlow() {
  const m = new Glow({ levels: 1, steps: 1, hidden: 3, image: [1, 4, 4] }, { ...f64, gen: new T.Generator(1) });
  const x = T.rand(new T.Generator(2), [8, 1, 4, 4], { ...f64, low: -0.5, high: 0.5 });
  m.initialize(x);
  m.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(new T.Generator(10 + i), [...p.shape], { ...f64, std: 0.1 }))));
  m.eval();
  return m;
}
const inputs = (seed: number, n: number) => T.rand(new T.Generator(seed), [n, 1, 4, 4], { ...f64, low: -0.5, high: 0.5 });
const rows = (layers: T.Tensor[]) => {
  const G = layers[0].shape[0], P = layers.reduce((s, t) => s + t.shape[1], 0);
  const out = new Float64Array(G * P);
  let off = 0;
  for (const t of layers) {
    const d = t.dataSync(), p = t.shape[1];
    for (let g = 0; g < G; g++) for (let j = 0; j < p; j++) out[g * P + off + j] = d[g * p + j];
    off += p;
  }
  return { G, P, data: out };
};

/** g_a^T F^{-1} g_b with F = lambda I + S^T S / N (P x P) built and inverted explicitly. */
function explicit(s: { G: number; P: number; data: Float64Array }, lambda: number) {
  const { G: N, P, data } = s;
  const F = new Float64Array(P * P);
  for (let i = 0; i < P; i++) F[i * P + i] = lambda;
  for (let n = 0; n < N; n++) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) F[i * P + j] += (data[n * P + i] * data[n * P + j]) / N;
  const Fi = invert(F, P);
  return (a: Float64Array, b: Float64Array) => {
    let q = 0;
    for (let i = 0; i < P; i++) { let r = 0; for (let j = 0; j < P; j++) r += Fi[i * P + j] * b[j]; q += a[i] * r; }
    return q;
  };
}
/** fit() consumes its gradients: pass copies where the test reads them again. */
const copies = (ls: T.Tensor[]) => ls.map((t) => T.mul(t, 1));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

S("batched per-group gradients equal the per-group loop (B = 1 and 2)", () => {
  const m = tinyGlow(), x = inputs(3, 6);
  for (const B of [1, 2]) {
    const a = groupGradients(m, x, B), b = groupGradientsLoop(m, x, B);
    assert.is(a.length, m.namedParameters().length);
    a.forEach((t, l) => {
      assert.equal(t.shape, b[l].shape);
      const d1 = t.dataSync(), d2 = b[l].dataSync();
      for (let i = 0; i < d1.length; i++) assert.ok(Math.abs(d1[i] - d2[i]) <= 1e-10 * Math.max(1, Math.abs(d2[i])), `layer ${l} entry ${i}: ${d1[i]} vs ${d2[i]}`);
    });
  }
});

S("Woodbury score = explicit P x P inverse, full and per-layer blocks, with the documented lambda (S whole and in row blocks)", async () => {
  for (const blockRows of [undefined, 3]) await woodburyVsExplicit(blockRows);
  // Fit gradients given in batches of 2 rows, merged up to 3 rows per block: blocks of 2, 2, 3.
  await woodburyVsExplicit(3, 2);
});

async function woodburyVsExplicit(blockRows?: number, batchRows?: number) {
  const m = tinyGlow();
  const N = 7;
  const fitG = groupGradients(m, inputs(4, N), 1), testG = groupGradients(m, inputs(5, 4), 1);
  const sizes = fitG.map((t) => t.shape[1]);
  assert.ok(sizes.some((p) => p < N) && sizes.some((p) => p >= N), `want layers on both sides of N: ${sizes}`);
  // As batches of batchRows rows (as setGradients gives them), or all N rows at once.
  const asBatches = (ls: T.Tensor[]) => batchRows ? Array.from({ length: Math.ceil(N / batchRows) }, (_, i) => ls.map((t) => T.slice(t, [i * batchRows, 0], [Math.min(N, (i + 1) * batchRows), t.shape[1]]))) : ls;
  const fim = await WoodburyFim.fit(asBatches(copies(fitG)), { blockRows });
  assert.equal(fim.s.map((b) => b.shape[0]), blockRows ? (batchRows ? [2, 2, 3] : [3, 3, 1]) : [7]);
  const S = rows(fitG), Tt = rows(testG);
  // lambda = mean of the empirical FIM's diagonal.
  let tr = 0;
  for (const v of S.data) tr += v * v;
  assert.ok(rel(fim.lambda, tr / N / S.P) < 1e-12);
  const sc = await fim.score(testG);
  const q = explicit(S, fim.lambda);
  for (let g = 0; g < 4; g++) {
    const v = Tt.data.subarray(g * S.P, (g + 1) * S.P);
    assert.ok(rel(sc.full[g], q(v, v)) < 1e-9, `full ${g}: ${sc.full[g]} vs ${q(v, v)}`);
  }
  // Blocks: each layer on its own, with its own lambda.
  let off = 0;
  const block = new Float64Array(4);
  fitG.forEach((t, l) => {
    const s = rows([t]), tl = rows([testG[l]]);
    let trl = 0;
    for (const v of s.data) trl += v * v;
    const ql = explicit(s, trl / N / s.P);
    for (let g = 0; g < 4; g++) {
      const v = tl.data.subarray(g * s.P, (g + 1) * s.P), want = ql(v, v);
      assert.ok(rel(sc.perLayer[l][g], want) < 1e-8, `layer ${l} (P_l ${s.P}) group ${g}: ${sc.perLayer[l][g]} vs ${want}`);
      block[g] += want;
    }
    off += s.P;
  });
  for (let g = 0; g < 4; g++) assert.ok(rel(sc.block[g], block[g]) < 1e-9);
  // A larger lambda shrinks every score (F grows).
  const big = await WoodburyFim.fit(asBatches(copies(fitG)), { lambdaScale: 10, blockRows });
  const sb = await big.score(testG);
  for (let g = 0; g < 4; g++) assert.ok(sb.full[g] < sc.full[g]);
  assert.is(fim.floats, S.P * N + N * N + sizes.reduce((s, p) => s + (p >= N ? N * p : p * p), 0));
  fim.dispose();
  big.dispose();
}

S("FIM inner products: symmetric, equal the explicit inverse, and inner(a, a) is the score", async () => {
  const m = tinyGlow();
  const fitG = groupGradients(m, inputs(6, 9), 1), a = groupGradients(m, inputs(7, 3), 1), b = groupGradients(m, inputs(8, 5), 1);
  const fim = await WoodburyFim.fit(copies(fitG), { blockRows: 4 });
  const ab = await fim.inner(a, b), ba = await fim.inner(b, a), aa = await fim.inner(a, a);
  const q = explicit(rows(fitG), fim.lambda), A = rows(a), Bm = rows(b);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) {
    assert.ok(rel(ab[i * 5 + j], ba[j * 3 + i]) < 1e-10, "symmetric");
    const want = q(A.data.subarray(i * A.P, (i + 1) * A.P), Bm.data.subarray(j * A.P, (j + 1) * A.P));
    assert.ok(rel(ab[i * 5 + j], want) < 1e-8, `${ab[i * 5 + j]} vs ${want}`);
  }
  const sc = await fim.score(a);
  for (let i = 0; i < 3; i++) assert.ok(rel(aa[i * 3 + i], sc.full[i]) < 1e-10);
  // Against the fit set itself: the fast N A^{-1} S g form equals inner() with the fit rows, both ways.
  const fitCopy = groupGradients(m, inputs(6, 9), 1);
  const fa = await fim.fitInner(a), af = await fim.inner(fitCopy, a);
  for (let i = 0; i < 3; i++) for (let t = 0; t < 9; t++) assert.ok(rel(fa[i * 9 + t], af[t * 3 + i]) < 1e-9, `fitInner ${i},${t}: ${fa[i * 9 + t]} vs ${af[t * 3 + i]}`);
  // The diagonal alternative is symmetric too, and equals sum a b / (mean s^2 + lambda).
  const d = diagonalFim(fitG, fim.lambda);
  const dab = await diagonalInner(d, a, b), dba = await diagonalInner(d, b, a);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) assert.ok(rel(dab[i * 5 + j], dba[j * 3 + i]) < 1e-12);
  const fd = await fim.fitInner(a, true), df = await diagonalInner(d, a, fitCopy);
  for (let i = 0; i < 27; i++) assert.ok(rel(fd[i], df[i]) < 1e-12, `diagonal fitInner ${i}`);
  fim.dispose();
});

S("cholesky and lowerInverse against a direct product", () => {
  const n = 5, a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = 1 / (1 + i + j) + (i === j ? 1 : 0);
  const l = cholesky(a, n), li = lowerInverse(l, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0, e = 0;
    for (let p = 0; p < n; p++) { s += l[i * n + p] * l[j * n + p]; e += li[i * n + p] * l[p * n + j]; }
    assert.ok(Math.abs(s - a[i * n + j]) < 1e-12 && Math.abs(e - (i === j ? 1 : 0)) < 1e-12);
  }
  assert.throws(() => cholesky(new Float64Array([1, 2, 2, 1]), 2), /not positive definite/);
});

S.run();
