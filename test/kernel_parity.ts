// The kernel-parity cases, parametrised by backend: every op forward and its gradient on the
// backend under test against the CPU reference backend (float32), on odd, size-1 and non-tile
// shapes, with the backend's fresh outputs poisoned (NaN) so an unwritten element fails.
// test/webgpu_kernels.test.ts runs them over every WebGPU kernel variant, test/wasm_kernels.test.ts
// on the wasm backend; each file poisons its backend's outputs around the suite.
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import type { Backend } from "../src/kernels/backend.ts";
import { UNARY_OPS } from "../src/kernels/ops.ts";
import { maxRelErr } from "./helpers.ts";

const TOL = 2e-5;

export interface ParityTarget {
  backend: Backend;
  /** Registers a test (a skip where the backend is missing). */
  test: (name: string, fn: () => Promise<void>) => void;
  /** The backend's kernel variants per family (default: none, one run), and a way to run f with some set. */
  variants?: { reduce?: readonly string[]; strided?: readonly string[]; matmul?: readonly string[]; conv?: readonly string[] };
  /** The matrix-product variants a convolution variant is checked over (default: its default one). */
  convMatmuls?: (convVariant: string) => readonly string[];
  withVariants?: (v: Record<string, string>, f: () => Promise<void>) => Promise<void>;
}


/** Runs f on the CPU and on the target, forward and (if grads) the gradient of sum(f * r) w.r.t. the inputs. */
export async function compare(b: Backend, name: string, f: (...xs: T.Tensor[]) => T.Tensor, shapes: number[][], opts: { lo?: number; hi?: number; grads?: boolean; tol?: number } = {}) {
  const ins = shapes.map((s, i) => T.rand(new T.Generator(1000 + i * 7 + s.length), s, { low: opts.lo ?? -1, high: opts.hi ?? 1, backend: T.cpu }));
  const run = async (be: Backend) => {
    const xs = ins.map((p) => T.tensor(p.dataSync(), p.shape, { backend: be, requiresGrad: opts.grads !== false }));
    const y = f(...xs);
    const out = [await y.data()];
    if (opts.grads !== false && y.requiresGrad) {
      const rc = T.rand(new T.Generator(5), [...y.shape], { low: 0.5, high: 1.5, backend: T.cpu });
      const r = T.tensor(rc.dataSync(), y.shape, { backend: be });
      const gs = T.grad(T.sum(T.mul(y, r)), xs);
      for (const g of gs) out.push(g ? await g.data() : new Float32Array(0));
    }
    return out;
  };
  const [c, g] = [await run(T.cpu), await run(b)];
  for (let i = 0; i < c.length; i++) {
    const e = maxRelErr(g[i], c[i]);
    assert.ok(e < (opts.tol ?? TOL), `${name}: ${i === 0 ? "forward" : `grad ${i - 1}`} err ${e} (shapes ${JSON.stringify(shapes)})`);
  }
}

export function kernelParity(t: ParityTarget): void {
  const b = t.backend;
  const cmp = (name: string, f: (...xs: T.Tensor[]) => T.Tensor, shapes: number[][], opts?: Parameters<typeof compare>[4]) => compare(b, name, f, shapes, opts);
  const S = t.test;
  /** Runs f once per listed variant of a family with it set (once, unset, when none are listed). */
  const over = async (family: "reduce" | "strided" | "matmul" | "conv", f: (v: string) => Promise<void>, list = t.variants?.[family]) => {
    if (!list || !t.withVariants) return await f("default");
    for (const v of list) await t.withVariants({ [family]: v }, () => f(v));
  };

  S("unary ops", async () => {
    const ops: [string, (x: T.Tensor) => T.Tensor, number, number][] = [
      ["neg", T.neg, -3, 3], ["exp", T.exp, -3, 3], ["log", T.log, 0.1, 3], ["sqrt", T.sqrt, 0.1, 3], ["abs", T.abs, -3, 3],
      ["relu", T.relu, -3, 3], ["leakyRelu", (x) => T.leakyRelu(x, 0.1), -3, 3], ["sigmoid", T.sigmoid, -30, 30],
      ["logSigmoid", T.logSigmoid, -30, 30], ["softplus", T.softplus, -30, 30], ["tanh", T.tanh, -20, 20], ["silu", T.silu, -5, 5], ["siluGrad", (x) => T.unary("siluGrad", x), -5, 5],
      ["square", T.square, -3, 3], ["recip", T.recip, 0.5, 3], ["pow 3", (x) => T.powScalar(x, 3), -2, 2],
      ["pow 0.5", (x) => T.powScalar(x, 0.5), 0.1, 2], ["clamp", (x) => T.clamp(x, -0.3, 0.4), -1, 1],
      ["step", (x) => T.unary("step", x), -3, 3], ["sign", T.sign, -3, 3], ["mulScalar", (x) => T.mulScalar(x, -1.7), -3, 3],
      ["addScalar", (x) => T.addScalar(x, 0.4), -3, 3], ["leakyStep", (x) => T.unary("leakyStep", x, 0.1), -3, 3],
    ];
    // the ops the backend under test was asked for, so the cases are seen to reach every unary kernel op of the contract
    const seen = new Set<string>();
    const bb = b as unknown as { unary: (op: string, ...rest: unknown[]) => unknown };
    const own = Object.prototype.hasOwnProperty.call(bb, "unary"), unary = bb.unary;
    bb.unary = (op, ...rest) => {
      seen.add(op);
      return unary.call(b, op, ...rest);
    };
    try {
      for (const [name, f, lo, hi] of ops) for (const s of [[1], [37], [5, 67]]) await cmp(name, f, [s], { lo, hi, tol: 1e-4 });
    } finally {
      if (own) bb.unary = unary;
      else delete (bb as { unary?: unknown }).unary;
    }
    assert.equal(UNARY_OPS.filter((op) => !seen.has(op)), []);
    // pow of negative bases, as Math.pow: NaN for a fractional exponent (the kernel makes that NaN
    // itself; the positive bases beside them show the elements were written), signs for integer ones
    const xs = [-2, -0.5, 0.25, 3, -1.5, 0.75, -3];
    for (const p of [0.5, 1.5, 3, 4, -1]) {
      const got = Array.from(await T.powScalar(T.tensor(xs, [xs.length], { backend: b }), p).data());
      const want = xs.map((x) => Math.pow(x, p));
      assert.ok(got.every((g, i) => Number.isNaN(want[i]) ? Number.isNaN(g) : Math.abs(g - want[i]) <= 1e-5 * Math.abs(want[i])), `pow ${p}: ${got} against ${want}`);
    }
  });

  S("binary ops with broadcasting, where, compare", async () => {
    const shapes: [number[], number[]][] = [[[1], [1]], [[33], [33]], [[3, 5], [5]], [[2, 1, 7], [3, 1]], [[1], [4, 3]], [[2, 3, 4, 5, 2], [3, 1, 5, 1]]];
    const ops: [string, (a: T.Tensor, b: T.Tensor) => T.Tensor][] = [
      ["add", T.add], ["sub", T.sub], ["mul", T.mul], ["div", T.div], ["maximum", T.maximum], ["minimum", T.minimum],
      ["where", (a, b) => T.where(T.gt(a, 0), a, b)], ["lt", (a, b) => T.mul(T.lt(a, b), a)],
      ["gt", (a, b) => T.mul(T.gt(a, b), b)], ["ge", (a, b) => T.mul(T.ge(a, b), b)], ["le", (a, b) => T.mul(T.le(a, b), a)],
      // eq on operands that are equal where a >= b (maximum returns a there) and differ elsewhere.
      ["eq", (a, b) => T.mul(T.eq(a, T.maximum(a, b)), b)],
      ["reluMask", (a, b) => T.reluMask(a, T.addScalar(b, -1.25))],
    ];
    for (const [name, f] of ops) for (const [sa, sb] of shapes) await cmp(name, f, [sa, sb], { lo: 0.5, hi: 2 });
  });

  S("reductions: sum, max, mean, logsumexp", async () => {
    const cases: [number[], number | number[] | undefined][] = [[[1], undefined], [[1000], undefined], [[3, 257], 1], [[300, 3], 0], [[2, 3, 5, 7], [1, 3]], [[4, 1, 3], [0, 2]], [[3, 5], []]];
    await over("reduce", async (variant) => {
      for (const [sh, ax] of cases) {
        await cmp(`sum ${variant}`, (x) => T.sum(x, ax), [sh], { tol: 1e-4 });
        await cmp(`sumSquares ${variant}`, (x) => T.sumSquares(x, ax), [sh], { tol: 1e-4 });
        await cmp(`max ${variant}`, (x) => T.max(x, ax), [sh]);
        await cmp(`logsumexp ${variant}`, (x) => T.logsumexp(x, ax), [sh], { tol: 1e-4 });
      }
    });
  });

  S("strided copies: permute, slice, pad, flip, broadcast, concat", async () => {
    const f = (x: T.Tensor) => T.concat([
      T.reshape(T.permute(x, [2, 0, 1]), [-1]),
      T.reshape(T.slice(x, [1, 0, 2], [2, 3, 5]), [-1]),
      T.reshape(T.pad(x, [[1, 0], [0, 2], [3, 1]], 0.25), [-1]),
      T.reshape(T.flip(x, [0, 2]), [-1]),
      T.reshape(T.broadcastTo(T.slice(x, [0, 0, 0], [1, 3, 5]), [3, 2, 3, 5]), [-1]),
    ], 0);
    await over("strided", async (variant) => {
      await cmp(`movement ${variant}`, f, [[2, 3, 5]]);
      await cmp(`movement size 1 ${variant}`, (x) => T.pad(T.flip(x, [0]), [[2, 1]], -1), [[1]]);
      // Long contiguous runs: leading-axis slices and broadcasts.
      await cmp(`runs ${variant}`, (x) => T.concat([
        T.reshape(T.slice(x, [1, 0], [3, 1100]), [-1]),
        T.reshape(T.broadcastTo(T.reshape(x, [1, 3, 1100]), [5, 3, 1100]), [-1]),
        T.reshape(T.broadcastTo(T.reshape(T.slice(x, [2, 0], [3, 1100]), [1, 1, 1100]), [2, 3, 1100]), [-1]),
      ], 0), [[3, 1100]]);
      // Pads and slices along a single axis.
      await cmp(`pad one axis ${variant}`, (x) => T.concat([
        T.reshape(T.pad(x, [[0, 0], [2, 1], [0, 0]], 0.5), [-1]), T.reshape(T.pad(x, [[3, 0], [0, 0], [0, 0]]), [-1]),
        T.reshape(T.pad(x, [[0, 0], [0, 0], [0, 4]], -2), [-1]), T.reshape(T.slice(x, [0, 1, 0], [3, 2, 5]), [-1]),
        T.reshape(T.slice(x, [0, 0, 1], [3, 2, 4]), [-1]), T.reshape(T.slice(x, [1, 0, 0], [2, 2, 5]), [-1]),
      ], 0), [[3, 2, 5]]);
      await cmp(`pad size 1 ${variant}`, (x) => T.pad(x, [[0, 0], [1, 0]], 7), [[1, 1]]);
      // Concatenation along middle and last axes, odd blocks, a size-1 part, long blocks.
      await cmp(`concat ${variant}`, (a, b, c) => T.concat([a, b, c], 1), [[3, 2, 5], [3, 1, 5], [3, 4, 5]]);
      await cmp(`concat last ${variant}`, (a, b) => T.concat([a, b], 2), [[2, 3, 1], [2, 3, 7]]);
      await cmp(`concat long ${variant}`, (a, b) => T.concat([a, b], 1), [[2, 1030, 1], [2, 5, 1]]);
      // Large enough for the wasm backend's threads (at least 65536 elements): 5 rows in ranges of 1 or 2 (test/wasm_kernels.test.ts checks for writes past the output).
      await cmp(`concat large ${variant}`, (a, b) => T.concat([a, b], 1), [[5, 130, 101], [5, 3, 101]]);
    });
  });

  for (const variant of t.variants?.matmul ?? ["default"]) {
  S(`matmul${t.variants?.matmul ? ` variant ${variant}` : ""}: transposes, batch broadcast, odd sizes`, async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[1, 1], [1, 1], false, false], [[3, 5], [5, 7], false, false], [[65, 17], [17, 66], false, false],
      [[17, 65], [17, 130], true, false], [[67, 9], [131, 9], false, true], [[9, 64], [64, 9], true, true],
      [[3, 7, 5], [3, 5, 2], false, false], [[7, 5], [2, 5, 70], false, false], [[2, 70, 5], [3, 70], true, true],
      // fewer columns than one tile or vector, just past one, one row, one column
      [[2, 5, 12], [2, 12, 196], false, false], [[3, 9], [9, 516], false, false], [[4, 1], [1, 4], false, false],
      [[1, 33], [33, 1], false, false], [[6, 8], [8, 8], false, false],
    ];
    await over("matmul", async () => {
      for (const [sa, sb, ta, tb] of cases) await cmp(`mm ${variant}`, (a, b) => T.mm(a, b, ta, tb), [sa, sb], { tol: 1e-4 });
    }, t.variants?.matmul ? [variant] : undefined);
  });
  }

  for (const variant of t.variants?.conv ?? ["default"]) {
  S(`conv2d${t.variants?.conv ? ` variant ${variant}` : ""} and both backward kernels: stride, padding, groups`, async () => {
    const cases: [number[], number[], T.ConvOptions][] = [
      [[1, 1, 1, 1], [1, 1, 1, 1], {}], [[2, 3, 7, 5], [5, 3, 3, 3], { padding: 1 }],
      [[1, 4, 9, 8], [6, 2, 3, 3], { stride: 2, padding: 1, groups: 2 }], [[3, 2, 5, 5], [7, 2, 1, 1], {}],
      [[2, 6, 6, 7], [6, 1, 3, 3], { padding: 1, groups: 6 }], [[2, 3, 8, 8], [2, 3, 4, 4], { stride: 2, padding: 1 }],
      [[3, 4, 8, 8], [10, 2, 3, 3], { padding: 1, groups: 2 }],
      // 1x1 unpadded, grouped and not, a padded 1x1, an unpadded strided non-square kernel.
      [[2, 6, 3, 5], [9, 2, 1, 1], { groups: 3 }], [[1, 3, 4, 4], [2, 3, 1, 1], { padding: 1 }],
      [[1, 3, 6, 5], [2, 3, 2, 3], { stride: 2 }],
      // a strided 1x1 with more than 4 output channels: the output gradient's rows are the phase grid's (packed where it is)
      [[2, 3, 9, 13], [6, 3, 1, 1], { stride: 2 }],
    ];
    // gemm convolutions run on the matrix-product kernels: each listed one is checked.
    for (const mm of t.convMatmuls?.(variant) ?? ["default"]) {
      const set = () => (t.variants?.conv ? { conv: variant, ...(t.convMatmuls ? { matmul: mm } : {}) } : null);
      const run = async () => {
        for (const [sx, sw, o] of cases) await cmp(`conv2d ${variant}/${mm}`, (x, w) => T.conv2d(x, w, o), [sx, sw], { tol: 1e-4 });
      };
      const v = set();
      await (v && t.withVariants ? t.withVariants(v, run) : run());
    }
  });
  }

  S("nn composites: groupNorm (fused kernels), avgPool2d, upsampleNearest", async () => {
    await cmp("groupNorm", (x, w, b) => T.groupNorm(x, 2, w, b), [[2, 4, 3, 5], [4], [4]], { tol: 1e-4 });
    // The fused kernels alone: rows of 1 element (variance 0), fewer and more rows than a
    // workgroup's lanes, rows not a multiple of them, long rows (the U-Net's 2 x 28 x 28), data
    // far from zero (cancellation in a one-pass variance).
    const gn: [number[], number, number][] = [[[1, 1], 1, 0], [[3, 5, 1], 5, 0], [[2, 6, 7, 3], 3, 0], [[70, 2, 3], 1, 0], [[2, 16, 28, 28], 8, 0], [[3, 4, 9], 2, 50]];
    for (const [sh, g, off] of gn) {
      await cmp(`normalizeGroups ${JSON.stringify(sh)}/${g}${off ? ` offset ${off}` : ""}`, (x) => T.normalizeGroups(T.add(x, off), g), [sh], { tol: off ? 2e-3 : 1e-4 });
    }
    for (const [rows, M] of [[1, 1], [5, 3], [67, 129], [2, 1568]]) {
      // rstd as a positive input (0.5..2): the backward of the fused gradient is composed, so this
      // also checks that composition on the backend.
      await cmp(`groupNormGrad [${rows}, ${M}]`, (g, y, r) => T.groupNormGrad(g, y, T.addScalar(T.abs(r), 0.5)), [[rows, M], [rows, M], [rows, 1]], { tol: 1e-4 });
    }
    await cmp("avgPool2d", (x) => T.avgPool2d(x, 2), [[2, 3, 4, 6]]);
    await cmp("upsampleNearest", (x) => T.upsampleNearest(x), [[1, 2, 3, 5]]);
  });
}
