// Every WebGPU kernel against the CPU backend on random shapes (odd, size 1, not multiples of
// the tile), with output buffers poisoned with NaN so an unwritten element fails.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { MATMUL_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS } from "../shaders/conv2d.wgsl.ts";
import { STRIDED_VARIANTS } from "../src/kernels/webgpu/strided.ts";
import { PROFILE_BATCH } from "../src/kernels/webgpu/profiler.ts";
import { gpuTest, maxRelErr, webgpu, withVariants } from "./helpers.ts";

const gpu = await webgpu();
const S = suite("webgpu kernels vs cpu (float32, poisoned outputs)");
const G = gpuTest(S, gpu);
const TOL = 2e-5;

function pair(seed: number, shape: number[], lo = -1, hi = 1): [T.Tensor, T.Tensor] {
  const c = T.rand(new T.Generator(seed), shape, { low: lo, high: hi, backend: T.cpu });
  return [c, T.tensor(c.dataSync(), shape, { backend: gpu! })];
}

/** Runs f on both backends, forward and (if grads) the gradient of sum(f * r) w.r.t. the inputs. */
async function compare(name: string, f: (...xs: T.Tensor[]) => T.Tensor, shapes: number[][], opts: { lo?: number; hi?: number; grads?: boolean; tol?: number } = {}) {
  const ins = shapes.map((s, i) => pair(1000 + i * 7 + s.length, s, opts.lo ?? -1, opts.hi ?? 1));
  const run = async (k: 0 | 1) => {
    const xs = await Promise.all(ins.map(async (p) => T.tensor(await p[k].data(), p[k].shape, { backend: p[k].backend, requiresGrad: opts.grads !== false })));
    const y = f(...xs);
    const out = [await y.data()];
    if (opts.grads !== false && y.requiresGrad) {
      const rc = T.rand(new T.Generator(5), [...y.shape], { low: 0.5, high: 1.5, backend: T.cpu });
      const r = T.tensor(rc.dataSync(), y.shape, { backend: y.backend });
      const gs = T.grad(T.sum(T.mul(y, r)), xs);
      for (const g of gs) out.push(g ? await g.data() : new Float32Array(0));
    }
    return out;
  };
  const [c, g] = [await run(0), await run(1)];
  for (let i = 0; i < c.length; i++) {
    const e = maxRelErr(g[i], c[i]);
    assert.ok(e < (opts.tol ?? TOL), `${name}: ${i === 0 ? "forward" : `grad ${i - 1}`} err ${e} (shapes ${JSON.stringify(shapes)})`);
  }
}

S.before(() => { if (gpu) gpu.rt.poison = true; });
S.after(() => { if (gpu) gpu.rt.poison = false; });

G("poisoning catches an element a kernel did not write", async (gpu) => {
  const out = gpu.rt.alloc(10);
  // A fill told to write only 7 of 10 elements.
  const { FILL, fillShader } = await import("../shaders/elementwise.wgsl.ts");
  const { f32bits } = await import("../shaders/preamble.ts");
  gpu.rt.dispatch("fill", fillShader, FILL.pack({ n: 7, value: f32bits(1) }), [], out, 1);
  const d = await gpu.rt.read(out, 10);
  gpu.rt.free(out);
  assert.ok(Number.isNaN(d[9]) && d[0] === 1);
});

G("the profiler counts every dispatch by kernel, over more than one query batch", async (gpu) => {
  if (!gpu.rt.device.features.has("timestamp-query")) {
    assert.throws(() => gpu.rt.startProfile(), /timestamp-query/);
    return;
  }
  const a = T.ones([300], { backend: gpu });
  gpu.rt.startProfile();
  let rows;
  try {
    for (let i = 0; i < PROFILE_BATCH + 44; i++) T.tidy(() => void T.exp(a));
  } finally {
    rows = await gpu.rt.stopProfile();
    a.dispose();
  }
  const exp = rows.find((r) => r.kernel === "unary:exp");
  assert.is(exp?.count, PROFILE_BATCH + 44);
  assert.ok(rows.every((r) => r.ms >= 0 && Number.isFinite(r.ms)) && exp!.ms > 0, JSON.stringify(rows));
  // Stopped: nothing more is timed.
  T.tidy(() => void T.exp(T.ones([3], { backend: gpu })));
  assert.equal(await gpu.rt.stopProfile(), []);
});

G("unary ops", async (gpu) => {
  const ops: [string, (x: T.Tensor) => T.Tensor, number, number][] = [
    ["neg", T.neg, -3, 3], ["exp", T.exp, -3, 3], ["log", T.log, 0.1, 3], ["sqrt", T.sqrt, 0.1, 3], ["abs", T.abs, -3, 3],
    ["relu", T.relu, -3, 3], ["leakyRelu", (x) => T.leakyRelu(x, 0.1), -3, 3], ["sigmoid", T.sigmoid, -30, 30],
    ["logSigmoid", T.logSigmoid, -30, 30], ["softplus", T.softplus, -30, 30], ["tanh", T.tanh, -20, 20], ["silu", T.silu, -5, 5],
    ["square", T.square, -3, 3], ["recip", T.recip, 0.5, 3], ["pow 3", (x) => T.powScalar(x, 3), -2, 2],
    ["pow 0.5", (x) => T.powScalar(x, 0.5), 0.1, 2], ["clamp", (x) => T.clamp(x, -0.3, 0.4), -1, 1],
  ];
  for (const [name, f, lo, hi] of ops) for (const s of [[1], [37], [5, 67]]) await compare(name, f, [s], { lo, hi, tol: 1e-4 });
});

G("binary ops with broadcasting, where, compare", async (gpu) => {
  const shapes: [number[], number[]][] = [[[1], [1]], [[33], [33]], [[3, 5], [5]], [[2, 1, 7], [3, 1]], [[1], [4, 3]], [[2, 3, 4, 5, 2], [3, 1, 5, 1]]];
  const ops: [string, (a: T.Tensor, b: T.Tensor) => T.Tensor][] = [
    ["add", T.add], ["sub", T.sub], ["mul", T.mul], ["div", T.div], ["maximum", T.maximum], ["minimum", T.minimum],
    ["where", (a, b) => T.where(T.gt(a, 0), a, b)], ["lt", (a, b) => T.mul(T.lt(a, b), a)],
    ["gt", (a, b) => T.mul(T.gt(a, b), b)], ["ge", (a, b) => T.mul(T.ge(a, b), b)], ["le", (a, b) => T.mul(T.le(a, b), a)],
    // eq on operands that are equal where a >= b (maximum returns a there) and differ elsewhere.
    ["eq", (a, b) => T.mul(T.eq(a, T.maximum(a, b)), b)],
    ["reluMask", (a, b) => T.reluMask(a, T.addScalar(b, -1.25))],
  ];
  for (const [name, f] of ops) for (const [sa, sb] of shapes) await compare(name, f, [sa, sb], { lo: 0.5, hi: 2 });
});

G("reductions: sum, max, mean, logsumexp, both kernel variants", async (gpu) => {
  const cases: [number[], number | number[] | undefined][] = [[[1], undefined], [[1000], undefined], [[3, 257], 1], [[300, 3], 0], [[2, 3, 5, 7], [1, 3]], [[4, 1, 3], [0, 2]], [[3, 5], []]];
  for (const variant of ["loop", "wide", "auto"] as const) {
    await withVariants(gpu, { reduce: variant }, async () => {
      for (const [sh, ax] of cases) {
        await compare(`sum ${variant}`, (x) => T.sum(x, ax), [sh], { tol: 1e-4 });
        await compare(`sumSquares ${variant}`, (x) => T.sumSquares(x, ax), [sh], { tol: 1e-4 });
        await compare(`max ${variant}`, (x) => T.max(x, ax), [sh]);
        await compare(`logsumexp ${variant}`, (x) => T.logsumexp(x, ax), [sh], { tol: 1e-4 });
      }
    });
  }
});

G("strided copies: permute, slice, pad, flip, broadcast, concat", async (gpu) => {
  const f = (x: T.Tensor) => T.concat([
    T.reshape(T.permute(x, [2, 0, 1]), [-1]),
    T.reshape(T.slice(x, [1, 0, 2], [2, 3, 5]), [-1]),
    T.reshape(T.pad(x, [[1, 0], [0, 2], [3, 1]], 0.25), [-1]),
    T.reshape(T.flip(x, [0, 2]), [-1]),
    T.reshape(T.broadcastTo(T.slice(x, [0, 0, 0], [1, 3, 5]), [3, 2, 3, 5]), [-1]),
  ], 0);
  for (const variant of STRIDED_VARIANTS) {
    await withVariants(gpu, { strided: variant }, async () => {
      await compare(`movement ${variant}`, f, [[2, 3, 5]]);
      await compare(`movement size 1 ${variant}`, (x) => T.pad(T.flip(x, [0]), [[2, 1]], -1), [[1]]);
      // Long contiguous runs (what auto sends to buffer copies): leading-axis slices and broadcasts.
      await compare(`runs ${variant}`, (x) => T.concat([
        T.reshape(T.slice(x, [1, 0], [3, 1100]), [-1]),
        T.reshape(T.broadcastTo(T.reshape(x, [1, 3, 1100]), [5, 3, 1100]), [-1]),
        T.reshape(T.broadcastTo(T.reshape(T.slice(x, [2, 0], [3, 1100]), [1, 1, 1100]), [2, 3, 1100]), [-1]),
      ], 0), [[3, 1100]]);
      // Pads and slices along a single axis (fill + place, and take, outside the kernel variant).
      await compare(`pad one axis ${variant}`, (x) => T.concat([
        T.reshape(T.pad(x, [[0, 0], [2, 1], [0, 0]], 0.5), [-1]), T.reshape(T.pad(x, [[3, 0], [0, 0], [0, 0]]), [-1]),
        T.reshape(T.pad(x, [[0, 0], [0, 0], [0, 4]], -2), [-1]), T.reshape(T.slice(x, [0, 1, 0], [3, 2, 5]), [-1]),
        T.reshape(T.slice(x, [0, 0, 1], [3, 2, 4]), [-1]), T.reshape(T.slice(x, [1, 0, 0], [2, 2, 5]), [-1]),
      ], 0), [[3, 2, 5]]);
      await compare(`pad size 1 ${variant}`, (x) => T.pad(x, [[0, 0], [1, 0]], 7), [[1, 1]]);
      // Concatenation along middle and last axes, odd blocks, a size-1 part, long blocks.
      await compare(`concat ${variant}`, (a, b, c) => T.concat([a, b, c], 1), [[3, 2, 5], [3, 1, 5], [3, 4, 5]]);
      await compare(`concat last ${variant}`, (a, b) => T.concat([a, b], 2), [[2, 3, 1], [2, 3, 7]]);
      await compare(`concat long ${variant}`, (a, b) => T.concat([a, b], 1), [[2, 1030, 1], [2, 5, 1]]);
    });
  }
});

for (const variant of MATMUL_VARIANTS) {
  G(`matmul variant ${variant}: transposes, batch broadcast, odd sizes`, async (gpu) => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[1, 1], [1, 1], false, false], [[3, 5], [5, 7], false, false], [[65, 17], [17, 66], false, false],
      [[17, 65], [17, 130], true, false], [[67, 9], [131, 9], false, true], [[9, 64], [64, 9], true, true],
      [[3, 7, 5], [3, 5, 2], false, false], [[7, 5], [2, 5, 70], false, false], [[2, 70, 5], [3, 70], true, true],
      // vec4 columns for the rows kernels: fewer than one workgroup's (idle lanes return early), and just past one.
      [[2, 5, 12], [2, 12, 196], false, false], [[3, 9], [9, 516], false, false], [[4, 1], [1, 4], false, false],
    ];
    await withVariants(gpu, { matmul: variant }, async () => {
      for (const [sa, sb, ta, tb] of cases) await compare(`mm ${variant}`, (a, b) => T.mm(a, b, ta, tb), [sa, sb], { tol: 1e-4 });
    });
  });
}

for (const variant of CONV_VARIANTS) {
  G(`conv2d variant ${variant} and both backward kernels: stride, padding, groups`, async (gpu) => {
    const cases: [number[], number[], T.ConvOptions][] = [
      [[1, 1, 1, 1], [1, 1, 1, 1], {}], [[2, 3, 7, 5], [5, 3, 3, 3], { padding: 1 }],
      [[1, 4, 9, 8], [6, 2, 3, 3], { stride: 2, padding: 1, groups: 2 }], [[3, 2, 5, 5], [7, 2, 1, 1], {}],
      [[2, 6, 6, 7], [6, 1, 3, 3], { padding: 1, groups: 6 }], [[2, 3, 8, 8], [2, 3, 4, 4], { stride: 2, padding: 1 }],
      [[3, 4, 8, 8], [10, 2, 3, 3], { padding: 1, groups: 2 }],
      // 1x1 unpadded (gemm reads the input as its patch matrix), grouped and not, and a padded 1x1.
      [[2, 6, 3, 5], [9, 2, 1, 1], { groups: 3 }], [[1, 3, 4, 4], [2, 3, 1, 1], { padding: 1 }],
    ];
    // gemm runs on the matmul kernels: check it over each of them (per-group weights repeat across images).
    const mms = variant === "gemm" ? ["auto", "naive", "block4x8", "grouped8x8", "rows8x8", "rows16x4", "tiled"] as const : ["auto"] as const;
    for (const mm of mms) {
      await withVariants(gpu, { conv: variant, matmul: mm }, async () => {
        for (const [sx, sw, o] of cases) await compare(`conv2d ${variant}/${mm}`, (x, w) => T.conv2d(x, w, o), [sx, sw], { tol: 1e-4 });
      });
    }
  });
}

G("nn composites: groupNorm, avgPool2d, upsampleNearest", async (gpu) => {
  await compare("groupNorm", (x, w, b) => T.groupNorm(x, 2, w, b), [[2, 4, 3, 5], [4], [4]], { tol: 1e-4 });
  await compare("avgPool2d", (x) => T.avgPool2d(x, 2), [[2, 3, 4, 6]]);
  await compare("upsampleNearest", (x) => T.upsampleNearest(x), [[1, 2, 3, 5]]);
});

S.run();
