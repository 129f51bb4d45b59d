// Every WebGPU kernel against the CPU backend on random shapes (odd, size 1, not multiples of
// the tile), with output buffers poisoned with NaN so an unwritten element fails.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import type { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { MATMUL_VARIANTS } from "../shaders/matmul.wgsl.ts";
import { CONV_VARIANTS } from "../shaders/conv2d.wgsl.ts";
import { STRIDED_VARIANTS } from "../src/kernels/webgpu/strided.ts";
import { maxRelErr, webgpu } from "./helpers.ts";

const gpu = await webgpu() as WebGPUBackend | null;
const S = suite("webgpu kernels vs cpu (float32, poisoned outputs)");
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

if (gpu) {
  S.before(() => { gpu.rt.poison = true; });
  S.after(() => { gpu.rt.poison = false; });

  S("poisoning catches an element a kernel did not write", async () => {
    const out = gpu.rt.alloc(10);
    // A fill told to write only 7 of 10 elements.
    const { fillShader } = await import("../shaders/elementwise.wgsl.ts");
    gpu.rt.dispatch("fill", fillShader, [7, new Uint32Array(new Float32Array([1]).buffer)[0]], [], out, 1);
    const d = await gpu.rt.read(out, 10);
    gpu.rt.free(out);
    assert.ok(Number.isNaN(d[9]) && d[0] === 1);
  });

  S("unary ops", async () => {
    const ops: [string, (x: T.Tensor) => T.Tensor, number, number][] = [
      ["neg", T.neg, -3, 3], ["exp", T.exp, -3, 3], ["log", T.log, 0.1, 3], ["sqrt", T.sqrt, 0.1, 3], ["abs", T.abs, -3, 3],
      ["relu", T.relu, -3, 3], ["leakyRelu", (x) => T.leakyRelu(x, 0.1), -3, 3], ["sigmoid", T.sigmoid, -30, 30],
      ["logSigmoid", T.logSigmoid, -30, 30], ["softplus", T.softplus, -30, 30], ["tanh", T.tanh, -20, 20], ["silu", T.silu, -5, 5],
      ["square", T.square, -3, 3], ["recip", T.recip, 0.5, 3], ["pow 3", (x) => T.powScalar(x, 3), -2, 2],
      ["pow 0.5", (x) => T.powScalar(x, 0.5), 0.1, 2], ["clamp", (x) => T.clamp(x, -0.3, 0.4), -1, 1],
    ];
    for (const [name, f, lo, hi] of ops) for (const s of [[1], [37], [5, 67]]) await compare(name, f, [s], { lo, hi, tol: 1e-4 });
  });

  S("binary ops with broadcasting, where, compare", async () => {
    const shapes: [number[], number[]][] = [[[1], [1]], [[33], [33]], [[3, 5], [5]], [[2, 1, 7], [3, 1]], [[1], [4, 3]], [[2, 3, 4, 5, 2], [3, 1, 5, 1]]];
    const ops: [string, (a: T.Tensor, b: T.Tensor) => T.Tensor][] = [
      ["add", T.add], ["sub", T.sub], ["mul", T.mul], ["div", T.div], ["maximum", T.maximum], ["minimum", T.minimum],
      ["where", (a, b) => T.where(T.gt(a, 0), a, b)], ["lt", (a, b) => T.mul(T.lt(a, b), a)], ["eq", (a, _b) => T.eq(a, a)],
      ["reluMask", (a, b) => T.reluMask(a, T.addScalar(b, -1.25))],
    ];
    for (const [name, f] of ops) for (const [sa, sb] of shapes) await compare(name, f, [sa, sb], { lo: 0.5, hi: 2 });
  });

  S("reductions: sum, max, mean, logsumexp, both kernel variants", async () => {
    const cases: [number[], number | number[] | undefined][] = [[[1], undefined], [[1000], undefined], [[3, 257], 1], [[300, 3], 0], [[2, 3, 5, 7], [1, 3]], [[4, 1, 3], [0, 2]], [[3, 5], []]];
    for (const variant of ["loop", "wide", "auto"] as const) {
      gpu.variants.reduce = variant;
      for (const [sh, ax] of cases) {
        await compare(`sum ${variant}`, (x) => T.sum(x, ax), [sh], { tol: 1e-4 });
        await compare(`sumSquares ${variant}`, (x) => T.sumSquares(x, ax), [sh], { tol: 1e-4 });
        await compare(`max ${variant}`, (x) => T.max(x, ax), [sh]);
        await compare(`logsumexp ${variant}`, (x) => T.logsumexp(x, ax), [sh], { tol: 1e-4 });
      }
    }
    gpu.variants.reduce = "auto";
  });

  S("strided copies: permute, slice, pad, flip, broadcast, concat", async () => {
    const f = (x: T.Tensor) => T.concat([
      T.reshape(T.permute(x, [2, 0, 1]), [-1]),
      T.reshape(T.slice(x, [1, 0, 2], [2, 3, 5]), [-1]),
      T.reshape(T.pad(x, [[1, 0], [0, 2], [3, 1]], 0.25), [-1]),
      T.reshape(T.flip(x, [0, 2]), [-1]),
      T.reshape(T.broadcastTo(T.slice(x, [0, 0, 0], [1, 3, 5]), [3, 2, 3, 5]), [-1]),
    ], 0);
    for (const variant of STRIDED_VARIANTS) {
      gpu.variants.strided = variant;
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
    }
    gpu.variants.strided = "auto";
  });

  for (const variant of MATMUL_VARIANTS) {
    S(`matmul variant ${variant}: transposes, batch broadcast, odd sizes`, async () => {
      gpu.variants.matmul = variant;
      const cases: [number[], number[], boolean, boolean][] = [
        [[1, 1], [1, 1], false, false], [[3, 5], [5, 7], false, false], [[65, 17], [17, 66], false, false],
        [[17, 65], [17, 130], true, false], [[67, 9], [131, 9], false, true], [[9, 64], [64, 9], true, true],
        [[3, 7, 5], [3, 5, 2], false, false], [[7, 5], [2, 5, 70], false, false], [[2, 70, 5], [3, 70], true, true],
        // vec4 columns for the rows kernels: fewer than one workgroup's (idle lanes return early), and just past one.
        [[2, 5, 12], [2, 12, 196], false, false], [[3, 9], [9, 516], false, false], [[4, 1], [1, 4], false, false],
      ];
      for (const [sa, sb, ta, tb] of cases) await compare(`mm ${variant}`, (a, b) => T.mm(a, b, ta, tb), [sa, sb], { tol: 1e-4 });
      gpu.variants.matmul = "auto";
    });
  }

  for (const variant of CONV_VARIANTS) {
    S(`conv2d variant ${variant} and both backward kernels: stride, padding, groups`, async () => {
      gpu.variants.conv = variant;
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
        gpu.variants.matmul = mm;
        for (const [sx, sw, o] of cases) await compare(`conv2d ${variant}/${mm}`, (x, w) => T.conv2d(x, w, o), [sx, sw], { tol: 1e-4 });
      }
      gpu.variants.matmul = "auto";
      gpu.variants.conv = "auto";
    });
  }

  S("nn composites: groupNorm, avgPool2d, upsampleNearest", async () => {
    await compare("groupNorm", (x, w, b) => T.groupNorm(x, 2, w, b), [[2, 4, 3, 5], [4], [4]], { tol: 1e-4 });
    await compare("avgPool2d", (x) => T.avgPool2d(x, 2), [[2, 3, 4, 6]]);
    await compare("upsampleNearest", (x) => T.upsampleNearest(x), [[1, 2, 3, 5]]);
  });
} else {
  S("webgpu adapter", () => {
    console.warn("  (no WebGPU adapter: kernel suite skipped)");
  });
}

S.run();
