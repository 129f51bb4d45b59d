// Every op's gradient against central finite differences in float64 on the CPU backend.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { gradcheck, gradcheck2, rand64 } from "./helpers.ts";

const S = suite("gradients vs finite differences (float64)");
const TOL = 1e-6;
const SHAPES = [[1], [7], [3, 5], [2, 1, 3], [1, 1]];

/** Values away from 0 so kinks (abs, relu) are not straddled by the finite difference. */
function awayFromZero(seed: number, shape: number[]) {
  const d = rand64(seed, shape, 0.1, 1).dataSync();
  const s = rand64(seed + 1, shape).dataSync();
  return T.tensor(d.map((v, i) => (s[i] < 0 ? -v : v)), shape, { dtype: "float64" , backend: T.cpu});
}

const unary: [string, (x: T.Tensor) => T.Tensor, "any" | "pos" | "nz"][] = [
  ["neg", T.neg, "any"], ["exp", T.exp, "any"], ["log", T.log, "pos"], ["sqrt", T.sqrt, "pos"],
  ["abs", T.abs, "nz"], ["powScalar 3", (x) => T.powScalar(x, 3), "any"], ["powScalar -1.5", (x) => T.powScalar(x, -1.5), "pos"],
  ["square", T.square, "any"], ["relu", T.relu, "nz"], ["leakyRelu", (x) => T.leakyRelu(x, 0.2), "nz"],
  ["sigmoid", T.sigmoid, "any"], ["logSigmoid", T.logSigmoid, "any"], ["softplus", T.softplus, "any"],
  ["tanh", T.tanh, "any"], ["silu", T.silu, "any"], ["siluGrad", (x) => T.unary("siluGrad", x), "any"], ["recip", T.recip, "pos"],
  ["clamp", (x) => T.clamp(x, -0.5, 0.5), "nz"],
];
for (const [name, f, dom] of unary) {
  S(`unary ${name}`, () => {
    for (const [i, sh] of SHAPES.entries()) {
      const x = dom === "pos" ? rand64(i, sh, 0.2, 2) : dom === "nz" ? awayFromZero(i, sh) : rand64(i, sh, -2, 2);
      const err = gradcheck(f, [x]);
      assert.ok(err < TOL, `${name} ${JSON.stringify(sh)}: err ${err}`);
    }
  });
}

const BSHAPES: [number[], number[]][] = [[[3, 4], [3, 4]], [[3, 4], [4]], [[2, 1, 5], [3, 1]], [[1], [6]], [[1], [1]]];
const binary: [string, (a: T.Tensor, b: T.Tensor) => T.Tensor][] = [
  ["add", T.add], ["sub", T.sub], ["mul", T.mul], ["div", T.div], ["maximum", T.maximum], ["minimum", T.minimum],
  ["reluMask", T.reluMask],
];
for (const [name, f] of binary) {
  S(`binary ${name} with broadcasting`, () => {
    for (const [i, [sa, sb]] of BSHAPES.entries()) {
      const a = rand64(10 + i, sa, -2, 2);
      const b = name === "div" ? rand64(20 + i, sb, 0.5, 2) : rand64(20 + i, sb, -2, 2);
      const err = gradcheck(f, [a, b]);
      assert.ok(err < TOL, `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}: err ${err}`);
    }
  });
}

S("silu: values against x / (1 + e^-x), its second derivative by double backprop against central differences", () => {
  const x0 = rand64(60, [3, 7], -6, 6), xs = x0.dataSync(), y = T.silu(x0).dataSync();
  xs.forEach((v, i) => assert.ok(Math.abs(y[i] - v / (1 + Math.exp(-v))) < 1e-15, `silu(${v})`));
  // h(x) = sum(w * d/dx sum(silu(x))) = sum(w silu'(x)); dh/dx = w silu''(x).
  const w = rand64(61, [3, 7]);
  const { err, an } = gradcheck2((x, createGraph) => T.sum(T.mul(T.grad(T.sum(T.silu(x)), [x], { createGraph })[0]!, w)), x0);
  assert.ok(err < TOL, `silu second order: err ${err}`);
  assert.ok(an.some((v) => Math.abs(v) > 1e-2), "second derivative is all (near) zero");
});

S("relu's gradient (reluMask) is itself differentiable", () => {
  // g = d/dx sum(relu(x) w) = w step(x), so d/dw sum(g r) = r step(x) and d/dx of it is 0.
  const x = awayFromZero(50, [3, 4]).requireGrad(), w = rand64(51, [3, 4], -2, 2).requireGrad(), r = rand64(52, [3, 4], -2, 2);
  const g = T.grad(T.sum(T.mul(T.relu(x), w)), [x], { createGraph: true })[0]!;
  const [dw, dx] = T.grad(T.sum(T.mul(g, r)), [w, x]);
  const xs = x.dataSync(), rs = r.dataSync(), dws = dw!.dataSync();
  xs.forEach((v, i) => assert.is(dws[i], v > 0 ? rs[i] : 0));
  assert.ok(!dx || dx.dataSync().every((v) => v === 0));
});

S("where (broadcast condition)", () => {
  const c = T.gt(rand64(1, [3, 1]), 0);
  const err = gradcheck((a, b) => T.where(c, a, b), [rand64(2, [3, 4]), rand64(3, [4])]);
  assert.ok(err < TOL, `err ${err}`);
});

const RED: [number[], number[] | undefined, boolean][] = [
  [[5], undefined, false], [[3, 4], [0], false], [[3, 4], [1], true], [[2, 3, 5], [0, 2], false], [[2, 3, 5], [1], true], [[1, 1], [0, 1], false],
];
for (const [name, f] of [["sum", T.sum], ["sumSquares", T.sumSquares], ["mean", T.mean], ["max", T.max], ["logsumexp", T.logsumexp]] as const) {
  S(`reduce ${name} over axes`, () => {
    for (const [i, [sh, ax, kd]] of RED.entries()) {
      const err = gradcheck((x) => f(x, ax, kd), [rand64(30 + i, sh, -2, 2)]);
      assert.ok(err < TOL, `${name} ${JSON.stringify(sh)} axes ${JSON.stringify(ax)}: err ${err}`);
    }
  });
}

S("movement: reshape, permute, transpose, slice, pad, flip, broadcastTo, concat", () => {
  const x = rand64(40, [2, 3, 5]);
  const cases: [string, (x: T.Tensor) => T.Tensor][] = [
    ["reshape", (t) => T.reshape(t, [6, -1])],
    ["permute", (t) => T.permute(t, [2, 0, 1])],
    ["transpose", (t) => T.transpose(t)],
    ["slice", (t) => T.slice(t, [1, 0, 2], [2, 3, 5])],
    ["slice negative", (t) => T.slice(t, [0, -2], [1])],
    ["pad", (t) => T.pad(t, [[0, 1], [2, 0], [1, 3]], 0.5)],
    ["flip", (t) => T.flip(t, [0, 2])],
    ["broadcastTo", (t) => T.broadcastTo(T.slice(t, [0, 0, 0], [2, 1, 5]), [4, 2, 3, 5])],
    ["concat", (t) => T.concat([t, T.mul(t, t), T.slice(t, [0, 0, 0], [2, 3, 1])], 2)],
    ["concat axis 0", (t) => T.concat([t, t], 0)],
  ];
  for (const [name, f] of cases) {
    const err = gradcheck(f, [x]);
    assert.ok(err < TOL, `${name}: err ${err}`);
  }
});

S("matmul and batched matmul, all transposes, batch broadcast", () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[3, 4], [4, 5], false, false], [[1, 1], [1, 1], false, false], [[4, 3], [4, 5], true, false],
    [[3, 4], [5, 4], false, true], [[4, 3], [5, 4], true, true], [[2, 3, 4], [2, 4, 5], false, false],
    [[2, 3, 4], [4, 5], false, false], [[3, 4], [2, 5, 4], false, true], [[1, 7, 3], [3, 3, 2], false, false],
  ];
  for (const [i, [sa, sb, ta, tb]] of cases.entries()) {
    const err = gradcheck((a, b) => T.mm(a, b, ta, tb), [rand64(50 + i, sa), rand64(60 + i, sb)]);
    assert.ok(err < TOL, `mm ${JSON.stringify(sa)}${ta ? "T" : ""} ${JSON.stringify(sb)}${tb ? "T" : ""}: err ${err}`);
  }
});

S("mmSharedB (per-group copies of one matrix): finite differences, and the per-group derivatives of mm to second order", () => {
  const cases: [number, number, number, number, boolean][] = [[3, 2, 4, 5, false], [2, 1, 3, 1, true], [1, 1, 1, 1, false], [4, 3, 2, 6, true]];
  for (const [i, [G, R, K, N, tb]] of cases.entries()) {
    const bShape = tb ? [N, K] : [K, N];
    const copies = (p: T.Tensor) => T.broadcastTo(T.reshape(p, [1, ...bShape]), [G, ...bShape]);
    const err = gradcheck((a, p) => T.mmSharedB(a, copies(p), tb), [rand64(40 + i, [G, R, K]), rand64(45 + i, bShape)]);
    assert.ok(err < TOL, `mmSharedB case ${i}: err ${err}`);
    // Per-group leaves: first and second derivatives equal those of the per-group product.
    const a = T.tensor(rand64(40 + i, [G, R, K]).dataSync(), [G, R, K], { dtype: "float64", backend: T.cpu, requiresGrad: true });
    const e = T.tensor(copies(rand64(45 + i, bShape)).dataSync(), [G, ...bShape], { dtype: "float64", backend: T.cpu, requiresGrad: true });
    const r = rand64(49 + i, [G, R, N]);
    const derivs = (f: (x: T.Tensor, y: T.Tensor) => T.Tensor) => {
      const [ga, ge] = T.grad(T.sum(T.mul(f(a, e), r)), [a, e], { createGraph: true });
      const [ha, he] = T.grad(T.add(T.sum(T.square(ga!)), T.sum(T.mul(T.square(ge!), ge!))), [a, e]);
      return [ga!, ge!, ha!, he!].map((t) => t.dataSync());
    };
    const got = derivs((x, y) => T.mmSharedB(x, y, tb)), want = derivs((x, y) => T.mm(x, y, false, tb));
    got.forEach((g, j) => assert.ok(g.every((v, k) => Math.abs(v - want[j][k]) < 1e-12 * (1 + Math.abs(want[j][k]))), `case ${i} derivative ${j}`));
  }
  assert.throws(() => T.mmSharedB(rand64(1, [2, 3, 4]), rand64(2, [2, 5, 6])), /mmSharedB: inner sizes 4 and 5/);
});

S("conv2d: stride, padding, groups, odd sizes", () => {
  const cases: [number[], number[], T.ConvOptions][] = [
    [[1, 1, 5, 5], [1, 1, 3, 3], {}],
    [[2, 3, 5, 4], [4, 3, 3, 3], { padding: 1 }],
    [[1, 4, 7, 6], [6, 2, 3, 3], { stride: 2, padding: 1, groups: 2 }],
    [[2, 2, 4, 4], [3, 2, 1, 1], {}],
    [[1, 3, 6, 5], [2, 3, 2, 3], { stride: 2 }],
  ];
  for (const [i, [sx, sw, o]] of cases.entries()) {
    const err = gradcheck((x, w) => T.conv2d(x, w, o), [rand64(70 + i, sx), rand64(80 + i, sw)]);
    assert.ok(err < TOL, `conv2d ${JSON.stringify(sx)} ${JSON.stringify(sw)} ${JSON.stringify(o)}: err ${err}`);
  }
});

S("conv2d backward ops are themselves differentiable (grad-of-grad)", () => {
  const o = { stride: 2, padding: 1, groups: 1 };
  const x = rand64(90, [1, 2, 5, 5]), w = rand64(91, [3, 2, 3, 3]);
  const gy = T.conv2d(x, w, o);
  const e1 = gradcheck((g, ww) => T.conv2dInputGrad(g, ww, x.shape, o), [rand64(92, [...gy.shape]), w]);
  const e2 = gradcheck((xx, g) => T.conv2dWeightGrad(xx, g, w.shape, o), [x, rand64(93, [...gy.shape])]);
  assert.ok(e1 < TOL && e2 < TOL, `input-grad err ${e1}, weight-grad err ${e2}`);
});

S("nn: avgPool2d, upsampleNearest, groupNorm, gatherRows", () => {
  const x = rand64(100, [2, 4, 4, 6]);
  const gw = rand64(101, [4]), gb = rand64(102, [4]);
  const cases: [string, (...t: T.Tensor[]) => T.Tensor, T.Tensor[]][] = [
    ["avgPool2d", (t) => T.avgPool2d(t, 2), [x]],
    ["upsampleNearest", (t) => T.upsampleNearest(t, 2), [rand64(103, [1, 3, 2, 3])]],
    ["groupNorm", (t, w, b) => T.groupNorm(t, 2, w, b), [x, gw, gb]],
    ["groupNorm 1 group no affine", (t) => T.groupNorm(t, 1), [rand64(104, [3, 2, 1, 3])]],
    ["gatherRows", (t) => T.gatherRows(t, [2, 0, 2, 1]), [rand64(105, [3, 5])]],
  ];
  for (const [name, f, xs] of cases) {
    const err = gradcheck(f, xs);
    assert.ok(err < TOL, `${name}: err ${err}`);
  }
});

S("upsampleConv3x3: the upsampled 3x3 convolution's values and gradients (float64, odd and size-1 sizes, each activation, with and without bias); its gradients against central differences", () => {
  const cases: [number[], number][] = [[[2, 3, 3, 5], 4], [[1, 1, 1, 1], 1], [[3, 2, 4, 1], 3]];
  for (const [i, [sx, Co]] of cases.entries()) {
    const x = rand64(110 + i, sx), w = rand64(120 + i, [Co, sx[1], 3, 3]), b = rand64(130 + i, [Co]);
    for (const act of ["none", "silu", "relu"] as const) {
      for (const bias of [true, false]) {
        const leaves = [x, w, b].map((t) => T.tensor(t.dataSync(), t.shape, { dtype: "float64", backend: T.cpu, requiresGrad: true }));
        const [lx, lw, lb] = leaves;
        const r = rand64(140 + i, [sx[0], Co, 2 * sx[2], 2 * sx[3]]);
        const want = T.conv2d(T.upsampleNearest(lx), lw, { padding: 1 });
        const wantY = act === "none" ? (bias ? T.add(want, T.reshape(lb, [1, Co, 1, 1])) : want) : T.unary(act, bias ? T.add(want, T.reshape(lb, [1, Co, 1, 1])) : want);
        const got = T.upsampleConv3x3(lx, lw, bias ? lb : null, act);
        assert.equal(got.shape, wantY.shape);
        const scale = Math.max(...wantY.dataSync().map(Math.abs));
        got.dataSync().forEach((v, k) => assert.ok(Math.abs(v - wantY.dataSync()[k]) <= 1e-13 * scale, `case ${i} ${act} value ${k}: ${v} vs ${wantY.dataSync()[k]}`));
        const gw = T.grad(T.sum(T.mul(wantY, r)), bias ? leaves : [lx, lw]);
        const gg = T.grad(T.sum(T.mul(got, r)), bias ? leaves : [lx, lw]);
        gg.forEach((g, j) => {
          const a = g!.dataSync(), e = gw[j]!.dataSync(), sc = Math.max(1e-300, ...e.map(Math.abs));
          a.forEach((v, k) => assert.ok(Math.abs(v - e[k]) <= 1e-12 * sc, `case ${i} ${act} gradient ${j}[${k}]: ${v} vs ${e[k]}`));
        });
      }
    }
    const err = gradcheck((xx, ww, bb) => T.upsampleConv3x3(xx, ww, bb), [x, w, b]);
    assert.ok(err < TOL, `case ${i}: err ${err}`);
  }
  assert.throws(() => T.upsampleConv3x3(rand64(1, [1, 2, 3, 3]), rand64(2, [4, 2, 5, 5]), null), /upsampleConv3x3: input \[1,2,3,3\], weight \[4,2,5,5\]/);
});

S("softmax over the last axis and over axis 0; its gradient is differentiable (second order)", () => {
  for (const [i, [sh, ax]] of ([[[3, 5], -1], [[2, 3, 4], -1], [[1, 1], -1], [[4, 3], 0], [[2, 7, 1], 1]] as [number[], number][]).entries()) {
    const err = gradcheck((x) => T.softmax(x, ax), [rand64(120 + i, sh, -3, 3)]);
    assert.ok(err < TOL, `softmax ${JSON.stringify(sh)} axis ${ax}: err ${err}`);
  }
  // Second order: h(x) = v . grad_x sum(softmax(x) r); its gradient by double backprop vs central differences of h.
  const r = rand64(131, [2, 3, 4]), v = rand64(133, [2, 3, 4]);
  const second = gradcheck2((x, createGraph) => T.sum(T.mul(T.grad(T.sum(T.mul(T.softmax(x), r)), [x], { createGraph })[0]!, v)), rand64(130, [2, 3, 4], -2, 2));
  assert.ok(second.err < TOL, `softmax second order: err ${second.err}`);
  assert.ok(second.an.some((q) => Math.abs(q) > 1e-2), "softmax: second derivative is all (near) zero");
  // Rows sum to one and match exp(x) / sum(exp(x)) computed in plain float64.
  const x = rand64(132, [3, 6], -20, 20), y = T.softmax(x).dataSync(), xs = x.dataSync();
  for (let r = 0; r < 3; r++) {
    const row = [...xs.slice(r * 6, r * 6 + 6)], m = Math.max(...row), z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    row.forEach((v, c) => assert.ok(Math.abs(y[r * 6 + c] - Math.exp(v - m) / z) < 1e-12 * (1e-300 + Math.exp(v - m) / z), `row ${r} col ${c}`));
  }
});

S("gradcheck itself catches a wrong gradient", () => {
  // x*x with the stop-gradient trick: forward correct, backward halved.
  const wrong = (x: T.Tensor) => T.add(T.mul(x, x.detach()), T.mul(T.sub(x, x.detach()), T.sub(x, x.detach())));
  const err = gradcheck(wrong, [rand64(110, [4], 0.5, 1)]);
  assert.ok(err > 0.1, `a wrong gradient went unnoticed (err ${err})`);
});

S.run();
