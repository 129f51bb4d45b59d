// The full-FIM score through the N x N Woodbury system equals g^T F^{-1} g with F = lambda I +
// S^T S / N built and inverted explicitly (P x P, float64, a small Glow); the block version equals
// the per-layer explicit inverses; FIM inner products are symmetric and match; the batched
// per-group gradients equal the per-group loop.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Glow } from "../src/models/glow.ts";
import { WoodburyFim } from "../src/ood/woodbury.ts";
import { cholesky, lowerInverse } from "../src/ood/linalg.ts";
import { groupGradients, groupGradientsLoop } from "../src/ood/features.ts";
import { invert } from "../src/models/host_linalg.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { maxRelErr, webgpu } from "./helpers.ts";

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
    const a = groupGradients(m, m.objective(), x, B), b = groupGradientsLoop(m, m.objective(), x, B);
    assert.is(a.length, m.namedParameters().length);
    a.forEach((t, l) => {
      assert.equal(t.shape, b[l].shape);
      const d1 = t.dataSync(), d2 = b[l].dataSync();
      for (let i = 0; i < d1.length; i++) assert.ok(Math.abs(d1[i] - d2[i]) <= 1e-10 * Math.max(1, Math.abs(d2[i])), `layer ${l} entry ${i}: ${d1[i]} vs ${d2[i]}`);
    });
  }
});

S("Woodbury score = explicit P x P inverse, full and per-layer blocks, with the documented lambda (S whole and in slices, triangular factors dense and in column blocks)", async () => {
  for (const sliceRows of [undefined, 3]) await woodburyVsExplicit(sliceRows);
  // Fit gradients given in batches of 2 rows; slices of 5 parameters; one dense triangular block.
  await woodburyVsExplicit(5, 2, 1);
  await woodburyVsExplicit(undefined, 3, 7);
});

/** Floats of an N x N triangular factor kept as k column blocks without their zero rows. */
const triFloats = (n: number, k: number) => {
  let f = 0, c0 = 0;
  for (let j = 0; j < k; j++) { const e = Math.round(((j + 1) * n) / k); f += e * (e - c0); c0 = e; }
  return f;
};

async function woodburyVsExplicit(sliceRows?: number, batchRows?: number, triangleBlocks?: number) {
  const m = tinyGlow();
  const N = 7;
  const fitG = groupGradients(m, m.objective(), inputs(4, N), 1), testG = groupGradients(m, m.objective(), inputs(5, 4), 1);
  const sizes = fitG.map((t) => t.shape[1]);
  assert.ok(sizes.some((p) => p < N) && sizes.some((p) => p >= N), `want layers on both sides of N: ${sizes}`);
  // As batches of batchRows rows (as setGradients gives them), or all N rows at once.
  const asBatches = (ls: T.Tensor[]) => batchRows ? Array.from({ length: Math.ceil(N / batchRows) }, (_, i) => ls.map((t) => T.slice(t, [i * batchRows, 0], [Math.min(N, (i + 1) * batchRows), t.shape[1]]))) : ls;
  const fim = await WoodburyFim.fit(asBatches(copies(fitG)), { sliceRows, triangleBlocks });
  // Layout: every layer with P_l >= N a chunk of its own, the smaller ones together; each chunk S_c
  // [N, P_c] cut into slices of at most sliceRows parameters.
  const own = sizes.map((p, l) => p >= N ? l : -1).filter((l) => l >= 0);
  assert.equal(fim.chunks.map((c) => c.layers), [...own.map((l) => [l]), sizes.map((_, l) => l).filter((l) => !own.includes(l))]);
  for (const c of fim.chunks) {
    const width = c.layers.reduce((a, l) => a + sizes[l], 0);
    assert.equal(c.slices.map((t) => t.shape[1]), Array.from({ length: Math.ceil(width / (sliceRows ?? width)) }, (_, i) => Math.min(sliceRows ?? width, width - i * (sliceRows ?? width))));
    c.slices.forEach((t, i) => { assert.is(t.shape[0], N); assert.is(c.starts[i], i * (sliceRows ?? width)); });
  }
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
  const big = await WoodburyFim.fit(asBatches(copies(fitG)), { lambdaScale: 10, sliceRows, triangleBlocks });
  const sb = await big.score(testG);
  for (let g = 0; g < 4; g++) assert.ok(sb.full[g] < sc.full[g]);
  const tri = triFloats(N, Math.min(N, triangleBlocks ?? 4));
  assert.is(fim.floats, S.P * N + tri + sizes.reduce((s, p) => s + (p >= N ? tri : p * p), 0));
  // The full score alone (block: false) is the same full score.
  const fo = await fim.score(testG, { block: false });
  assert.equal(Array.from(fo.full), Array.from(sc.full));
  assert.equal(fo.perLayer, []);
  fim.dispose();
  big.dispose();
}

S("FIM inner products: symmetric, equal the explicit inverse, and inner(a, a) is the score", async () => {
  const m = tinyGlow();
  const fitG = groupGradients(m, m.objective(), inputs(6, 9), 1), a = groupGradients(m, m.objective(), inputs(7, 3), 1), b = groupGradients(m, m.objective(), inputs(8, 5), 1);
  const fim = await WoodburyFim.fit(copies(fitG), { sliceRows: 4 });
  const ab = await fim.inner(a, b), ba = await fim.inner(b, a), aa = await fim.inner(a, a);
  // Without the block version the layers are merged into chunks of up to sliceRows parameters: the same products.
  const merged = await WoodburyFim.fit(copies(fitG), { block: false, sliceRows: 40 });
  assert.ok(merged.chunks.length < fitG.length && merged.chunks.some((c) => c.layers.length > 1), `${merged.chunks.length} chunks`);
  const mab = await merged.inner(a, b);
  for (let i = 0; i < 15; i++) assert.ok(rel(mab[i], ab[i]) < 1e-10, `merged chunks: ${mab[i]} vs ${ab[i]}`);
  merged.dispose();
  const q = explicit(rows(fitG), fim.lambda), A = rows(a), Bm = rows(b);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) {
    assert.ok(rel(ab[i * 5 + j], ba[j * 3 + i]) < 1e-10, "symmetric");
    const want = q(A.data.subarray(i * A.P, (i + 1) * A.P), Bm.data.subarray(j * A.P, (j + 1) * A.P));
    assert.ok(rel(ab[i * 5 + j], want) < 1e-8, `${ab[i * 5 + j]} vs ${want}`);
  }
  const sc = await fim.score(a);
  for (let i = 0; i < 3; i++) assert.ok(rel(aa[i * 3 + i], sc.full[i]) < 1e-10);
  // Against the fit set itself: the fast N A^{-1} S g form equals inner() with the fit rows, both ways.
  const fitCopy = groupGradients(m, m.objective(), inputs(6, 9), 1);
  const fa = await fim.fitInner(a), af = await fim.inner(fitCopy, a);
  for (let i = 0; i < 3; i++) for (let t = 0; t < 9; t++) assert.ok(rel(fa[i * 9 + t], af[t * 3 + i]) < 1e-9, `fitInner ${i},${t}: ${fa[i * 9 + t]} vs ${af[t * 3 + i]}`);
  // The diagonal alternative equals sum_p a_p s_p / (mean over the fit of s_p^2 + lambda), computed here on the host.
  const Sfit = rows(fitCopy), Ah = rows(a), P = Sfit.P;
  const dg = Float64Array.from({ length: P }, (_, p) => fim.lambda + Array.from({ length: 9 }, (_, t) => Sfit.data[t * P + p] ** 2).reduce((x, y) => x + y, 0) / 9);
  const fd = await fim.fitInner(a, true);
  for (let i = 0; i < 3; i++) for (let t = 0; t < 9; t++) {
    let want = 0;
    for (let p = 0; p < P; p++) want += (Ah.data[i * P + p] * Sfit.data[t * P + p]) / dg[p];
    assert.ok(rel(fd[i * 9 + t], want) < 1e-10, `diagonal fitInner ${i},${t}: ${fd[i * 9 + t]} vs ${want}`);
  }
  fim.dispose();
});

S("float32 on the wasm and WebGPU backends: the same scores, inner products and fit inner products as the CPU in float64 (slices and triangular blocks)", async () => {
  const sizes = [50, 3, 61, 10, 1], N = 40, G = 5;
  const draw = (seed: number, rows: number, backend: Backend, dtype: "float32" | "float64") =>
    sizes.map((p, l) => T.tensor(T.randn(new T.Generator(seed + l), [rows, p], f64).dataSync(), [rows, p], { backend, dtype }));
  const run = async (backend: Backend, dtype: "float32" | "float64") => {
    const fit = [draw(100, 16, backend, dtype), draw(200, N - 16, backend, dtype)]; // two batches
    const fim = await WoodburyFim.fit(fit, { sliceRows: 24, triangleBlocks: 3 });
    const a = draw(300, G, backend, dtype), b = draw(400, 3, backend, dtype);
    const sc = await fim.score(a);
    const out = { full: Array.from(sc.full), per: sc.perLayer.flatMap((x) => Array.from(x)), inner: Array.from(await fim.inner(a, b)), fitInner: Array.from(await fim.fitInner(a)), diag: Array.from(await fim.fitInner(a, true)) };
    fim.dispose();
    return out;
  };
  const want = await run(T.cpu, "float64");
  const wasm = await createWasmBackend();
  wasm.poison = true;
  const backends: [string, Backend | null][] = [["wasm", wasm], ["webgpu", await webgpu()]];
  for (const [name, be] of backends) {
    if (!be) continue;
    const got = await run(be, "float32");
    for (const k of Object.keys(want) as (keyof typeof want)[]) {
      assert.is(got[k].length, want[k].length);
      const err = maxRelErr(got[k].map((v, i) => v / Math.max(1, Math.abs(want[k][i]))), want[k].map((v) => v / Math.max(1, Math.abs(v))));
      assert.ok(err < 1e-4, `${name} ${k}: relative error ${err}`);
    }
  }
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
