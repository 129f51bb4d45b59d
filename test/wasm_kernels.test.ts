// The wasm SIMD backend against the CPU reference: the shared kernel-parity cases
// (test/kernel_parity.ts, poisoned outputs), shapes that cross the kernel's blocking (K past KC,
// rows past an L2 block, the threaded path), one thread against several, memory that stays flat
// over a loop, and whole-model losses and gradients (Glow, VAE) in float32.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import type { ConvParams } from "../src/kernels/backend.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import { kernelFns } from "../src/kernels/wasm/module.ts";
import { moduleBytes } from "../src/kernels/wasm/emit.ts";
import { GEMM_DEFAULT } from "../src/kernels/wasm/gemm.ts";
import { KI, type Task, WasmRuntime } from "../src/kernels/wasm/runtime.ts";
import { buildModule, KERNELS, MAX_PAGES } from "../src/kernels/wasm/module.ts";
import { JobList, Workers } from "../src/kernels/wasm/workers.ts";
import { conv2d, conv2dBias, conv2dInputGrad, conv2dInputGradTimes, conv2dWeightGrad } from "../src/kernels/wasm/conv.ts";
import { winogradFits } from "../src/kernels/wasm/conv_winograd.ts";
import { stridedBox } from "../src/kernels/wasm/movement.ts";
import { Glow } from "../src/models/glow.ts";
import { Diffusion, diffusionConfig } from "../src/models/diffusion.ts";
import { VAE } from "../src/models/vae.ts";
import { drawsOf, fusedPerGroupPassMatchesComposed, hideOps, maxRelErr, perturbed } from "./helpers.ts";
import { compare, kernelParity } from "./kernel_parity.ts";

const wb = await createWasmBackend();
const one = await createWasmBackend({ threads: 1 });
const S = suite(`wasm kernels vs cpu (float32, poisoned outputs; ${wb.description})`);

S("poisoning catches an element a kernel did not write", () => {
  const was = wb.poison;
  wb.poison = true;
  const out = wb.alloc(10);
  out.fill(1, 0, 7);
  wb.poison = was;
  assert.ok(Number.isNaN(out[9]) && out[0] === 1);
  wb.release(out);
});

// The product kernels as engines without relaxed SIMD run them (a multiply, then an add: any
// engine where f32x4.relaxed_madd does not validate), which no engine here would pick.
const plain = await createWasmBackend({ fma: false });
S("without relaxed SIMD: the kernels hold no relaxed_madd, and the backend is built so", () => {
  // f32x4.relaxed_madd is 0xfd 0x85 0x02 (the SIMD prefix, then 0x105 as LEB128)
  const madds = (fma: boolean) => {
    const b = moduleBytes(kernelFns({ ...GEMM_DEFAULT, fma }), { initial: 1, maximum: 1, shared: false });
    let n = 0;
    for (let i = 0; i + 2 < b.length; i++) if (b[i] === 0xfd && b[i + 1] === 0x85 && b[i + 2] === 0x02) n++;
    return n;
  };
  assert.is(madds(false), 0);
  assert.ok(madds(true) > 0, "the relaxed form holds relaxed_madd");
  assert.is(plain.shape.fma, false);
  assert.ok(!/relaxed/.test(plain.description), plain.description);
  assert.ok(wb.shape.fma, "this engine has relaxed SIMD: the default backend uses it");
});
// Every test of this suite runs on poisoned outputs (tests set nothing back: a test's reset would
// leave the tests after it unpoisoned).
S.before(() => { wb.poison = plain.poison = true; });
S.after(() => { wb.poison = plain.poison = false; });
kernelParity({ backend: wb, test: (name, fn) => S(name, fn) });
kernelParity({ backend: plain, test: (name, fn) => S(`${name} (no relaxed SIMD)`, fn) });
S("without relaxed SIMD: a Winograd convolution and its gradients", async () => {
  await compare(plain, "winograd, mul then add", (x, w) => T.conv2d(x, w, { padding: 1 }), [[2, 9, 7, 6], [10, 9, 3, 3]], { tol: 1e-4 });
});

S("products with one step of k (outer products: a linear layer's per-group weight gradients) against the CPU, small (a loop) and large (a broadcast multiply), batched on either side or both, with each transpose; both ways the same bits (a zero's sign, NaN for 0 x Inf), with poisoned outputs", async () => {
  for (const [sa, sb, tA, tB] of [[[5, 1], [1, 7], false, false], [[1, 5], [1, 7], true, false], [[5, 1], [7, 1], false, true], [[3, 70, 1], [3, 1, 90], false, false],
    [[64, 1, 64], [64, 1, 32], true, false], [[1, 64], [64, 1, 33], true, false], [[64, 1, 65], [1, 31], true, false]] as [number[], number[], boolean, boolean][]) {
    await compare(wb, `outer ${JSON.stringify(sa)}${tA ? "T" : ""} x ${JSON.stringify(sb)}${tB ? "T" : ""}`, (a, b) => T.mm(a, b, tA, tB), [sa, sb], { tol: 1e-6 });
  }
  // the loop (at most 4096 values) and the broadcast multiply (more): item by item the same bits
  const M = 40, N = 30, B = 8, a = Float32Array.from({ length: B * M }, (_, i) => [0, -0, Infinity, -1e-30][i % 9] ?? Math.sin(i) * 1e3);
  const b = Float32Array.from({ length: B * N }, (_, i) => [-0, Infinity, 3e-30, NaN][i % 7] ?? Math.cos(i) * 1e-3);
  const run = (batch: number, at: number) => {
    const ad = wb.upload(a.subarray(at * M, (at + batch) * M), "float32"), bd = wb.upload(b.subarray(at * N, (at + batch) * N), "float32");
    const o = wb.matmul(ad, bd, { batchA: batch, batchB: batch, M, K: 1, N, transA: false, transB: false }, "float32") as Float32Array;
    const v = Float32Array.from(o);
    [ad, bd, o].forEach((d) => wb.release(d as Float32Array));
    return v;
  };
  const all = run(B, 0);
  assert.ok(B * M * N > 4096 && M * N <= 4096, "the batch takes the broadcast multiply, an item alone the loop");
  for (let i = 0; i < B; i++) {
    const one = run(1, i), want = Float32Array.from({ length: M * N }, (_, k) => Math.fround(a[i * M + Math.floor(k / N)] * b[i * N + k % N]));
    assert.is(firstDiff(one, all.subarray(i * M * N, (i + 1) * M * N)), -1, `item ${i}: alone against in the batch`);
    assert.is(firstDiff(one, want), -1, `item ${i}: each value the float32 product`);
  }
  assert.ok(all.some((v) => Object.is(v, -0)) && all.some((v) => Number.isNaN(v)) && all.some((v) => v === Infinity || v === -Infinity), "zeros' signs, NaN and Inf tested");
});

S("large shapes: K past the reduction block, rows past an L2 block, the threaded path", async () => {
  await compare(wb, "mm big", (a, b) => T.mm(a, b), [[131, 600], [600, 70]], { tol: 1e-4 });
  await compare(wb, "mm big T", (a, b) => T.mm(a, b, true, true), [[517, 101], [99, 517]], { tol: 1e-4 });
  await compare(wb, "bmm", (a, b) => T.mm(a, b), [[5, 37, 300], [5, 300, 41]], { tol: 1e-4 });
  await compare(wb, "conv big", (x, w) => T.conv2d(x, w, { padding: 1 }), [[3, 40, 17, 19], [26, 40, 3, 3]], { tol: 2e-4 });
  await compare(wb, "conv big stride", (x, w) => T.conv2d(x, w, { padding: 1, stride: 2 }), [[2, 33, 15, 16], [9, 33, 3, 3]], { tol: 2e-4 });
  // unpadded stride 1: the input read in place, past its last row into the storage's slack
  await compare(wb, "conv in place", (x, w) => T.conv2d(x, w), [[2, 5, 9, 11], [4, 5, 3, 2]], { tol: 1e-4 });
  await compare(wb, "conv in place 1x1 groups", (x, w) => T.conv2d(x, w, { groups: 2 }), [[3, 6, 7, 5], [10, 3, 1, 1]], { tol: 1e-4 });
  await compare(wb, "conv many groups", (x, w) => T.conv2d(x, w, { padding: 1, groups: 16 }), [[2, 32, 9, 9], [48, 2, 3, 3]], { tol: 1e-4 });
  // GroupNorm's kernels on rows split among the threads (odd row length: the scalar tail), and its gradient
  await compare(wb, "groupNorm threaded", (x, w, b) => T.groupNorm(x, 8, w, b), [[5, 16, 29, 31], [16], [16]], { tol: 1e-4 });
  await compare(wb, "groupNormGrad threaded", (g, y, r) => T.groupNormGrad(g, y, T.addScalar(T.abs(r), 0.5)), [[93, 1001], [93, 1001], [93, 1]], { tol: 1e-4 });
});

S("Winograd F(2x2, 3x3) (the stride-1 3x3 convolutions with 8 channels in and out or more, forward and input gradient) against the CPU on size-1, odd, non-tile, several-images-a-band and banded shapes, on one thread and two, with poisoned outputs; each image's result the same to the bit alone and at any position in a batch, and on one thread and two", async () => {
  const cases: [number[], number][] = [ // x shape, Cout
    [[1, 16, 1, 1], 16], // size 1: one tile, 3 of its 4 outputs discarded
    [[2, 16, 5, 7], 17], // odd sizes: a half-empty last tile row and column; 17 rows (a padded row panel)
    [[3, 17, 9, 8], 16], // 17 channels: K past a multiple of 4
    [[9, 16, 7, 7], 20], // 7x7: nine images in one band (up to 16 of 16 tiles each)
    [[2, 16, 30, 13], 16], // two images of 15 tile rows of 7 (8 with the padding) in one band
    [[1, 20, 29, 35], 18], // 18 tiles a row (20 with the padding), 15 tile rows in bands of 13: a short last band
    [[1, 16, 40, 64], 16], // 20 tile rows of 32 in bands of 8: 8, 8 and 4
    [[8, 8, 28, 28], 8], // an image an item, 8 items: whole jobs on two threads
    [[3, 8, 9, 10], 8], // 8 channels in and out
  ];
  const P = (s: number[], Cout: number): ConvParams => ({ N: s[0], Cin: s[1], H: s[2], W: s[3], Cout, KH: 3, KW: 3, stride: 1, pad: 1, groups: 1, OH: s[2], OW: s[3] });
  for (const [sx, Cout] of cases) {
    const p = P(sx, Cout);
    assert.ok(winogradFits(p), `${JSON.stringify(sx)} -> ${Cout} takes Winograd`);
    for (const be of [wb, one]) await compare(be, `winograd ${JSON.stringify(sx)} -> ${Cout}`, (x, w) => T.conv2d(x, w, { padding: 1 }), [sx, [Cout, sx[1], 3, 3]], { tol: 1e-4 });
  }
  assert.not.ok(winogradFits(P([2, 7, 8, 8], 16)) || winogradFits(P([2, 16, 8, 8], 7)) || winogradFits({ ...P([2, 16, 8, 8], 16), stride: 2, OH: 4, OW: 4 }) ||
    winogradFits({ ...P([2, 16, 8, 8], 16), groups: 2 }) || winogradFits({ ...P([2, 16, 8, 8], 16), pad: 0, OH: 6, OW: 6 }), "fewer than 8 channels, a stride, groups, no padding: the direct kernels");
  // bit for bit: each image alone against the batch, and one thread against two
  one.poison = true;
  try {
    for (const [sx, Cout] of [[[9, 16, 7, 7], 20], [[3, 16, 30, 13], 16], [[8, 8, 28, 28], 8], [[2, 16, 40, 64], 16]] as [number[], number][]) {
      const p = P(sx, Cout), [N, C, H, W] = sx, g = new T.Generator(N * 31 + W);
      const x = T.randn(g, sx, { backend: T.cpu }).dataSync(), w = T.randn(g, [Cout, C, 3, 3], { backend: T.cpu }).dataSync(), gy = T.randn(g, [N, Cout, H, W], { backend: T.cpu }).dataSync();
      for (const grad of [false, true]) {
        const [src, K, rows] = grad ? [gy, Cout, C] : [x, C, Cout];
        const run = async (be: typeof wb, at: number, n: number) => {
          const pn = { ...p, N: n }, s = be.upload(src.subarray(at * K * H * W, (at + n) * K * H * W), "float32"), wt = be.upload(w, "float32");
          const o = grad ? be.conv2dInputGrad(s, wt, pn, "float32") : be.conv2d(s, wt, pn, "float32");
          const v = (await be.read(o)).slice();
          [s, wt, o].forEach((t) => be.release(t));
          return v;
        };
        const all = await run(wb, 0, N), all1 = await run(one, 0, N);
        assert.ok(all.every(Number.isFinite), `${JSON.stringify(sx)} ${grad ? "input gradient" : "forward"}: poison left`);
        assert.is(firstDiff(all1, all), -1, `${JSON.stringify(sx)} ${grad ? "input gradient" : "forward"}: one thread against two`);
        for (const i of [0, N >> 1, N - 1]) {
          const alone = await run(wb, i, 1);
          assert.is(firstDiff(alone, all.subarray(i * rows * H * W, (i + 1) * rows * H * W)), -1, `${JSON.stringify(sx)} ${grad ? "input gradient" : "forward"}: image ${i} alone against in the batch`);
        }
      }
    }
  } finally {
    one.poison = false;
  }
});

S("a convolution's weight gradient is the same to the bit on one thread and on two (its images summed in jobs chosen by the shapes alone, the jobs' sums in order), with as many jobs as threads or fewer, and past 8 jobs", () => {
  const P = (N: number, Cin: number, H: number, Cout: number, groups: number, k: number, stride = 1): ConvParams => {
    const pad = (k - 1) >> 1, OH = Math.floor((H + 2 * pad - k) / stride) + 1;
    return { N, Cin, H, W: H + 1, Cout, KH: k, KW: k, stride, pad, groups, OH, OW: Math.floor((H + 1 + 2 * pad - k) / stride) + 1 };
  };
  // 3 jobs (fewer than 2 threads x 2: phases; one thread: jobs), 8 jobs, 8 jobs of 9-10 images (75), 7 jobs (a wide
  // layer: 64 MB of partial sums allow 7), grouped, 1x1 in place, strided, 1 image, dot products in channel blocks (2 inputs to 9)
  for (const p of [P(20, 5, 9, 4, 1, 3), P(64, 3, 7, 7, 1, 3), P(75, 2, 5, 3, 1, 3), P(64, 512, 1, 512, 1, 3), P(5, 6, 8, 9, 3, 3), P(17, 8, 6, 16, 1, 1), P(12, 4, 11, 6, 2, 3, 2), P(1, 7, 5, 3, 1, 3), P(20, 2, 14, 9, 1, 3)]) {
    const xs = p.N * p.Cin * p.H * p.W, ys = p.N * p.Cout * p.OH * p.OW;
    const x = Float32Array.from({ length: xs }, (_, i) => Math.sin(i * 0.37)), gy = Float32Array.from({ length: ys }, (_, i) => Math.cos(i * 0.21));
    const [a, b] = [one, wb].map((be) => {
      const xd = be.upload(x, "float32"), gd = be.upload(gy, "float32"), dw = be.conv2dWeightGrad(xd, gd, p, "float32");
      const v = Array.from(dw as Float32Array);
      for (const d of [xd, gd, dw]) be.release(d);
      return v;
    });
    assert.equal(b, a, `[${p.N},${p.Cin},${p.H},${p.W}]->${p.Cout} g${p.groups} k${p.KH} s${p.stride}`);
    assert.ok(a.some((v) => v !== 0), "a zero gradient");
  }
});

S("a weight gradient keeps an input's Inf out of the sums it is not in, as the reference does: the dot kernel masks a row's last lanes in both operands; a product kernel's result with a non-finite value is computed again by dot products, per group in a per-group pass (the other groups' bits unchanged)", () => {
  const P = (Cin: number, H: number, W: number, Cout: number, k: number, pad = 0, stride = 1): ConvParams =>
    ({ N: 2, Cin, H, W, Cout, KH: k, KW: k, stride, pad, groups: 1, OH: Math.floor((H + 2 * pad - k) / stride) + 1, OW: Math.floor((W + 2 * pad - k) / stride) + 1 });
  /** The wasm backend's weight gradient, as an array. */
  const wgrad = (x: Float32Array, gy: Float32Array, p: ConvParams) => {
    const xd = wb.upload(x, "float32"), gd = wb.upload(gy, "float32"), dw = wb.conv2dWeightGrad(xd, gd, p, "float32");
    const v = Array.from(dw as Float32Array);
    for (const d of [xd, gd, dw]) wb.release(d);
    return v;
  };
  // the dot kernel: 1x1 in place (rows of 3: the masked vector reads the next row and channel), and
  // an unpadded 3x3 (the masked vector reads the row's last columns, which tap kx = 0 never uses);
  // 4 output channels (the output gradient read as it is) and 3 (a copy with a zero channel). The
  // product kernel (8 channels, 27 or more taps): padded 3x3 with an Inf at a row's first and last
  // column (the discarded positions read both), unpadded 5x5, strided 3x3
  const cases: [ConvParams, number][] = [[P(2, 2, 3, 4, 1), 6], [P(2, 2, 3, 3, 1), 6], [P(2, 6, 9, 4, 3), 8], [P(2, 6, 9, 3, 3), 62],
    [P(8, 6, 9, 8, 3, 1), 8], [P(8, 6, 9, 8, 3, 1), 18], [P(8, 6, 9, 8, 5), 8], [P(3, 7, 9, 8, 3, 0, 2), 8]];
  for (const [p, inf] of cases) {
    const x = Float32Array.from({ length: p.N * p.Cin * p.H * p.W }, (_, i) => (i === inf ? Infinity : 1 + (i % 5) / 8));
    const gy = Float32Array.from({ length: p.N * p.Cout * p.OH * p.OW }, (_, i) => 1 + (i % 3) / 4);
    const want = Array.from(T.cpu.conv2dWeightGrad(x, gy, p, "float32") as Float32Array), got = wgrad(x, gy, p);
    assert.ok(want.some((v) => Number.isFinite(v)) && want.some((v) => !Number.isFinite(v)), "the reference has both finite and infinite entries");
    for (let k = 0; k < want.length; k++) {
      if (Number.isFinite(want[k]) !== Number.isFinite(got[k]) || (Number.isFinite(want[k]) && Math.abs(got[k] - want[k]) > 1e-5 * Math.abs(want[k]))) {
        assert.unreachable(`[${p.N},${p.Cin},${p.H},${p.W}]->${p.Cout} k${p.KH}: dW[${k}] = ${got[k]}, the reference ${want[k]}`);
      }
    }
  }
  // a per-group pass's layout (one image, 4 groups of 3 channels to 8: the product kernel): the Inf in
  // group 2 gives the reference's pattern there, and the other groups' bits are those without it
  const pg: ConvParams = { N: 1, Cin: 12, H: 6, W: 9, Cout: 32, KH: 3, KW: 3, stride: 1, pad: 1, groups: 4, OH: 6, OW: 9 };
  const at = 2 * 3 * 54 + 9; // group 2, its first channel, row 1, column 0
  // values whose sums round (multiples of 1/32 would sum exactly in any order, hiding a changed order)
  const gy = Float32Array.from({ length: 32 * 54 }, (_, i) => Math.cos(i * 0.21));
  const x = Float32Array.from({ length: 12 * 54 }, (_, i) => Math.sin(i * 0.37)), xi = x.slice();
  xi[at] = Infinity;
  const clean = wgrad(x, gy, pg), dirty = wgrad(xi, gy, pg), want = Array.from(T.cpu.conv2dWeightGrad(xi, gy, pg, "float32") as Float32Array);
  const blk = 8 * 27;
  for (let k = 0; k < want.length; k++) {
    const g = Math.floor(k / blk);
    if (g !== 2 && !Object.is(dirty[k], clean[k])) assert.unreachable(`group ${g}: dW[${k}] ${dirty[k]} with the Inf in group 2, ${clean[k]} without`);
    if (Number.isFinite(want[k]) !== Number.isFinite(dirty[k])) assert.unreachable(`dW[${k}] = ${dirty[k]}, the reference ${want[k]}`);
  }
  assert.ok(want.slice(2 * blk, 3 * blk).some((v) => !Number.isFinite(v)) && want.slice(2 * blk, 3 * blk).some((v) => Number.isFinite(v)), "group 2 has finite and infinite entries");
});

S("narrow products take their own kernels (2x16: forward with 1-2 output channels, input gradient with 1-2 input channels, the Glow couplings' halves; dot products along the positions: weight gradients with 1-4 output channels per group, or of a filter wider than 1x1 with at most 18 taps a group over 128 positions or more, 4 channels at a time) on in-place, copied, strided, grouped, chunked, odd-length and long-reduction shapes, and equal the reference", async () => {
  const rt = await WasmRuntime.create({ threads: 1 });
  assert.equal([1, 2, 3, 4, 8].map((m) => `${rt.tableRows(m).MR}x${rt.tableRows(m).NR}`), ["2x16", "2x16", "4x8", "4x8", "4x8"]);
  assert.equal(rt.tableRows(6).MR, 6);
  // the kernels a weight gradient runs, by its output channels per group
  const kernelsOf = (og: number, groups = 1, cin = 5, H = 6, W = 7, k = 3, stride = 1) => {
    const seen = new Set<number>();
    const pool = rt.pool as unknown as { run: (jobs: (Task | Task[])[], par?: boolean) => void; runList: (L: JobList, par?: boolean) => void };
    const run = pool.run.bind(pool), runList = pool.runList.bind(pool);
    pool.run = (jobs, par) => {
      for (const j of jobs) for (const t of (Array.isArray(j[0]) ? j as Task[] : [j as Task])) seen.add(t[0]);
      run(jobs, par);
    };
    pool.runList = (L, par) => {
      for (let i = 0; i < L.tasks; i++) seen.add(L.kernelOf(i));
      runList(L, par);
    };
    const pad = k >> 1, OH = Math.floor((H + 2 * pad - k) / stride) + 1, OW = Math.floor((W + 2 * pad - k) / stride) + 1;
    const p: ConvParams = { N: 3, Cin: cin * groups, H, W, Cout: og * groups, KH: k, KW: k, stride, pad, groups, OH, OW };
    try {
      conv2dWeightGrad(rt, new Float32Array(3 * cin * groups * H * W).fill(1), new Float32Array(3 * og * groups * OH * OW).fill(1), p);
    } finally {
      delete (pool as { run?: unknown }).run;
      delete (pool as { runList?: unknown }).runList;
    }
    return seen;
  };
  const dot = KI.wgrad_dot, notDot = (s: Set<number>) => !s.has(dot);
  for (const og of [1, 3, 4]) for (const groups of [1, 2]) assert.ok(kernelsOf(og, groups).has(dot), `${og} channels, ${groups} groups: the dot kernel`);
  // the value cases below that claim the dot kernel: strided and grouped (rows of 5), a row of 3, 18 taps over rows of 15
  assert.ok(kernelsOf(4, 2, 3, 11, 9, 3, 2).has(dot) && kernelsOf(4, 1, 3, 5, 3).has(dot) && kernelsOf(8, 1, 2, 9, 15).has(dot), "strided, a row of 3, rows of 15: the dot kernel");
  // 1x1 unpadded: the input read in place, so a fill is the output gradient's copy's (zero channels up to a block of 4)
  assert.ok(!kernelsOf(4, 1, 1, 10, 12, 1).has(KI.fill32) && kernelsOf(3, 1, 1, 10, 12, 1).has(KI.fill32), "1x1: the output gradient copied for 3 channels, read as it is for 4");
  for (const og of [5, 8]) assert.ok(notDot(kernelsOf(og)) && kernelsOf(og).has(KI.gemm_tp), `${og} channels: the 6x8 product`);
  // few taps over many positions: 1-2 input channels of a 3x3 filter, 10 rows of 13 = 130 positions (not 9 rows: 117)
  for (const [og, cin] of [[5, 2], [32, 1]]) {
    assert.ok(kernelsOf(og, 1, cin, 10, 12).has(dot) && kernelsOf(og, 2, cin, 10, 12).has(dot), `${og} channels from ${cin}: the dot kernel`);
    assert.ok(notDot(kernelsOf(og, 1, cin, 9, 12)), `${og} channels from ${cin}, 117 positions: the product`);
  }
  assert.ok(notDot(kernelsOf(8, 1, 3, 10, 12)), "8 channels from 3 (27 taps): the product");
  assert.ok(notDot(kernelsOf(8, 1, 16, 12, 12, 1)), "1x1, 8 channels from 16 (16 taps, 144 positions): the product");
  rt.pool.close();
  const cases: [number[], number[], T.ConvOptions][] = [
    [[5, 2, 14, 14], [64, 2, 3, 3], { padding: 1 }], // the Glow's coupling conv1: input gradient of 2 rows, 210 columns (not a multiple of 16)
    [[3, 8, 9, 11], [2, 8, 3, 3], { padding: 1 }], // forward of 2 rows
    [[2, 1, 13, 7], [1, 1, 3, 3], { padding: 1 }], // one row both ways
    [[2, 3, 9, 11], [2, 3, 3, 3], {}], // unpadded 3x3 with 16-wide panels (copied: read in place they would pass the slack)
    [[3, 2, 5, 7], [5, 2, 1, 1], {}], // 1x1 unpadded: the input gradient's 2 rows read in place
    [[2, 2, 9, 8], [6, 2, 3, 3], { stride: 2, padding: 1 }], // strided: the input gradient by stride phases, 2 rows
    [[2, 8, 7, 7], [8, 2, 3, 3], { padding: 1, groups: 4 }], // grouped, 2 rows per group both ways
    [[37, 2, 14, 14], [16, 2, 3, 3], { padding: 1 }], // many images, threaded
    [[9, 2, 28, 28], [64, 2, 3, 3], { padding: 1 }], // the input gradient's blocks (64 x 31 x 29 floats): 9 images as whole jobs, one chunk
    [[5, 2, 28, 28], [64, 2, 3, 3], { padding: 1 }], // 5 images (too few for whole jobs: phases): at most 4 a chunk, so chunks of 3 and 2
    [[21, 2, 28, 28], [224, 2, 3, 3], { padding: 1 }], // whole jobs over 16 MB of blocks (the input gradient's: 224 x 31 x 29 floats an image): chunks
    [[3, 5, 6, 7], [3, 5, 3, 3], { padding: 1 }], // weight gradient of 3 columns, 45 taps (not a multiple of 8)
    [[2, 64, 20, 20], [4, 64, 3, 3], { padding: 1 }], // the coupling's conv3: 4 columns, 576 taps, a reduction over 2 x 420 positions (past the block of 256)
    [[1, 8, 5, 5], [8, 2, 1, 1], { groups: 4 }], // 1x1 grouped: 2 columns and 2 taps per group
    [[2, 3, 5, 5], [3, 3, 3, 3], { padding: 1 }], // weight gradient by dot products over 30 positions: 28 in vectors, a tail of 2
    [[3, 2, 9, 8], [3, 2, 3, 3], { stride: 2, padding: 1 }], // strided, 3 channels: 25 positions on the phase grid (a tail of 1)
    [[2, 4, 7, 7], [1, 4, 3, 3], { padding: 1 }], // one output channel (3 of the kernel's 4 rows are zeros)
    [[1, 32, 7, 9], [16, 4, 3, 3], { padding: 1, groups: 8 }], // per group 2 channels of 4 inputs, 36 taps
    [[17, 6, 4, 6], [4, 6, 1, 1], {}], // 1x1 in place over 17 images: jobs of several images, 24 positions
    [[3, 2, 14, 14], [9, 2, 3, 3], { padding: 1 }], // weight gradient by dot products, 9 channels in 3 blocks of 4 (the last one row), 210 positions
    [[11, 1, 12, 12], [32, 1, 3, 3], { padding: 1 }], // one input channel to 32: 8 blocks, 156 positions, jobs of several images
    [[2, 4, 12, 12], [10, 2, 3, 3], { padding: 1, groups: 2 }], // grouped: 5 channels per group in 2 blocks
    [[2, 1, 28, 27], [6, 1, 3, 3], { padding: 1, stride: 2 }], // strided: 14 rows of 15 on the phase grid
    // the dot kernel on the output gradient as it is (4 channels a group): rows of 1, 2 and 3 past
    // the last whole vector, a row narrower than a vector, grouped, strided, in place
    [[3, 5, 7, 9], [4, 5, 1, 1], {}], // 1x1 in place, rows of 9
    [[2, 3, 5, 3], [4, 3, 3, 3], { padding: 1 }], // rows of 3: only the masked vector
    [[3, 6, 11, 13], [8, 3, 3, 3], { padding: 1, groups: 2 }], // grouped, 4 channels a group, rows of 13
    [[3, 6, 11, 9], [8, 3, 3, 3], { padding: 1, stride: 2, groups: 2 }], // strided and grouped, rows of 5
    [[5, 2, 9, 15], [8, 2, 3, 3], { padding: 1 }], // 2 channels in, 8 out (18 taps, 9 rows of 16 on the phase grid), rows of 15
  ];
  const was = one.poison;
  one.poison = true;
  try {
    for (const [sx, sw, o] of cases) {
      await compare(wb, `conv 2-row ${JSON.stringify([sx, sw, o])}`, (x, w) => T.conv2d(x, w, o), [sx, sw], { tol: 1e-4 });
      await compare(one, `conv 2-row 1 thread ${JSON.stringify([sx, sw, o])}`, (x, w) => T.conv2d(x, w, o), [sx, sw], { tol: 1e-4 });
    }
  } finally {
    one.poison = was;
  }
});

S("1x1 convolutions store their products straight into the output with the epilogue (gemm_ptd_<ep>, gemm_pt4d_<ep>: none, a bias, a bias and ReLU, ReLU's derivative), where the reduction is one block and the rows take a 4- or 6-row block; they write nothing past the output's last row and column, and on odd, size-1, lane-tail, grouped, one-image, threaded and unshared-memory shapes they equal the reference (poisoned outputs)", async () => {
  const rt = await WasmRuntime.create({ threads: 2 });
  const pool = rt.pool as unknown as { runList: (L: JobList, par?: boolean) => void };
  const runList = pool.runList.bind(pool);
  /** The kernel names an op dispatched. */
  const kernels = (f: () => unknown) => {
    const seen = new Set<string>();
    pool.runList = (L, par) => {
      for (let i = 0; i < L.tasks; i++) seen.add(KERNELS[L.kernelOf(i)]);
      runList(L, par);
    };
    try {
      f();
    } finally {
      delete (pool as { runList?: unknown }).runList;
    }
    return seen;
  };
  const P = (N: number, Cin: number, H: number, W: number, Cout: number, k = 1): ConvParams => ({ N, Cin, H, W, Cout, KH: k, KW: k, stride: 1, pad: k >> 1, groups: 1, OH: H, OW: W });
  const ones = (n: number) => new Float32Array(n).fill(0.5);
  const run = (p: ConvParams, what: "fwd" | "none" | "relu" | "silu" | "dx" | "drelu" | "dsilu") => kernels(() => {
    const x = ones(p.N * p.Cin * p.H * p.W), w = ones(p.Cout * p.Cin * p.KH * p.KW), gy = ones(p.N * p.Cout * p.OH * p.OW), b = ones(p.Cout);
    if (what === "fwd") return conv2d(rt, x, w, p);
    if (what === "none" || what === "relu" || what === "silu") return conv2dBias(rt, x, w, b, p, what);
    if (what === "dx") return conv2dInputGrad(rt, gy, w, p);
    return conv2dInputGradTimes(rt, gy, w, p, what === "drelu" ? "relu" : "silu", x);
  });
  try {
    const direct = (p: ConvParams, what: Parameters<typeof run>[1], kernel: string) => {
      const k = run(p, what);
      // no product into result blocks, no copy out (an input gradient's copy3d flips its filters)
      const blocks = ["gemm_pt", "gemm_pt4", "gemm_pt2"].some((n) => k.has(n)), copyOut = (what === "fwd" && k.has("copy3d")) || [...k].some((n) => /^e[pd]_/.test(n));
      assert.ok(k.has(kernel) && !blocks && !copyOut, `${JSON.stringify(p)} ${what}: ${[...k]}`);
    };
    direct(P(4, 32, 14, 14, 32), "fwd", "gemm_ptd_none");
    direct(P(4, 32, 14, 14, 32), "none", "gemm_ptd_bias");
    direct(P(4, 32, 14, 14, 32), "relu", "gemm_ptd_relu");
    direct(P(3, 32, 7, 7, 8), "relu", "gemm_pt4d_relu");
    direct(P(3, 8, 7, 7, 32), "dx", "gemm_pt4d_none"); // the input gradient's rows are the 8 input channels
    direct(P(3, 32, 7, 7, 8), "drelu", "gemm_ptd_drelu");
    direct(P(1, 4, 1, 1, 4), "drelu", "gemm_pt4d_drelu");
    // the copy out where the kernel cannot apply the epilogue, the reduction is longer than a block, the rows take the 2-row block, or the rows are not the output's
    const copied = (p: ConvParams, what: Parameters<typeof run>[1], why: string) => {
      const k = run(p, what);
      assert.ok(![...k].some((n) => /^gemm_pt4?d_/.test(n)) && [...k].some((n) => /^gemm_pt[42]?$/.test(n)) && [...k].some((n) => n === "copy3d" || /^e[pd]_/.test(n)), `${why}: ${[...k]}`);
    };
    copied(P(2, 8, 5, 5, 8), "silu", "SiLU's two results");
    copied(P(2, 8, 5, 5, 8), "dsilu", "SiLU's derivative");
    copied(P(2, 300, 3, 3, 8), "relu", "K = 300 > KC");
    copied(P(2, 8, 5, 5, 2), "relu", "2 rows");
    copied(P(2, 4, 5, 5, 4, 3), "relu", "3x3: rows of W + 1 columns");
  } finally {
    rt.pool.close();
  }
  // the stores stop at the output's last row and column: an output in a reused block with a live
  // storage right after it, the block past its slack marked. 7 rows take the 4-row block (4, then
  // 3 and a row past M), 5 the 6-row one (a row past M); 49 positions, a tail of one lane. Rows
  // past M would write zeros over the marks (their filter rows are zero padding); a column past N
  // in the last row lands in the slack (for ReLU, relu(b) there, 0.25; for ReLU's derivative a 0
  // from z's zeroed slack: within a row, the values against the reference below catch it)
  const be = await createWasmBackend({ threads: 2 });
  be.poison = true;
  try {
    for (const [C, what] of [[7, "relu"], [7, "drelu"], [5, "relu"], [5, "drelu"]] as const) {
      const p = P(3, C, 7, 7, C), n = 3 * C * 49;
      const x = be.upload(Float32Array.from({ length: n }, (_, i) => Math.sin(i)), "float32"), w = be.upload(Float32Array.from({ length: C * C }, (_, i) => Math.cos(i)), "float32");
      const b = be.upload(new Float32Array(C).fill(0.25), "float32");
      const slot = be.alloc(n), sentinel = be.alloc(1 << 12).fill(7), at = slot.byteOffset;
      assert.ok(sentinel.byteOffset > at && sentinel.byteOffset - at < 2 * n * 4, "the sentinel sits right after the slot");
      const gap = new Float32Array(slot.buffer, at + n * 4, (sentinel.byteOffset - at) / 4 - n).fill(7);
      be.release(slot);
      const out = (what === "relu" ? be.conv2dBias(x, w, b, p, "relu", "float32")!.y : be.conv2dInputGradTimes(x, w, p, "relu", x, "float32")) as Float32Array;
      assert.is(out.byteOffset, at, `${what} ${C}: the output reused the slot`);
      assert.ok(out.every(Number.isFinite), `${what} ${C}: every output written (the fresh output poisoned)`);
      assert.ok(gap.subarray(0, 16).every((v) => v === 0) && gap.subarray(16).every((v) => v === 7), `${what} ${C}: wrote past its output, in its block`);
      assert.ok(sentinel.every((v) => v === 7), `${what} ${C}: wrote past its output's block`);
      be.release(out);
      be.release(sentinel);
      [x, w, b].forEach((s) => be.release(s));
    }
  } finally {
    be.close();
  }
  // without shared memory (one thread, ordinary arrays copied in and out)
  const solo = await createWasmBackend({ shared: false });
  try {
    solo.poison = true;
    await compare(solo, "1x1 relu into 1x1 unshared", (x, w, b, w2) => T.conv2d(T.conv2dBias(x, w, b, { act: "relu" }), w2), [[3, 5, 7, 7], [7, 5, 1, 1], [7], [6, 7, 1, 1]], { tol: 1e-4 });
  } finally {
    solo.close();
  }
  const cases: [number[], number, number][] = [ // x shape, Cout, groups
    [[3, 5, 7, 7], 7, 1], // 49 positions (a tail of one lane), 7 rows (4-row blocks: 4, then 3 and a row past M)
    [[1, 3, 1, 1], 4, 1], // one image of one position: one panel, one lane
    [[2, 6, 3, 5], 6, 2], // grouped: 3 rows per group (4-row block), the bias by group, 15 positions
    [[17, 6, 4, 6], 12, 1], // 17 images, jobs of several; whole panels
    [[4, 32, 14, 14], 32, 1], // the Glow's coupling conv2: 196 positions (a tail of one vector)
    [[2, 300, 3, 3], 9, 1], // a reduction past the block: the copy out
  ];
  const was = [wb.poison, one.poison];
  wb.poison = one.poison = true;
  try {
    for (const [sx, Cout, groups] of cases) {
      const sw = [Cout, sx[1] / groups, 1, 1], s2 = [5, Cout, 1, 1], tag = JSON.stringify([sx, Cout, groups]);
      for (const be of [wb, one]) {
        await compare(be, `1x1 ${tag}`, (x, w) => T.conv2d(x, w, { groups }), [sx, sw], { tol: 1e-4 });
        for (const act of ["none", "relu"] as const) {
          await compare(be, `1x1 bias ${act} ${tag}`, (x, w, b) => T.conv2dBias(x, w, b, { groups, act }), [sx, sw, [Cout]], { tol: 1e-4 });
        }
        // ReLU's output into a 1x1 convolution alone: its input gradient times the derivative
        await compare(be, `1x1 relu into 1x1 ${tag}`, (x, w, b, w2) => T.conv2d(T.conv2dBias(x, w, b, { groups, act: "relu" }), w2), [sx, sw, [Cout], s2], { tol: 1e-4 });
      }
    }
  } finally {
    [wb.poison, one.poison] = was;
  }
});

S("convolutions on rows that share their zero border (stride 1, pad 1..k-1; non-square kernels; pad past k-1 on two borders) equal the reference", async () => {
  const cases: [number[], number[], T.ConvOptions][] = [
    [[2, 3, 7, 5], [4, 3, 3, 2], { padding: 1 }], // KW = 2: Bw = 0 (input grad), forward rows W + 1
    [[1, 2, 9, 6], [3, 2, 5, 5], { padding: 2 }], // Bh = Bw = 2
    [[2, 2, 6, 6], [3, 2, 3, 3], { padding: 2 }], // pad = k-1: Bh = Bw = 0 and OW = W + 2 (forward rows W + 2)
    [[1, 3, 5, 4], [2, 3, 2, 2], { padding: 2 }], // pad > k-1: both borders, as before
    [[1, 1, 1, 1], [2, 1, 3, 3], { padding: 1 }], // one pixel
    [[3, 8, 7, 7], [12, 2, 3, 3], { padding: 1, groups: 4 }], // the Glow's 7x7 rows, grouped
  ];
  for (const [sx, sw, o] of cases) await compare(wb, `conv ${JSON.stringify([sx, sw, o])}`, (x, w) => T.conv2d(x, w, o), [sx, sw], { tol: 1e-4 });
});

S("strided copies and broadcasts on random specs (negative steps, padding on every side) equal the reference", () => {
  const g = new T.Generator(31);
  const ri = (n: number) => Math.floor(g.uniform() * n);
  for (let t = 0; t < 300; t++) {
    const rank = 1 + ri(3);
    const inShape = Array.from({ length: rank }, () => 1 + ri(5));
    const orank = 1 + ri(3);
    const outShape = Array.from({ length: orank }, () => 1 + ri(6));
    const map = outShape.map(() => ri(rank));
    const start = map.map((m) => ri(inShape[m] + 4) - 2), step = map.map(() => ri(5) - 2);
    const spec = { inShape, outShape, map, start, step, padValue: ri(3) - 1 };
    const x = Float32Array.from({ length: inShape.reduce((p, q) => p * q, 1) }, (_, i) => i + 1);
    const want = T.cpu.strided(x, spec, "float32"), got = wb.strided(x, spec, "float32");
    assert.equal([...got], [...want], JSON.stringify(spec));
    // broadcasting binary op between outShape and a shape with some dims set to 1
    const bShape = outShape.slice(ri(orank)).map((d) => (ri(2) ? 1 : d));
    const a = Float32Array.from({ length: want.length }, (_, i) => i * 0.5 - 3);
    const b = Float32Array.from({ length: bShape.reduce((p, q) => p * q, 1) }, (_, i) => 2 - i);
    for (const op of ["sub", "maximum", "reluMask"] as const) {
      assert.equal([...wb.binary(op, a, outShape, b, bShape, outShape, "float32")], [...T.cpu.binary(op, a, outShape, b, bShape, outShape, "float32")], `${op} ${outShape} ${bShape}`);
      assert.equal([...wb.binary(op, b, bShape, a, outShape, outShape, "float32")], [...T.cpu.binary(op, b, bShape, a, outShape, outShape, "float32")], `${op} ${bShape} ${outShape}`);
    }
  }
});

S("strided copies in wasm (boxes of 1-4 dimensions, and of 5-7 as a copy per index of the dimensions past four; vector, splat and scalar rows, threaded) and the loop past them equal the reference", () => {
  const g = new T.Generator(47);
  const ri = (n: number) => Math.floor(g.uniform() * n);
  let viaKernel = 0, past4 = 0;
  for (let t = 0; t < 900; t++) {
    // the last 300: ranks 5-7 with at least 5 output dimensions (boxes of 5 or more, mostly), small extents
    const high = t >= 600, rank = high ? 5 + ri(3) : 1 + ri(5);
    const inShape = Array.from({ length: rank }, () => 2 + ri(t < 20 ? 40 : high ? 4 : 11));
    // every output dimension on its own input dimension (a permutation of a subset), plus broadcasts
    const perm = inShape.map((_, i) => i).sort(() => g.uniform() - 0.5);
    const map = perm.slice(0, high ? 5 + ri(rank - 4) : 1 + ri(rank));
    const outShape = map.map((m) => Math.max(1, inShape[m] + ri(5) - 2));
    const start = map.map((m) => ri(5) === 0 ? ri(inShape[m] + 2) - 1 : 0), step = map.map(() => [1, 1, 1, 0, -1, 2][ri(6)]);
    // a negative step starts at the far end (a flip), sometimes past it (padding)
    map.forEach((m, d) => { if (step[d] < 0) start[d] = inShape[m] - 1 + ri(2); });
    const spec = { inShape, outShape, map, start, step, padValue: ri(3) - 1.5 };
    const x = wb.upload(Float32Array.from({ length: inShape.reduce((p, q) => p * q, 1) }, (_, i) => i + 1), "float32");
    const want = T.cpu.strided(x, spec, "float32"), got = wb.strided(x, spec, "float32");
    assert.equal([...got], [...want], JSON.stringify(spec));
    if (want.length >= 64) viaKernel++;
    const box = stridedBox(spec, 4);
    if (want.length >= 64 && box === null && stridedBox(spec, Infinity) !== null) past4++;
    wb.release(got);
    wb.release(x);
  }
  // the Glow's squeeze and its inverse (6-d permutations: a box of 5 dimensions), threaded and not
  for (const [inShape, map] of [[[64, 1, 14, 2, 14, 2], [0, 1, 3, 5, 2, 4]], [[64, 2, 7, 2, 7, 2], [0, 1, 3, 5, 2, 4]], [[64, 2, 2, 2, 7, 7], [0, 1, 4, 2, 5, 3]], [[3, 1, 5, 2, 3, 2], [0, 1, 3, 5, 2, 4]]]) {
    const spec = { inShape, outShape: map.map((m) => inShape[m]), map, start: map.map(() => 0), step: map.map(() => 1), padValue: 0 };
    const x = wb.upload(Float32Array.from({ length: inShape.reduce((p, q) => p * q, 1) }, (_, i) => i + 1), "float32");
    const box = stridedBox(spec, Infinity);
    assert.ok(box !== "empty" && box !== null && box.ext.length === 5, JSON.stringify(box));
    const got = wb.strided(x, spec, "float32");
    assert.equal([...got], [...T.cpu.strided(x, spec, "float32")], JSON.stringify(spec));
    wb.release(got);
    wb.release(x);
  }
  // nearest upsampling (stride-0 innermost rows, threaded: 2^17 elements), a size-1 output, an all-padding output
  const up = { inShape: [8, 16, 1, 32, 1], outShape: [8, 16, 2, 32, 2], map: [0, 1, 2, 3, 4], start: [0, 0, 0, 0, 0], step: [1, 1, 0, 1, 0], padValue: 0 };
  const pad = { inShape: [3, 5], outShape: [4, 7], map: [0, 1], start: [5, -9], step: [1, 1], padValue: 2 };
  const one = { inShape: [70], outShape: [1], map: [0], start: [69], step: [1], padValue: 0 };
  for (const spec of [up, pad, one]) {
    const x = Float32Array.from({ length: spec.inShape.reduce((p, q) => p * q, 1) }, (_, i) => Math.sin(i));
    const got = wb.strided(x, spec, "float32");
    assert.equal([...got], [...T.cpu.strided(x, spec, "float32")], JSON.stringify(spec.outShape));
    wb.release(got);
  }
  assert.ok(viaKernel > 150, `${viaKernel} specs of 64 elements or more`);
  assert.ok(past4 > 100, `${past4} specs with boxes of more than 4 dimensions`);
});

S("copypad (the convolutions' padded blocks): the box placed and zeros around it, nothing written outside the blocks (before the first, between, after the last), on random boxes (empty, strided, vector and scalar rows, the vector rows' path most often)", () => {
  const g = new T.Generator(53);
  const ri = (n: number) => Math.floor(g.uniform() * n);
  const rt = wb.runtime;
  let vectorRows = 0;
  for (let t = 0; t < 400; t++) {
    const D0 = 1 + ri(4), Dh = 1 + ri(9), Dw = 1 + ri(37);
    const R = ri(Dh + 1), C = ri(Dw + 1), r0 = ri(Dh - R + 1), c0 = ri(Dw - C + 1);
    const cs = g.uniform() < 0.6 ? 1 : 2 + ri(2); // source column step: 1 (vector rows) or a stride
    if (cs === 1 && Dw >= 4 && (C === 0 || C >= 4)) vectorRows++;
    const srcRow = Math.max(1, C * cs + ri(3)), srcBlk = Math.max(1, R * srcRow + ri(5));
    const src = wb.upload(Float32Array.from({ length: D0 * srcBlk }, (_, i) => i + 0.5), "float32");
    const dBlk = Dh * Dw + ri(3); // blocks may be apart: what lies between is not written
    const off = 1 + ri(7), buf = wb.alloc(off + D0 * dBlk + 8); // poisoned; the blocks at an odd float offset inside it
    const dst = buf.subarray(off);
    rt.run([[KI.copypad, src.byteOffset, srcBlk * 4, srcRow * 4, cs * 4, dst.byteOffset, dBlk * 4, D0, Dh, Dw, r0, R, c0, C]], 0);
    for (let i = 0; i < D0; i++) for (let y = 0; y < Dh; y++) for (let x = 0; x < Dw; x++) {
      const inside = y >= r0 && y < r0 + R && x >= c0 && x < c0 + C;
      const want = inside ? src[i * srcBlk + (y - r0) * srcRow + (x - c0) * cs] : 0;
      if (dst[i * dBlk + y * Dw + x] !== want) assert.unreachable(`case ${t} ${JSON.stringify({ D0, Dh, Dw, r0, R, c0, C, cs })}: [${i}][${y}][${x}] = ${dst[i * dBlk + y * Dw + x]}, want ${want}`);
    }
    for (let i = 0; i < D0; i++) for (let q = Dh * Dw; q < dBlk; q++) assert.ok(Number.isNaN(dst[i * dBlk + q]), "wrote past a block");
    for (let q = 0; q < off; q++) assert.ok(Number.isNaN(buf[q]), "wrote before the first block");
    for (let q = off + D0 * dBlk; q < buf.length; q++) assert.ok(Number.isNaN(buf[q]), "wrote after the last block");
    wb.release(src);
    wb.release(buf);
  }
  assert.ok(vectorRows > 150, `${vectorRows} of 400 cases on the vector rows' path`);
});

S("sum and sumsq kernels equal the reference bit for bit (rows by eights, fours and ones, row tails, column blocks, column tails, threaded, NaN and infinities)", () => {
  const shapes = [[1, 300, 1], [7, 33, 1], [3, 5, 4], [2, 9, 13], [1, 64, 1027], [5, 3, 70001], [1000, 70, 1], [64, 2, 1], [1, 1, 300], [2048, 196, 1], [13, 197, 1], [23, 3, 1], [300, 1, 1], [17, 21, 1], [9, 255, 1]];
  for (const [outer, R, inner] of shapes) {
    const n = outer * R * inner;
    // values of one scale (with NaN and infinities); and rows (inner = 1) that start at 2^50 and
    // end at -2^50, small values between: each partial sum rounds (f64's step at 2^50 is 1/4) and
    // the big ones cancel, so only the reference's order gives its bits
    const x = Float32Array.from({ length: n }, (_, i) => (i % 997 === 5 ? [NaN, Infinity, -Infinity][i % 3] : Math.sin(i * 0.37) * 1e3 + 1e-3 * i));
    const wide = Float32Array.from({ length: n }, (_, i) => i % R === 0 ? 2 ** 50 : i % R === R - 1 ? -(2 ** 50) : Math.sin(i * 0.37) * 100);
    for (const [op, v] of [["sum", x], ["sumsq", x], ["sum", wide], ["sumsq", wide]] as const) {
      const got = wb.reduce(op, v, outer, R, inner, "float32"), want = T.cpu.reduce(op, v, outer, R, inner, "float32");
      assert.is(got.length, want.length);
      for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.unreachable(`${op} ${v === x ? "" : "(wide) "}${outer}x${R}x${inner} at ${i}: ${got[i]} vs ${want[i]}`);
      wb.release(got);
    }
  }
});

S("finite kernel (a weight gradient's check): 1 exactly when every float is finite, on every length 0-41 and at every offset mod 4, for NaN, +-Inf at each place (vector body, tail, first, last), and never for the floats around the block", () => {
  const rt = wb.runtime;
  // the block sits at offset `off` floats inside a buffer of NaN (read, the floats around it would say 0)
  const extremes = [0, -0, 1e-45, -1e-45, 3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, 1];
  let checked = 0;
  for (let n = 0; n <= 41; n++) {
    for (let off = 0; off < 4; off++) {
      const buf = wb.alloc(off + n + 8).fill(NaN), v = buf.subarray(off, off + n);
      for (let i = 0; i < n; i++) v[i] = extremes[(i * 7 + off) % extremes.length];
      assert.ok(rt.allFinite(v, 0, n), `finite n=${n} off=${off}`);
      for (let at = 0; at < n; at++) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          const keep = v[at];
          v[at] = bad;
          assert.not.ok(rt.allFinite(v, 0, n), `${bad} at ${at} of ${n} (off ${off})`);
          // a range that leaves it out: finite
          assert.ok(rt.allFinite(v, 0, at) && rt.allFinite(v, at + 1, n), `${bad} at ${at} of ${n} (off ${off}), ranges around it`);
          v[at] = keep;
          checked++;
        }
      }
      wb.release(buf);
    }
  }
  // an ordinary array (storages made elsewhere): the same answers by a loop
  assert.ok(rt.allFinite(new Float32Array([1, 2, 3]), 0, 3));
  assert.not.ok(rt.allFinite(new Float32Array([1, NaN, 3]), 0, 3));
  assert.ok(rt.allFinite(new Float32Array([1, NaN, 3]), 2, 3));
  assert.ok(checked > 9000, `${checked} cases`);
});

S("where kernel equals the reference (broadcast operands, NaN, -0 and infinities as conditions, vector and scalar rows)", () => {
  const special = [NaN, -0, 0, Infinity, -Infinity, 1e-45, -2];
  const cases: [number[], number[], number[], number[]][] = [
    [[64, 784], [64, 784], [64, 784], [64, 784]], [[5, 7, 9], [5, 1, 9], [1, 7, 1], [9]], [[3, 70001], [3, 1], [3, 70001], [1]],
    [[2, 3, 4, 5], [2, 3, 4, 5], [1], [2, 1, 4, 1]], [[130], [130], [1], [130]], [[7, 9], [1, 9], [7, 1], [7, 9]],
  ];
  for (const [out, cs, as, bs] of cases) {
    const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
    const c = Float32Array.from({ length: size(cs) }, (_, i) => (i % 3 === 0 ? special[i % special.length] : i % 2));
    const a = Float32Array.from({ length: size(as) }, (_, i) => i + 0.5), b = Float32Array.from({ length: size(bs) }, (_, i) => -i - 0.25);
    const got = wb.where(c, cs, a, as, b, bs, out, "float32"), want = T.cpu.where(c, cs, a, as, b, bs, out, "float32");
    assert.equal([...got], [...want], JSON.stringify([out, cs, as, bs]));
    wb.release(got);
  }
});

S("small products (the TypeScript path, batched, transposed, one side broadcast) equal the reference", async () => {
  await compare(wb, "bmm 8x8", (a, b) => T.matmul(a, b), [[64, 8, 8], [64, 8, 8]], { tol: 1e-5 });
  await compare(wb, "bmm broadcast", (a, b) => T.matmul(a, b), [[5, 3, 7], [7, 4]], { tol: 1e-5 });
  await compare(wb, "mm T", (a, b) => T.mm(a, b, true, true), [[5, 3], [2, 5]], { tol: 1e-5 });
  await compare(wb, "mm 1", (a, b) => T.mm(a, b), [[1, 1], [1, 1]], { tol: 1e-5 });
  await compare(wb, "mm edge", (a, b) => T.mm(a, b), [[16, 16], [16, 16]], { tol: 1e-5 }); // 4096 multiply-adds: the last small one
  await compare(wb, "mm past", (a, b) => T.mm(a, b), [[16, 16], [16, 17]], { tol: 1e-5 }); // the first through the kernels
});

S("operands packed from a transposed layout (4 k at a time, 4 x 4 transposes in registers, then the last k one at a time) equal the reference: every k mod 4, full and partial panels", async () => {
  // B given transposed, and A as it is where its panels have 4 rows (M = 4, 8, 20), are stored
  // along k: the transposing pack (A given transposed, and 6-row panels at M = 12, take the copying
  // and the scalar packs); the gradients read the other layouts of the same products
  for (const K of [1, 2, 3, 4, 5, 6, 7, 9, 13, 64, 258]) {
    for (const [M, N] of [[8, 522], [4, 1031], [12, 347], [20, 260]]) { // past the TypeScript path's 4096 multiply-adds at K = 1; N mod 8 = 2, 7, 3, 4
      await compare(wb, `mm tB ${M}x${K}x${N}`, (a, b) => T.mm(a, b, false, true), [[M, K], [N, K]], { tol: 1e-4 });
      await compare(wb, `mm tA tB ${M}x${K}x${N}`, (a, b) => T.mm(a, b, true, true), [[K, M], [N, K]], { tol: 1e-4 });
    }
  }
});

S("SIMD elementwise kernels equal the reference bit for bit, NaN, infinities and signed zeros included", () => {
  const special = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 0.5, -2.5, 3e-39];
  const vals = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => (i % 7 === 3 ? special[(i * 31 + seed) % special.length] : Math.sin(i * 1.7 + seed) * 3));
  const same = (x: ArrayLike<number>, y: ArrayLike<number>, what: string) => {
    assert.is(x.length, y.length, what);
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) assert.unreachable(`${what} at ${i}: ${x[i]} vs ${y[i]}`);
  };
  for (const op of ["neg", "abs", "relu", "step", "sqrt", "square", "recip", "mulScalar", "addScalar", "leakyRelu", "leakyStep"] as const) {
    for (const n of [64, 67, 1001, 70001]) {
      const x = vals(n, n);
      same(wb.unary(op, x, n, "float32", -1.5), T.cpu.unary(op, x, n, "float32", -1.5), `${op} n=${n}`);
    }
  }
  const shapes: [number[], number[], number[]][] = [
    [[65], [65], [65]], [[70001], [1], [70001]], [[1], [131], [131]], [[64, 32, 9], [32, 1], [64, 32, 9]], [[3, 1, 70], [5, 1], [3, 5, 70]], [[300, 257], [300, 257], [300, 257]],
  ];
  for (const op of ["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "lt", "le", "eq", "reluMask"] as const) {
    for (const [sa, sb, so] of shapes) {
      const a = vals(sa.reduce((p, q) => p * q, 1), 1), b = vals(sb.reduce((p, q) => p * q, 1), 2);
      same(wb.binary(op, a, sa, b, sb, so, "float32"), T.cpu.binary(op, a, sa, b, sb, so, "float32"), `${op} ${sa} ${sb}`);
      same(wb.binary(op, b, sb, a, sa, so, "float32"), T.cpu.binary(op, b, sb, a, sa, so, "float32"), `${op} ${sb} ${sa}`);
    }
  }
});

S("SIMD exp, sigmoid, softplus, silu and siluGrad (polynomial exp and log1p) within 4e-7 of the reference, specials exact", () => {
  const xs = Float32Array.from({ length: 100003 }, (_, i) => (i / 100003 - 0.5) * 200);
  const specials = [NaN, Infinity, -Infinity, 0, -0, 88.72, 88.73, -87.2, -100, 100];
  xs.set(specials);
  for (const op of ["exp", "sigmoid", "softplus", "silu", "siluGrad"] as const) {
    const got = wb.unary(op, xs, xs.length, "float32", 0), want = T.cpu.unary(op, xs, xs.length, "float32", 0);
    // siluGrad = s (1 + x (1 - s)) crosses zero near x = -1.28: there its error is absolute (s's
    // relative error times |x (1 - s)|); silu = x s carries sigmoid's absolute 2e-38 times |x| <= 100.
    const abs = op === "siluGrad" ? 4e-7 : op === "silu" ? 2e-36 : 2e-38;
    for (let i = 0; i < xs.length; i++) {
      const ok = Object.is(got[i], want[i]) || Math.abs(got[i] - want[i]) <= 4e-7 * Math.abs(want[i]) + abs;
      if (!ok) assert.unreachable(`${op}(${xs[i]}) = ${got[i]}, reference ${want[i]}`);
    }
    assert.ok(Number.isNaN(got[0]), `${op}(NaN)`);
  }
});

S("the sigmoid family's exp of a non-positive argument (one scaling by 2^n) gives exp's own bits (two scalings): sigmoid(x) for x <= 0 is e / (1 + e) with e = exp(x) to the bit, down to 2^-126 and across the -87.3 cut", () => {
  // every float in [-87.5, -80] (where n reaches -126: the least normal scale), and a sweep of
  // [-80, 0], with -0 and -Infinity
  const dense: number[] = [];
  for (let v = Math.fround(-87.5); v <= -80; v = nextUp(v)) dense.push(v);
  for (let i = 0; i < 200000; i++) dense.push(Math.fround(-80 * i / 200000));
  dense.push(-0, -Infinity, -87.3, Math.fround(-87.3), -1e-40);
  const xs = Float32Array.from(dense);
  const e = wb.unary("exp", xs, xs.length, "float32", 0), s = wb.unary("sigmoid", xs, xs.length, "float32", 0);
  let least = 0;
  for (let i = 0; i < xs.length; i++) {
    const q = Math.fround(1 / Math.fround(1 + e[i])), want = Math.fround(e[i] * q);
    if (!Object.is(s[i], want)) assert.unreachable(`sigmoid(${xs[i]}) = ${s[i]}, e / (1 + e) with exp's e = ${want}`);
    if (e[i] > 0 && e[i] < 2 ** -125) least++;
  }
  assert.ok(least > 1000, `the sweep reaches results scaled by 2^-126 (${least})`);
});

/** The next float32 above v (v finite and negative here). */
function nextUp(v: number): number {
  const f = new Float32Array([v]), u = new Uint32Array(f.buffer);
  u[0] -= 1;
  return f[0];
}

S("polynomial-exp ops give an element the same bits at any array length (1 to 70 and long), so results never depend on a batch's size", () => {
  // Arrays under 64 elements once took a TypeScript loop with Math.exp while longer ones ran the
  // kernel's polynomial: a VAE input's features then changed with how many inputs shared its batch.
  const long = 300, xs = Float32Array.from({ length: long }, (_, i) => Math.sin(i * 0.7) * 9);
  for (const op of ["exp", "sigmoid", "softplus", "silu"] as const) {
    const full = (T as unknown as Record<string, (t: T.Tensor) => T.Tensor>)[op](T.tensor(xs, [long], { backend: wb })).dataSync();
    for (const n of [1, 2, 3, 4, 5, 7, 63, 64, 65, 70]) {
      const part = (T as unknown as Record<string, (t: T.Tensor) => T.Tensor>)[op](T.tensor(xs.subarray(0, n), [n], { backend: wb })).dataSync();
      for (let i = 0; i < n; i++) assert.ok(Object.is(part[i], full[i]) && Number.isFinite(part[i]), `${op} of ${n} elements, element ${i}: ${part[i]} vs ${full[i]}`);
    }
  }
});

S("the worker threads take part (tasks run by workers, not only by the caller)", async () => {
  if (wb.threads < 2) return console.warn("  (one thread here: nothing to check)");
  const before = wb.workerTasks;
  const a = T.randn(new T.Generator(3), [512, 512], { backend: wb });
  // several products, with pauses, so a worker that is slow to wake still gets tasks
  for (let i = 0; i < 6; i++) {
    T.matmul(a, a).dispose();
    await new Promise((r) => setTimeout(r, 20));
  }
  a.dispose();
  assert.ok(wb.workerTasks > before, `workers ran ${wb.workerTasks - before} tasks`);
});

S("the pool's phase counter wraps past its limit (an Int32 word that would turn negative in a long run) and every phase still runs every task once, on both threads", async () => {
  const { module } = buildModule(true);
  const mem = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true } as WebAssembly.MemoryDescriptor);
  mem.grow(32); // 3 MiB: room for 9 tasks of 128 KiB
  const inst = new WebAssembly.Instance(module, { env: { mem } });
  // a limit of 3 phases: GEN wraps every fourth
  const pool = await Workers.create(module, mem, [...KERNELS], inst, 2, { phases: 3 });
  try {
    const f = new Float32Array(mem.buffer);
    // tasks long enough (32k floats each) for the worker to claim some while the caller works;
    // first, until the worker has started (it instantiates the module on its own thread)
    const at = 4096, words = 1 << 15;
    for (let i = 0; i < 200 && pool.workerTasks === 0; i++) {
      pool.run(Array.from({ length: 9 }, (_, t) => [KI.fill32, (at + t * words) * 4, words, 0] as Task), true);
      await new Promise((r) => setTimeout(r, 10));
    }
    const before = pool.workerTasks;
    // 300 phases (the counter wraps 75 times), and on past them, up to 3,000, while the worker has
    // run none of their tasks (a core held by other work may keep it off the CPU that long)
    let phase = 0;
    for (; phase < 300 || (pool.threads > 1 && pool.workerTasks === before && phase < 3000); phase++) {
      const k = 1 + (phase % 9); // 1..9 tasks, each filling its own floats with the phase number
      const tasks: Task[] = Array.from({ length: k }, (_, t) => [KI.fill32, (at + t * words) * 4, words, new Int32Array(new Float32Array([phase]).buffer)[0]]);
      pool.run(tasks, true);
      for (let t = 0; t < k; t++) for (const w of [0, 1, words >> 1, words - 2, words - 1]) {
        if (f[at + t * words + w] !== phase) assert.unreachable(`phase ${phase}, task ${t}: ${f[at + t * words + w]}`);
      }
    }
    if (pool.threads > 1) assert.ok(pool.workerTasks > before, `the worker ran none of the tasks of ${phase} phases`);
  } finally {
    pool.close();
  }
});

S("a group of tasks runs in order on one thread: each task sees its group's earlier writes; groups and single tasks mix, and a phase of more task slots than the ring holds runs in parts; the same jobs as arrays (run) and written flat (a JobList grown past its first size, empty jobs dropped: runList)", async () => {
  const { module } = buildModule(true);
  const mem = new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, shared: true } as WebAssembly.MemoryDescriptor);
  const inst = new WebAssembly.Instance(module, { env: { mem } });
  const pool = await Workers.create(module, mem, [...KERNELS], inst, 2);
  try {
    const f = new Float32Array(mem.buffer);
    const bits = (v: number) => new Int32Array(new Float32Array([v]).buffer)[0];
    const words = 64, scratch = 4096, out = scratch + 3000 * words;
    for (let round = 0; round < 20 && (round < 3 || pool.workerTasks === 0); round++) {
      // 2,000 jobs: groups of three (fill a scratch block with a value, then with the value + 1,
      // then copy it out) and, every fifth, a single fill of its output block; 5,200 task slots
      const n = 2000, jobs: (Task | Task[])[] = [];
      for (let i = 0; i < n; i++) {
        const v = round * 10000 + i, sb = (scratch + i * words) * 4, ob = (out + i * words) * 4;
        jobs.push(i % 5 === 4 ? [KI.fill32, ob, words, bits(v + 1)] : [
          [KI.fill32, sb, words, bits(v)],
          [KI.fill32, sb, words >> 1, bits(v + 1)],
          [KI.fill32, sb + (words >> 1) * 4, words >> 1, bits(v + 1)],
          [KI.copy3d, sb, 0, 0, 4, ob, 0, 0, 4, 1, 1, words],
        ]);
      }
      for (const flat of [false, true]) {
        f.fill(NaN, out, out + n * words);
        if (flat) {
          const L = new JobList();
          for (const j of jobs) {
            for (const t of (Array.isArray(j[0]) ? j as Task[] : [j as Task])) L.task(t[0], ...t.slice(1));
            L.endJob();
            L.endJob(); // an empty job: dropped
          }
          assert.is(L.jobs, n);
          pool.runList(L, true);
        } else pool.run(jobs, true);
        for (let i = 0; i < n; i++) for (let w = 0; w < words; w++) {
          if (f[out + i * words + w] !== round * 10000 + i + 1) assert.unreachable(`${flat ? "list" : "arrays"}, round ${round}, job ${i}, word ${w}: ${f[out + i * words + w]}`);
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    if (pool.threads > 1) assert.ok(pool.workerTasks > 0, "the worker ran no task");
  } finally {
    pool.close();
  }
});

S("without shared memory (a browser page that is not cross-origin isolated): one thread, ordinary arrays (the direct and the Winograd convolutions), growth keeps every result", async () => {
  const solo = await createWasmBackend({ shared: false });
  try {
    assert.is(solo.threads, 1);
    solo.poison = true;
    await compare(solo, "mm unshared", (a, b) => T.mm(a, b, false, true), [[67, 130], [33, 130]], { tol: 1e-4 });
    await compare(solo, "conv unshared", (x, w) => T.conv2d(x, w, { padding: 1, stride: 2 }), [[2, 5, 9, 8], [7, 5, 3, 3]], { tol: 1e-4 });
    await compare(solo, "winograd conv unshared", (x, w) => T.conv2d(x, w, { padding: 1 }), [[3, 8, 9, 7], [9, 8, 3, 3]], { tol: 1e-4 });
    await compare(solo, "elementwise unshared", (a, b) => T.relu(T.sigmoid(T.add(a, b))), [[3, 70, 9], [70, 1]], { tol: 1e-4 });
    await compare(solo, "concat unshared", (a, b, c) => T.concat([a, b, c], 1), [[3, 4, 5], [3, 1, 5], [3, 2, 5]]);
    solo.poison = false;
    // results made before the memory grows (a non-shared buffer detaches when it grows) stay intact
    const a = T.tensor(Float32Array.from({ length: 300 * 300 }, (_, i) => Math.sin(i)), [300, 300], { backend: solo });
    const first = T.matmul(a, a), want = [...first.dataSync()];
    const before = solo.memoryBytes;
    const big = T.matmul(T.broadcastTo(T.reshape(a, [1, 300, 300]), [40, 300, 300]), a); // scratch far past the first product's
    assert.ok(solo.memoryBytes > before, "the memory grew");
    assert.equal([...first.dataSync()], want);
    big.dispose();
  } finally {
    solo.close();
  }
});

S("concat writes its output and nothing past it: rows split among the threads, the output in a reused block with a live storage right after it", async () => {
  // a backend of its own: its memory is fresh, so blocks are handed out from the top, in order
  const be = await createWasmBackend({ threads: 2 });
  try {
    const outer = 5, blocks = [130 * 101, 3 * 101], total = blocks[0] + blocks[1], n = outer * total; // 67,165 floats: the threaded path
    const parts = blocks.map((b, k) => be.upload(Float32Array.from({ length: outer * b }, (_, i) => k * 1e6 + i), "float32") as Float32Array);
    // a block of the output's size with a sentinel right after it; released, the concat's output takes it
    const slot = be.alloc(n), sentinel = be.alloc(1 << 17).fill(7);
    assert.ok(sentinel.byteOffset > slot.byteOffset && sentinel.byteOffset - slot.byteOffset < 2 * n * 4, "the sentinel sits right after the slot");
    const at = slot.byteOffset;
    // the rest of the slot's block (its size class is larger than n floats) marked too
    const gap = new Float32Array(slot.buffer, at + n * 4, (sentinel.byteOffset - at) / 4 - n).fill(7);
    be.release(slot);
    const out = be.concat(parts, blocks, outer, "float32") as Float32Array;
    assert.is(out.byteOffset, at, "the output reused the slot");
    let bad = -1;
    for (let o = 0; o < outer && bad < 0; o++) {
      for (let j = 0; j < total; j++) {
        const want = j < blocks[0] ? o * blocks[0] + j : 1e6 + o * blocks[1] + (j - blocks[0]);
        if (out[o * total + j] !== Math.fround(want)) {
          bad = o * total + j;
          break;
        }
      }
    }
    assert.is(bad, -1, `output element ${bad} wrong`);
    // past the output: its 16 floats of slack, zeroed by the allocator, then the block's rest and the sentinel as marked
    assert.ok(gap.subarray(0, 16).every((v) => v === 0) && gap.subarray(16).every((v) => v === 7), "concat wrote past its output, in its block");
    assert.ok(sentinel.every((v) => v === 7), "concat wrote past its output's block");
  } finally {
    be.close();
  }
});

S("a kernel that traps (on a worker or the caller) ends the call with an error, not a hang or a crash; the pool goes on", async () => {
  const { Fn, I32, moduleBytes } = await import("../src/kernels/wasm/emit.ts");
  const { Workers } = await import("../src/kernels/wasm/workers.ts");
  // boom(x): traps when x is odd (so the caller, claiming tasks too, may or may not hit one itself)
  const f = new Fn("boom", [I32]);
  f.get(0).i32(1).op(0x71).if(() => f.op(0x00)); // i32.and; unreachable
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true } as WebAssembly.MemoryDescriptor);
  const module = new WebAssembly.Module(moduleBytes([f], { initial: 1, maximum: 1, shared: true }));
  const pool = await Workers.create(module, mem, ["boom"], new WebAssembly.Instance(module, { env: { mem } }), 2);
  try {
    pool.run(Array.from({ length: 8 }, () => [0, 0] as [number, number])); // even: fine
    await new Promise((r) => setTimeout(r, 50));
    let threw = false;
    try {
      for (let i = 0; i < 20 && !threw; i++) {
        pool.run(Array.from({ length: 64 }, (_, k) => [0, k] as [number, number]));
        await new Promise((r) => setTimeout(r, 20)); // let a worker's error event arrive
      }
    } catch {
      threw = true;
    }
    assert.ok(threw, "no error from a trapping kernel");
    // and the pool still works afterwards
    pool.run(Array.from({ length: 64 }, () => [0, 2] as [number, number]));
  } finally {
    pool.close();
  }
});

S("strided convolutions' input gradient by stride phases: strides 2 and 3, filters narrower than the stride, padding, groups, one job per image or phases of tasks", async () => {
  const cases: [number[], number[], T.ConvOptions][] = [
    [[2, 3, 9, 8], [4, 3, 3, 3], { stride: 2, padding: 1 }], [[1, 2, 7, 7], [3, 2, 1, 1], { stride: 2 }],
    [[2, 4, 10, 11], [6, 2, 3, 2], { stride: 3, padding: 2, groups: 2 }], [[1, 3, 8, 8], [2, 3, 4, 4], { stride: 2, padding: 1 }],
    [[3, 2, 5, 6], [2, 2, 2, 3], { stride: 3 }], [[64, 16, 14, 14], [32, 16, 3, 3], { stride: 2, padding: 1 }],
    // enough images for one job per image (8 or more at 2 threads), with phases that have no taps
    [[8, 3, 9, 9], [4, 3, 1, 1], { stride: 2 }], [[9, 2, 8, 7], [3, 2, 2, 2], { stride: 3, padding: 1 }], [[4, 6, 9, 9], [4, 3, 3, 3], { stride: 2, padding: 1, groups: 2 }],
  ];
  for (const [sx, sw, o] of cases) await compare(wb, `conv ${JSON.stringify(o)}`, (x, w) => T.conv2d(x, w, o), [sx, sw], { tol: 1e-4 });
});

S("one thread and several give the same bits", () => {
  const g = new T.Generator(7);
  const a = T.randn(g, [300, 257]), b = T.randn(g, [257, 190]);
  const x = T.randn(g, [4, 16, 20, 20]), w = T.randn(g, [24, 16, 3, 3]), gy = T.randn(g, [4, 24, 20, 20]);
  const on = (be: typeof wb) => {
    const t = (v: T.Tensor) => T.tensor(v.dataSync(), v.shape, { backend: be });
    const o = { padding: 1 };
    return [T.matmul(t(a), t(b)), T.conv2d(t(x), t(w), o), T.conv2dInputGrad(t(gy), t(w), x.shape, o), T.conv2dWeightGrad(t(x), t(gy), w.shape, o)].map((r) => r.dataSync());
  };
  const [r1, r2] = [on(one), on(wb)];
  r1.forEach((v, i) => assert.ok(v.every((e, j) => Object.is(e, r2[i][j])), `result ${i} differs`));
});

S("memory stays flat over a loop of products and convolutions (8 channels in and out: the Winograd forward and input gradient)", () => {
  const g = new T.Generator(8);
  const x = T.randn(g, [8, 8, 12, 12], { backend: wb, requiresGrad: true }), w = T.randn(g, [8, 8, 3, 3], { backend: wb, requiresGrad: true });
  const step = () => T.tidy(() => {
    const y = T.relu(T.conv2d(x, w, { padding: 1 }));
    const z = T.matmul(T.reshape(y, [8, -1]), T.reshape(T.transpose(T.reshape(y, [8, -1])), [-1, 8]));
    T.grad(T.sum(z), [x, w]).forEach((t) => t!.dataSync());
  });
  step();
  step();
  const before = wb.memoryBytes;
  for (let i = 0; i < 20; i++) step();
  assert.is(wb.memoryBytes, before);
  assert.ok(winogradFits({ N: 8, Cin: 8, H: 12, W: 12, Cout: 8, KH: 3, KW: 3, stride: 1, pad: 1, groups: 1, OH: 12, OW: 12 }), "the loop's convolution takes Winograd");
});

/** A model's per-example NLL and the gradient of its sum w.r.t. every parameter, on one backend. */
function modelGrads(make: (be: typeof T.cpu | typeof wb) => { m: { nll(x: T.Tensor): T.Tensor; parameters(): T.Tensor[]; initialize?(x: T.Tensor): void }; x: T.Tensor }, be: typeof T.cpu | typeof wb) {
  const { m, x } = make(be);
  m.initialize?.(x);
  const nll = m.nll(x);
  const gs = T.grad(T.sum(nll), m.parameters());
  return [nll.dataSync(), ...gs.map((g) => g!.dataSync())];
}

/**
 * An op of three inputs (x, w, b) on the wasm backend, with the backend method `hide` present or
 * (composed) hidden by an own property, so the autograd composes it on the same backend: its
 * values, the three gradients of sum(y * sin) and a second order (d/d(x, w, b) of the gradients'
 * squares summed; empty where nothing depends on an input).
 */
function valuesAndGrads(hide: string, composed: boolean, data: [ArrayLike<number>, number[]][], op: (x: T.Tensor, w: T.Tensor, b: T.Tensor) => T.Tensor): number[][] {
  const restore = hideOps(wb, composed ? [hide] : []);
  try {
    const [x, w, b] = data.map(([v, shape]) => T.tensor(v, shape, { backend: wb, requiresGrad: true }));
    const y = op(x, w, b);
    const gy = T.tensor(Array.from({ length: y.size }, (_, i) => Math.sin(i + 1)), y.shape, { backend: wb });
    const [gx, gw, gb] = T.grad(T.sum(T.mul(y, gy)), [x, w, b], { createGraph: true });
    const second = T.grad(T.add(T.add(T.sum(T.square(gx!)), T.sum(T.square(gw!))), T.sum(T.square(gb!))), [x, w, b]);
    return [y, gx, gw, gb, ...second].map((t) => t ? Array.from(t.dataSync()) : []);
  } finally {
    restore();
  }
}

/** Counts the wasm backend's fused convolution calls (conv2dBias) until restore(); `proto`/`fused` to break it on purpose. */
function countFused() {
  const proto = Object.getPrototypeOf(wb) as { conv2dBias: (...a: unknown[]) => unknown };
  const fused = proto.conv2dBias, n = { calls: 0 };
  proto.conv2dBias = function (this: unknown, ...a: unknown[]) {
    n.calls++;
    return fused.apply(this, a);
  };
  return { n, proto, fused, restore: () => { proto.conv2dBias = fused; } };
}

S("a convolution with its bias and activation in one op (conv2dBias: the epilogue in the copy out; for a ReLU only its output, one node) equals the composed ops bit for bit: values, every gradient and second-order gradients, on odd, size-1, short-row, strided, grouped, in-place 1x1 and threaded shapes", () => {
  const { n, proto, fused, restore } = countFused();
  const cases: [number[], number, number, T.ConvOptions][] = [ // x shape, Cout, k, options
    [[2, 3, 5, 7], 4, 3, { padding: 1 }], // odd sizes, rows past a vector
    [[1, 1, 1, 1], 1, 1, {}], // size 1: one lane
    [[2, 2, 3, 2], 5, 3, { padding: 1 }], // rows of 2 and 3 floats: lanes of the vector code
    [[3, 4, 9, 5], 6, 3, { stride: 2, padding: 1, groups: 2 }], // strided, grouped: the bias by group
    [[2, 32, 7, 7], 8, 1, {}], // 1x1 read in place
    [[64, 2, 14, 14], 32, 3, { padding: 1 }], // the Glow coupling's first layer, threaded
    [[2, 16, 5, 7], 17, 3, { padding: 1 }], // Winograd: odd sizes, its result blocks' copy out
    [[9, 16, 7, 7], 16, 3, { padding: 1 }], // Winograd: four images a band
  ];
  try {
    for (const [sx, Cout, k, o] of cases) {
      for (const act of ["none", "relu", "silu"] as const) {
        const g = new T.Generator(sx.reduce((p, q) => p * 7 + q, Cout));
        const sw = [Cout, sx[1] / (o.groups ?? 1), k, k];
        const xs = T.randn(g, sx, { backend: T.cpu }).dataSync(), ws = T.randn(g, sw, { backend: T.cpu }).dataSync(), bs = T.randn(g, [Cout], { backend: T.cpu }).dataSync();
        const run = (composed: boolean) => valuesAndGrads("conv2dBias", composed, [[xs, sx], [ws, sw], [bs, [Cout]]], (x, w, b) => T.conv2dBias(x, w, b, { ...o, act }));
        const before = n.calls, f = run(false);
        assert.ok(n.calls > before, "the fused op ran");
        const c = run(true);
        ["y", "dx", "dw", "db", "d2x", "d2w", "d2b"].forEach((name, i) => {
          assert.ok(i < 4 ? f[i].length > 0 : f[i].length === c[i].length, `${JSON.stringify([sx, Cout, k, o])} ${act}: ${name} missing`);
          assert.ok(f[i].every(Number.isFinite), `${JSON.stringify([sx, Cout, k, o])} ${act}: poison or a non-finite value left in ${name}`);
          const at = f[i].findIndex((v, j) => !Object.is(v, c[i][j]));
          assert.ok(at < 0, `${JSON.stringify([sx, Cout, k, o])} ${act}: ${name}[${at}] is ${f[i][at]} fused, ${c[i][at]} composed`);
        });
      }
    }
    // a backend that breaks the contract (no activation values; no pre-activation but for a ReLU)
    // is an error, not a tensor without storage
    proto.conv2dBias = function (this: unknown, ...a: unknown[]) {
      const r = fused.apply(this, a) as { pre: unknown; y: unknown };
      return { pre: r.pre, y: null };
    };
    const x = T.ones([1, 1, 3, 3], { backend: wb }), w = T.ones([2, 1, 1, 1], { backend: wb }), b = T.zeros([2], { backend: wb });
    assert.throws(() => T.conv2dBias(x, w, b, { act: "relu" }), /returned no relu values/);
    assert.throws(() => T.conv2dBias(x, w, b, { act: "silu" }), /returned no silu values/);
    proto.conv2dBias = function (this: unknown, ...a: unknown[]) {
      const r = fused.apply(this, a) as { pre: unknown; y: unknown };
      return { pre: null, y: r.y };
    };
    assert.throws(() => T.conv2dBias(x, w, b, { act: "silu" }), /returned no pre-activation for silu/);
  } finally {
    restore();
  }
});

/** Counts the wasm backend's groupNormAffine calls until restore(), and those on a per-group pass's folded batch (N = `folded`). */
function countGroupNorm(folded = -1) {
  const proto = Object.getPrototypeOf(wb) as { groupNormAffine: (...a: unknown[]) => unknown };
  const fused = proto.groupNormAffine, n = { calls: 0, folded: 0 };
  proto.groupNormAffine = function (this: unknown, ...a: unknown[]) {
    n.calls++;
    if (a[1] === folded) n.folded++;
    return fused.apply(this, a);
  };
  return { n, proto, fused, restore: () => { proto.groupNormAffine = fused; } };
}

S("GroupNorm with its affine and activation in one op (groupNormAffine: ga_<act> right after gn_fwd) equals the composed ops bit for bit: values, every gradient and second-order gradients, on odd, size-1, rank-2, short-plane and threaded shapes; a backend that returns no activation values is an error", () => {
  const { n, proto, fused, restore } = countGroupNorm();
  const cases: [number[], number][] = [ // x shape, channel groups
    [[2, 4, 3, 5], 2], // odd planes (15 floats: vectors, the last overlapping)
    [[1, 1, 1, 1], 1], // size 1: one lane
    [[3, 6, 1, 2], 3], // planes of 2 floats: lanes of the vector code
    [[4, 6], 2], // rank 2: planes of one float
    [[2, 8, 7, 7], 4], // the U-Net's 7x7 planes
    [[32, 16, 28, 28], 8], // the U-Net's first level at batch 32: threaded, ranges of rows
    [[7, 6, 40, 41], 3], // threaded, ranges of rows starting inside an image (the channel index wraps)
  ];
  try {
    for (const [sx, G] of cases) {
      for (const act of ["none", "relu", "silu"] as const) {
        const g = new T.Generator(sx.reduce((p, q) => p * 7 + q, G)), C = sx[1];
        const xs = T.randn(g, sx, { backend: T.cpu }).dataSync(), ws = T.randn(g, [C], { backend: T.cpu }).dataSync(), bs = T.randn(g, [C], { backend: T.cpu }).dataSync();
        const run = (composed: boolean) => valuesAndGrads("groupNormAffine", composed, [[xs, sx], [ws, [C]], [bs, [C]]], (x, w, b) => T.groupNorm(x, G, w, b, 1e-5, act));
        const before = n.calls, f = run(false);
        assert.ok(n.calls > before, `${JSON.stringify(sx)} ${act}: the fused op ran`);
        const c = run(true);
        ["y", "dx", "dw", "db", "d2x", "d2w", "d2b"].forEach((name, i) => {
          assert.ok(i < 4 ? f[i].length > 0 : f[i].length === c[i].length, `${JSON.stringify(sx)} ${act}: ${name} missing`);
          assert.ok(f[i].every(Number.isFinite), `${JSON.stringify(sx)} ${act}: poison or a non-finite value left in ${name}`);
          const at = f[i].findIndex((v, j) => !Object.is(v, c[i][j]));
          assert.ok(at < 0, `${JSON.stringify(sx)} ${act}: ${name}[${at}] is ${f[i][at]} fused, ${c[i][at]} composed`);
        });
      }
    }
    proto.groupNormAffine = function (this: unknown, ...a: unknown[]) {
      const r = fused.apply(this, a) as { out: unknown };
      return { ...r, out: null };
    };
    const x = T.ones([1, 2, 3, 3], { backend: wb }), w = T.ones([2], { backend: wb }), b = T.zeros([2], { backend: wb });
    assert.throws(() => T.groupNorm(x, 1, w, b, 1e-5, "silu"), /returned no silu values/);
  } finally {
    restore();
  }
});

S("groupNormAffine in a per-group pass (each group one image, the weight and bias per-group copies: one op over the folded batch with the shared ones) gives the composed ops' per-group gradients and features bit for bit (a small U-Net, eps-loss at t = 1)", async () => {
  const G = 5;
  const { n, restore } = countGroupNorm(G);
  try {
    const m = perturbed(new Diffusion(diffusionConfig({ image: [1, 4, 4], dim: 8, dimMults: [1, 2], resBlocks: 1, groups: 2, steps: 50 }), { backend: wb, gen: new T.Generator(11) }), 300);
    m.eval();
    const x = T.rand(new T.Generator(12), [G, 1, 4, 4], { backend: wb, low: -1, high: 1 });
    const o = m.objective("l1-t1"), noise = drawsOf(m, o, G, new T.Generator(13));
    const { f, names } = await fusedPerGroupPassMatchesComposed(m, o, x, noise, ["groupNormAffine"]);
    assert.ok(n.folded >= 2, `the fused op ran on the folded batch (${n.folded} calls)`);
    assert.ok(f[names.indexOf("unet.down.0.0.norm1.weight")].some((v) => v !== 0), "a GroupNorm weight's per-group gradient is not all zeros");
  } finally {
    restore();
  }
});

S("g times an activation's derivative in one op (mulUnary: mu_<op>, the backward of silu and softplus) equals mul(g, unary(op, x)) bit for bit: values, both gradients and second-order gradients, at lengths 1 to past the threaded split, with NaN, infinities, signed zeros, denormals and large arguments; grouped operands compose", () => {
  const proto = Object.getPrototypeOf(wb) as { mulUnary: (...a: unknown[]) => unknown };
  const fused = proto.mulUnary, n = { calls: 0 };
  proto.mulUnary = function (this: unknown, ...a: unknown[]) {
    const r = fused.apply(this, a);
    if (r) n.calls++; // a fused result (null: the caller composes)
    return r;
  };
  const special = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 100, -100, 88.8, -87.5, 20, -20];
  try {
    for (const size of [1, 3, 4, 5, 63, 64, 65, 1001, 70001]) {
      for (const op of ["siluGrad", "sigmoid", "exp", "softplus", "silu"] as const) {
        const xs = Array.from({ length: size }, (_, i) => i < special.length && size > 20 ? special[i] : 4 * Math.sin(i * 1.7 + size)), gs = Array.from({ length: size }, (_, i) => Math.cos(i * 0.3 + 1));
        const run = (composed: boolean) => {
          if (composed) (wb as unknown as Record<string, unknown>).mulUnary = undefined;
          try {
            const g = T.tensor(gs, [size], { backend: wb, requiresGrad: true }), x = T.tensor(xs, [size], { backend: wb, requiresGrad: true });
            const y = T.mulUnary(g, op, x);
            const w = T.tensor(Array.from({ length: size }, (_, i) => Math.sin(i + 2)), [size], { backend: wb });
            const [dg, dx] = T.grad(T.sum(T.mul(y, w)), [g, x], { createGraph: true });
            // the second order on finite values only (NaN and infinities propagate into every sum)
            const fin = T.tensor(xs.map((v) => Number.isFinite(v) && Math.abs(v) < 50 ? 1 : 0), [size], { backend: wb });
            const second = T.grad(T.add(T.sum(T.mul(T.square(dg!), fin)), T.sum(T.mul(T.square(dx!), fin))), [g, x]);
            return [y, dg, dx, ...second].map((t) => t!.dataSync());
          } finally {
            if (composed) delete (wb as unknown as Record<string, unknown>).mulUnary;
          }
        };
        const before = n.calls, f = run(false);
        assert.ok(n.calls > before, `${op} ${size}: the fused op ran`);
        const c = run(true);
        ["y", "dg", "dx", "d2g", "d2x"].forEach((name, i) => {
          const at = f[i].findIndex((v, j) => !Object.is(v, c[i][j]));
          assert.ok(at < 0, `${op} at length ${size}: ${name}[${at}] is ${f[i][at]} fused, ${c[i][at]} composed (x = ${xs[at]})`);
        });
        assert.ok(f[0].some((v) => v !== 0 && Number.isFinite(v)), `${op} ${size}: values that are not all zero`);
      }
    }
    // the per-group pass's operands (grouped) and float64 compose
    const before = n.calls;
    const x = T.batch(T.tensor([1, 2, 3, 4], [2, 2], { backend: wb })), g = T.batch(T.tensor([1, 1, 1, 1], [2, 2], { backend: wb }));
    const y = T.mulUnary(g, "siluGrad", x);
    assert.equal([...T.unbatch(y).dataSync()], [...T.mul(T.tensor([1, 1, 1, 1], [2, 2], { backend: wb }), T.unary("siluGrad", T.tensor([1, 2, 3, 4], [2, 2], { backend: wb }))).dataSync()]);
    assert.is(n.calls, before, "grouped operands: composed");
  } finally {
    proto.mulUnary = fused;
  }
});

/** Counts the calls of one of the wasm backend's fused ops until restore(). */
function countOp(name: "conv2dInputGradTimes") {
  const proto = Object.getPrototypeOf(wb) as Record<string, (...a: unknown[]) => unknown>;
  const fused = proto[name], n = { calls: 0, fused: 0 };
  proto[name] = function (this: unknown, ...a: unknown[]) {
    n.calls++;
    const r = fused.apply(this, a);
    if (r) n.fused++;
    return r;
  };
  return { n, restore: () => { proto[name] = fused; } };
}
/** The values of `run` with the backend's op `name` hidden (the composed path), then restored. */
function composedRun<R>(name: string, run: () => R): R {
  (wb as unknown as Record<string, unknown>)[name] = undefined;
  try {
    return run();
  } finally {
    delete (wb as unknown as Record<string, unknown>)[name];
  }
}
const firstDiff = (f: ArrayLike<number>, c: ArrayLike<number>) => {
  if (f.length !== c.length) return -2;
  for (let i = 0; i < f.length; i++) if (!Object.is(f[i], c[i])) return i;
  return -1;
};

S("an input gradient times an activation's derivative in its copy out (conv2dInputGradTimes: ed_relu, ed_silu) equals reluMask(dx, z) and mulUnary(dx, siluGrad, z) bit for bit, on odd, size-1, short-row, grouped, in-place 1x1 and threaded shapes, with poisoned outputs; a strided convolution composes", () => {
  const cases: [number[], number, number, T.ConvOptions][] = [ // x shape, Cout, k, options
    [[2, 3, 5, 7], 4, 3, { padding: 1 }],
    [[1, 1, 1, 1], 1, 1, {}],
    [[2, 2, 3, 2], 5, 3, { padding: 1 }], // rows of 2 and 3 floats: one lane of the vector code
    [[3, 4, 9, 5], 6, 3, { padding: 1, groups: 2 }],
    [[2, 32, 7, 7], 8, 1, {}], // 1x1 read in place
    [[64, 32, 14, 14], 4, 3, { padding: 1 }], // the Glow coupling's last layer, threaded
    [[2, 17, 5, 7], 16, 3, { padding: 1 }], // Winograd: odd sizes, its result blocks' copy out
    [[9, 16, 7, 7], 16, 3, { padding: 1 }], // Winograd: four images a band
    [[3, 4, 9, 5], 6, 3, { stride: 2, padding: 1 }], // strided: null, composed
  ];
  for (const [sx, Cout, k, o] of cases) {
    const g = new T.Generator(sx.reduce((p, q) => p * 5 + q, Cout + k));
    const sw = [Cout, sx[1] / (o.groups ?? 1), k, k];
    const gyT = T.conv2d(T.zeros(sx, { backend: T.cpu }), T.zeros(sw, { backend: T.cpu }), o);
    const gy = T.tensor(T.randn(g, gyT.shape, { backend: T.cpu }).dataSync(), gyT.shape, { backend: wb });
    const w = T.tensor(T.randn(g, sw, { backend: T.cpu }).dataSync(), sw, { backend: wb });
    const zs = T.randn(g, sx, { backend: T.cpu }).dataSync();
    if (zs.length > 8) [zs[0], zs[1], zs[2], zs[3], zs[4]] = [0, -0, NaN, 40, -40];
    const z = T.tensor(zs, sx, { backend: wb });
    for (const act of ["relu", "silu"] as const) {
      const f = T.noGrad(() => T.conv2dInputGradTimes(gy, w, sx, o, act, z));
      if ((o.stride ?? 1) > 1) {
        assert.is(f, null, "a strided convolution: null");
        continue;
      }
      const dx = T.conv2dInputGrad(gy, w, sx, o);
      const c = act === "relu" ? T.reluMask(dx, z) : T.mulUnary(dx, "siluGrad", z);
      const fv = f!.dataSync(), cv = c.dataSync();
      assert.ok(fv.every((v, i) => Number.isFinite(v) || Number.isNaN(zs[i])), `${JSON.stringify([sx, Cout, k, o])} ${act}: poison left`);
      const at = firstDiff(fv, cv);
      assert.ok(at === -1, `${JSON.stringify([sx, Cout, k, o])} ${act}: [${at}] is ${fv[at]} fused, ${cv[at]} composed`);
      if (fv.length > 8) assert.ok(fv.some((v) => v !== 0), `${JSON.stringify([sx, Cout, k, o])} ${act}: not all zero`);
    }
  }
  // under a recorded graph it is not differentiable: null, the engine composes
  const x = T.ones([1, 1, 3, 3], { backend: wb }), w = T.ones([1, 1, 1, 1], { backend: wb, requiresGrad: true });
  assert.is(T.conv2dInputGradTimes(T.ones([1, 1, 3, 3], { backend: wb }), w, [1, 1, 3, 3], {}, "relu", x), null);
});

S("the engine hands a convolution's input gradient to the ReLU or SiLU before it (Node.takes: one op) only where nothing else needs that gradient; the gradients equal the composed ops' bit for bit either way", () => {
  const { n, restore } = countOp("conv2dInputGradTimes");
  try {
    for (const act of ["relu", "silu"] as const) {
      const gen = new T.Generator(act === "relu" ? 3 : 4);
      const xs = T.randn(gen, [4, 3, 6, 5], { backend: T.cpu }).dataSync(), w1s = T.randn(gen, [8, 3, 3, 3], { backend: T.cpu }).dataSync();
      const w2s = T.randn(gen, [4, 8, 1, 1], { backend: T.cpu }).dataSync(), w3s = T.randn(gen, [2, 4, 3, 3], { backend: T.cpu }).dataSync();
      const b1s = T.randn(gen, [8], { backend: T.cpu }).dataSync();
      // x -> conv1 + b1, act -> conv2, act -> conv3 -> loss; `variant` changes who else needs h1's gradient
      const run = (variant: string) => {
        const x = T.tensor(xs, [4, 3, 6, 5], { backend: wb, requiresGrad: true }), w1 = T.tensor(w1s, [8, 3, 3, 3], { backend: wb, requiresGrad: true });
        const b1 = T.tensor(b1s, [8], { backend: wb, requiresGrad: true });
        const w2 = T.tensor(w2s, [4, 8, 1, 1], { backend: wb, requiresGrad: true }), w3 = T.tensor(w3s, [2, 4, 3, 3], { backend: wb, requiresGrad: true });
        const h1 = T.conv2dBias(x, w1, b1, { padding: 1, act });
        const seen: number[] = [];
        if (variant === "hook") h1.registerHook((g) => { seen.push(g.size); });
        if (variant === "retained") h1.retainGrad();
        const h2 = T.unary(act, T.conv2d(h1, w2));
        const y = T.conv2d(h2, w3, { padding: 1 });
        let loss = T.sum(T.mul(y, y));
        if (variant === "two uses") loss = T.add(loss, T.sum(T.mul(h1, 0.5)));
        if (variant === "retained" || variant === "backward") { // .grad of the leaves (and of h1, retained)
          loss.backward();
          return [x, w1, b1, w2, w3, ...variant === "retained" ? [h1] : []].map((t) => t.grad!.dataSync());
        }
        const wrt = variant === "asked" ? [x, w1, b1, w2, w3, h1] : [x, w1, b1, w2, w3];
        const gs = T.grad(loss, wrt, { createGraph: variant === "graph" });
        if (variant === "hook") assert.equal(seen, [h1.size], "the hook saw h1's gradient");
        return gs.map((t) => t!.dataSync());
      };
      // variant: how many input gradients the engine may hand over (h2's always; h1's only when alone)
      for (const [variant, fused] of [["plain", 2], ["backward", 2], ["hook", 1], ["retained", 1], ["asked", 1], ["two uses", 1], ["graph", 0]] as const) {
        const before = n.fused;
        const f = run(variant);
        assert.is(n.fused - before, fused, `${act} ${variant}: fused input gradients`);
        const c = composedRun("conv2dInputGradTimes", () => run(variant));
        f.forEach((v, i) => {
          const at = firstDiff(v, c[i]);
          assert.ok(at === -1, `${act} ${variant}: gradient ${i} [${at}] is ${v[at]} fused, ${c[i][at]} composed`);
        });
      }
    }
  } finally {
    restore();
  }
});

S("in the per-group pass (each group one image, per-group copies of the weights) the input gradient reaches the activation through the views between them (unbatch, batch, reshape pass it on uncomputed): handed over, the groups' gradients equal the composed ops' bit for bit", () => {
  const { n, restore } = countOp("conv2dInputGradTimes");
  try {
    for (const act of ["relu", "silu"] as const) {
      const G = 5, gen = new T.Generator(act === "relu" ? 8 : 9);
      const xs = T.randn(gen, [G, 1, 3, 6, 5], { backend: T.cpu }).dataSync(), w1s = T.randn(gen, [8, 3, 3, 3], { backend: T.cpu }).dataSync();
      const b1s = T.randn(gen, [8], { backend: T.cpu }).dataSync(), b2s = T.randn(gen, [4], { backend: T.cpu }).dataSync();
      const w2s = T.randn(gen, [4, 8, 1, 1], { backend: T.cpu }).dataSync(), w3s = T.randn(gen, [2, 4, 3, 3], { backend: T.cpu }).dataSync();
      const run = () => {
        const x0 = T.tensor(xs, [G, 1, 3, 6, 5], { backend: wb });
        const ws = [[w1s, [8, 3, 3, 3]], [b1s, [8]], [w2s, [4, 8, 1, 1]], [b2s, [4]], [w3s, [2, 4, 3, 3]]] as const;
        const leaves = ws.map(([v, sh]) => T.tensor(v, [...sh], { backend: wb, requiresGrad: true }));
        const [w1, b1, w2, b2, w3] = leaves.map((t) => T.groupCopy(t, G));
        const h1 = T.conv2dBias(T.batch(x0), w1, b1, { padding: 1, act });
        const h2 = T.conv2dBias(h1, w2, b2, { act });
        const y = T.conv2d(h2, w3, { padding: 1 });
        // per group: the sum of squares of its output; the gradients of every group's copies
        const per = T.sum(T.mul(y, y));
        const gs = T.grad(T.sum(T.unbatch(per)), [w1, b1, w2, b2, w3]);
        return gs.map((g) => T.unbatch(g!).dataSync());
      };
      const before = n.fused;
      const f = run();
      assert.is(n.fused - before, 2, `${act}: both activations' input gradients handed over`);
      const c = composedRun("conv2dInputGradTimes", run);
      f.forEach((v, i) => {
        const at = firstDiff(v, c[i]);
        assert.ok(at === -1, `${act}: gradient ${i} [${at}] is ${v[at]} fused, ${c[i][at]} composed`);
        assert.ok(v.some((e) => e !== 0));
      });
    }
  } finally {
    restore();
  }
});

S("the thread split weighs an element by its cost: exp, and sigmoid's mulUnary, on 25,088 floats (6 adds an element) are offered to every thread, an add on as many (1) is not, and the values do not depend on it", () => {
  const pool = wb.runtime.pool as unknown as { run: (jobs: Task[], parallel?: boolean) => void };
  const seen: boolean[] = [];
  pool.run = function (this: unknown, jobs: Task[], par?: boolean) {
    seen.push(par === true);
    return Workers.prototype.run.call(this as Workers, jobs, par);
  };
  try {
    const n = 25088, x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) * 8), g = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.3));
    const xd = wb.upload(x, "float32"), gd = wb.upload(g, "float32");
    const parallelOf = (f: () => unknown) => {
      seen.length = 0;
      wb.release(f() as Float32Array);
      return seen.length === 1 && seen[0];
    };
    assert.ok(parallelOf(() => wb.unary("exp", xd, n, "float32", 0)), "exp: every thread");
    assert.ok(parallelOf(() => wb.mulUnary(gd, "sigmoid", xd, n, 0, "float32")), "mulUnary sigmoid: every thread");
    assert.not.ok(parallelOf(() => wb.binary("add", xd, [n], gd, [n], [n], "float32")), "add: the caller alone");
    // each element by the same vector code: the same values on one thread, whose phase runs whole
    const a = wb.unary("exp", xd, n, "float32", 0) as Float32Array, b = one.unary("exp", one.upload(x, "float32"), n, "float32", 0) as Float32Array;
    assert.ok(a.every((v, i) => Object.is(v, b[i])), "exp: one thread and two agree to the bit");
    for (const d of [xd, gd, a]) wb.release(d);
  } finally {
    delete (pool as { run?: unknown }).run;
  }
});

S("the affine coupling's elementwise part in one op each way (affineCoupling: cpl_fwd, cpl_bwd) equals the composed ops bit for bit: yb, ls and both gradients, on odd, size-1 and threaded shapes with zeros, NaN, infinities and large values, batched (the per-group pass) too; second order (the composed rules written out) to rounding", () => {
  const cases: [number[], boolean][] = [[[3, 2, 5, 7], false], [[1, 1, 1, 1], false], [[2, 3, 1, 3], false], [[64, 4, 16, 16], false], [[64, 2, 14, 14], false], [[2, 2, 3, 5], true]];
  const special = [0, -0, NaN, Infinity, -Infinity, 100, -100, 30, -30, 1e-40];
  // the fused ops' results (not calls: a null result means the caller composed)
  const proto = Object.getPrototypeOf(wb) as Record<string, (...a: unknown[]) => unknown>;
  const kept = { affineCoupling: proto.affineCoupling, affineCouplingGrad: proto.affineCouplingGrad }, n = { affineCoupling: 0, affineCouplingGrad: 0 };
  // and of those, the calls whose phase was offered to every thread (the pool's run asked to go parallel)
  const threaded = { affineCoupling: 0, affineCouplingGrad: 0 };
  const pool = wb.runtime.pool as unknown as { run: (jobs: Task[], parallel?: boolean) => void };
  const poolRun = pool.run;
  let parallel = false;
  pool.run = function (this: unknown, jobs: Task[], par?: boolean) {
    parallel ||= par === true;
    return poolRun.call(this, jobs, par);
  };
  for (const k of ["affineCoupling", "affineCouplingGrad"] as const) {
    proto[k] = function (this: unknown, ...a: unknown[]) {
      parallel = false;
      const r = kept[k].apply(this, a);
      if (r) n[k]++;
      if (r && parallel) threaded[k]++;
      return r;
    };
  }
  try {
    for (const [sx, batched] of cases) {
      const [B, h, ...rest] = sx, so = [B, 2 * h, ...rest];
      const g = new T.Generator(sx.reduce((p, q) => p * 3 + q, 1));
      const xbs = T.randn(g, sx, { backend: T.cpu }).dataSync(), os = T.mulScalar(T.randn(g, so, { backend: T.cpu }), 3).dataSync();
      const ws = T.randn(g, so, { backend: T.cpu }).dataSync();
      if (xbs.length > 20) special.forEach((v, i) => { os[os.length / 2 + i] = v; os[i + 3] = v; });
      const run = (composed: boolean, second: boolean) => {
        const restore = hideOps(wb, composed ? ["affineCoupling", "affineCouplingGrad"] : []);
        try {
          const G = 3;
          const mk = (v: Float32Array | Float64Array, sh: number[]) => batched
            ? T.tensor(Array.from({ length: G }, () => [...v]).flat(), [G, ...sh], { backend: wb, requiresGrad: true })
            : T.tensor(v, sh, { backend: wb, requiresGrad: true });
          const xb = mk(xbs, sx), o = mk(os, so);
          const { yb, ls } = batched ? T.affineCoupling(T.batch(xb), T.batch(o), 2) : T.affineCoupling(xb, o, 2);
          const Y = T.concat([yb, ls], 1), w = T.tensor(batched ? Array.from({ length: 3 }, () => [...ws]).flat() : ws, batched ? [3, ...so] : so, { backend: wb });
          // a weighted sum of finite values only (NaN and infinities would spread through every sum)
          const loss = T.sum(T.mul(T.where(T.eq(T.unbatch(Y), T.unbatch(Y)), T.unbatch(Y), T.zerosLike(T.unbatch(Y))), w));
          const [dxb, dO] = T.grad(loss, [xb, o], { createGraph: second });
          if (!second) return [T.unbatch(Y), dxb, dO].map((t) => t!.dataSync());
          const fin = (t: T.Tensor) => T.where(T.eq(t, t), t, T.zerosLike(t));
          const [d2x, d2o] = T.grad(T.add(T.sum(T.square(fin(dxb!))), T.sum(T.square(fin(dO!)))), [xb, o]);
          return [d2x, d2o].map((t) => t!.dataSync());
        } finally {
          restore();
        }
      };
      const before = { ...n }, beforeThreaded = { ...threaded };
      const f = run(false, false);
      assert.ok(n.affineCoupling > before.affineCoupling && n.affineCouplingGrad > before.affineCouplingGrad, `${JSON.stringify(sx)}: both fused ops ran`);
      // the Glow's couplings at batch 64 ([64,2,14,14]: 25,088 floats a half) run on all threads:
      // an element costs 16 adds, so a phase of 4,096 elements is worth waking the workers for
      if (sx[0] === 64 && wb.threads > 1) {
        assert.ok(threaded.affineCoupling > beforeThreaded.affineCoupling && threaded.affineCouplingGrad > beforeThreaded.affineCouplingGrad, `${JSON.stringify(sx)}: both fused ops threaded (${JSON.stringify([beforeThreaded, threaded])})`);
      }
      const c = run(true, false);
      ["[yb; ls]", "dxb", "do"].forEach((name, i) => {
        const at = firstDiff(f[i], c[i]);
        assert.ok(at === -1, `${JSON.stringify(sx)}${batched ? " batched" : ""}: ${name}[${at}] is ${f[i][at]} fused, ${c[i][at]} composed`);
        assert.ok(f[i].some((v) => v !== 0 && Number.isFinite(v)));
      });
      const f2 = run(false, true), c2 = run(true, true);
      f2.forEach((v, i) => {
        let scale = 1e-30, diff = 0;
        v.forEach((a, j) => {
          const b = c2[i][j];
          if (!Number.isFinite(a) || !Number.isFinite(b)) return;
          scale = Math.max(scale, Math.abs(b));
          diff = Math.max(diff, Math.abs(a - b));
        });
        const err = diff / scale;
        assert.ok(err < 1e-5, `${JSON.stringify(sx)}${batched ? " batched" : ""}: second order ${i} off by ${err} of its scale`);
      });
    }
    // an offset that is not a float32 composes (the kernels add it as one; short arrays' addScalar in double)
    const xb = T.tensor([0.5, -1, 2], [1, 1, 1, 3], { backend: wb }), o = T.tensor([0.1, 0.2, -0.3, 1.5, -2, 0.25], [1, 2, 1, 3], { backend: wb });
    const before = n.affineCoupling;
    const third = T.affineCoupling(xb, o, 1 / 3);
    assert.is(n.affineCoupling, before, "offset 1/3: composed");
    const ref = composedRun("affineCoupling", () => T.affineCoupling(xb, o, 1 / 3));
    assert.equal([...third.yb.dataSync(), ...third.ls.dataSync()], [...ref.yb.dataSync(), ...ref.ls.dataSync()]);
    // the shapes it refuses
    const x = T.ones([2, 3, 4, 4], { backend: wb });
    assert.throws(() => T.affineCoupling(x, T.ones([2, 5, 4, 4], { backend: wb }), 2), /allowed: o with twice xb's channels/);
  } finally {
    Object.assign(proto, kept);
    delete (pool as { run?: unknown }).run;
  }
});

S("the per-group pass's convolution with bias and activation (each group one image, the weight and bias per-group copies: one fused op with the shared weight and bias) equals the composed ops: values and the images' and copies' gradients bit for bit, second-order gradients to rounding (the graph sums a tensor's second-order terms in another order); several images per group compose", () => {
  const { n, restore } = countFused();
  const cases: [number, number, number[], number, number, T.ConvOptions][] = [ // groups, images per group, image shape, Cout, k, options
    [3, 1, [2, 5, 7], 4, 3, { padding: 1 }],
    [5, 1, [4, 9, 5], 6, 3, { stride: 2, padding: 1, groups: 2 }],
    [64, 1, [2, 14, 14], 32, 3, { padding: 1 }], // the Glow coupling's first layer over 64 groups: threaded
    [2, 1, [1, 1, 1], 1, 1, {}],
    [3, 2, [2, 5, 7], 4, 3, { padding: 1 }], // two images per group: composed
  ];
  try {
    for (const [G, B, img, Cout, k, o] of cases) {
      for (const act of ["none", "relu", "silu"] as const) {
        const g = new T.Generator(G * 31 + B * 7 + Cout);
        const Cin = img[0], sw = [Cout, Cin / (o.groups ?? 1), k, k];
        const xs = T.randn(g, [G, B, ...img], { backend: T.cpu }).dataSync(), ws = T.randn(g, sw, { backend: T.cpu }).dataSync(), bs = T.randn(g, [Cout], { backend: T.cpu }).dataSync();
        const run = (composed: boolean) => {
          if (composed) (wb as unknown as Record<string, unknown>).conv2dBias = undefined;
          try {
            const x0 = T.tensor(xs, [G, B, ...img], { backend: wb, requiresGrad: true });
            const w = T.tensor(ws, sw, { backend: wb, requiresGrad: true }), b = T.tensor(bs, [Cout], { backend: wb, requiresGrad: true });
            const wc = T.groupCopy(w, G), bc = T.groupCopy(b, G);
            const y = T.conv2dBias(T.batch(x0), wc, bc, { ...o, act });
            const gy = T.tensor(Array.from({ length: G * y.size }, (_, i) => Math.cos(i + 1)), [G, ...y.shape], { backend: wb });
            const [gx, gw, gb] = T.grad(T.sum(T.mul(T.unbatch(y), gy)), [x0, wc, bc], { createGraph: true });
            const second = T.grad(T.add(T.add(T.sum(T.square(gx!)), T.sum(T.square(T.unbatch(gw!)))), T.sum(T.square(T.unbatch(gb!)))), [x0, w, b]);
            return [T.unbatch(y), gx, T.unbatch(gw!), T.unbatch(gb!), ...second].map((t) => t?.dataSync() ?? new Float32Array(0));
          } finally {
            if (composed) delete (wb as unknown as Record<string, unknown>).conv2dBias;
          }
        };
        const before = n.calls, f = run(false);
        assert.is(n.calls > before, B === 1, `${G}x${B} ${act}: the fused op ran ${n.calls - before} times`);
        const c = run(true);
        ["y", "dx", "dw per group", "db per group", "d2x", "d2w", "d2b"].forEach((name, i) => {
          assert.ok(i < 4 ? f[i].length > 0 : f[i].length === c[i].length, `${G}x${B} ${act}: ${name} missing`);
          assert.ok(f[i].every(Number.isFinite), `${G}x${B} ${act}: poison or a non-finite value left in ${name}`);
          if (i < 4) {
            const at = f[i].findIndex((v, j) => !Object.is(v, c[i][j]));
            assert.ok(at < 0, `${G}x${B} ${JSON.stringify(o)} ${act}: ${name}[${at}] is ${f[i][at]} fused, ${c[i][at]} composed`);
          } else if (f[i].length) {
            const scale = Math.max(...Array.from(c[i], Math.abs));
            const diff = Math.max(...Array.from(f[i], (v, j) => Math.abs(v - c[i][j]))), e = diff === 0 ? 0 : diff / scale;
            assert.ok(e < 1e-6, `${G}x${B} ${JSON.stringify(o)} ${act}: ${name} differs by ${e} of its largest value ${scale}`);
          }
        });
      }
    }
  } finally {
    restore();
  }
});

S("whole models: Glow and VAE NLL and every parameter gradient match the cpu backend", () => {
  const data = (be: typeof wb | typeof T.cpu, shape: number[]) => T.tensor(T.rand(new T.Generator(21), shape, { low: -0.5, high: 0.5, backend: T.cpu }).dataSync(), shape, { backend: be });
  const glow = (be: typeof wb | typeof T.cpu) => ({
    m: new Glow({ levels: 2, steps: 2, hidden: 16, image: [1, 8, 8] }, { backend: be, gen: new T.Generator(13) }),
    x: data(be, [5, 1, 8, 8]),
  });
  const vae = (be: typeof wb | typeof T.cpu) => ({
    m: new VAE({ latent: 4, channels: [8, 16], outChannels: 4 }, { backend: be, gen: new T.Generator(14) }),
    x: T.tensor(Float32Array.from({ length: 3 * 28 * 28 }, (_, i) => ((i * 37) % 256) / 255), [3, 1, 28, 28], { backend: be }),
  });
  for (const [name, make] of [["glow", glow], ["vae", vae]] as const) {
    const [c, w] = [modelGrads(make, T.cpu), modelGrads(make, wb)];
    c.forEach((v, i) => {
      const scale = Math.max(1, ...Array.from(v, Math.abs));
      const e = maxRelErr(w[i].map((q) => q / scale), v.map((q) => q / scale));
      assert.ok(e < 1e-4, `${name} ${i === 0 ? "nll" : `grad ${i - 1}`}: err ${e} (scale ${scale})`);
    });
  }
});

S.after(() => {
  wb.close();
  one.close();
});

S.run();
