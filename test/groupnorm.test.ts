// The fused GroupNorm op (src/autograd/ops/groupnorm.ts) on the CPU reference in float64: its
// values against the definition written out here, its gradients against central differences to
// first and second order, and its batching rule against a loop over the groups. The WebGPU and
// wasm kernels are checked against the CPU in test/kernel_parity.ts.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { gradcheck, gradcheck2, rand64 } from "./helpers.ts";

const S = suite("groupNorm (fused)");
const TOL = 1e-6;

/** (x - mean) / sqrt(var + eps) per example and group, from the definition (plain float64 loops). */
function definition(x: Float64Array, shape: number[], groups: number, eps: number): { y: number[]; rstd: number[] } {
  const rows = shape[0] * groups, M = x.length / rows, y: number[] = [], rstd: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = [...x.slice(r * M, (r + 1) * M)];
    const mu = row.reduce((s, v) => s + v, 0) / M;
    const v = row.reduce((s, a) => s + (a - mu) ** 2, 0) / M;
    rstd.push(1 / Math.sqrt(v + eps));
    for (const a of row) y.push((a - mu) / Math.sqrt(v + eps));
  }
  return { y, rstd };
}

const SHAPES: [number[], number][] = [[[2, 4, 3, 5], 2], [[1, 1], 1], [[3, 6, 1, 1], 3], [[1, 3, 7], 3], [[2, 8, 2, 2], 8], [[1, 2, 1, 1], 1]];

S("values: y and rstd equal the definition, incl. one-element groups (y = 0) and offset data; the affine and an activation after it", () => {
  for (const [i, [shape, groups]] of SHAPES.entries()) {
    for (const offset of [0, 1000]) {
      const x = T.add(rand64(10 + i, shape), offset), xd = x.dataSync() as Float64Array;
      const want = definition(xd, shape, groups, 1e-5);
      const got = T.normalizeGroups(x, groups).dataSync();
      assert.equal(got.length, want.y.length);
      for (let k = 0; k < got.length; k++) assert.ok(Math.abs(got[k] - want.y[k]) < 1e-9, `${JSON.stringify(shape)} offset ${offset} at ${k}: ${got[k]} vs ${want.y[k]}`);
      const s = T.cpu.groupNorm(xd, shape[0] * groups, xd.length / (shape[0] * groups), 1e-5, "float64");
      want.rstd.forEach((v, r) => assert.ok(Math.abs(s.rstd[r] - v) / v < 1e-12, `rstd ${r}: ${s.rstd[r]} vs ${v}`));
    }
  }
  // The affine form T.groupNorm is the normalisation times weight plus bias per channel.
  const x = rand64(30, [2, 4, 3]), w = rand64(31, [4]), b = rand64(32, [4]);
  const y = T.groupNorm(x, 2, w, b).dataSync(), n = T.normalizeGroups(x, 2).dataSync(), wd = w.dataSync(), bd = b.dataSync();
  for (let k = 0; k < y.length; k++) {
    const c = Math.floor(k / 3) % 4;
    assert.ok(Math.abs(y[k] - (n[k] * wd[c] + bd[c])) < 1e-12, `affine at ${k}`);
  }
  // With an activation after it (the U-Net's SiLU; fused on the wasm backend, test/wasm_kernels.test.ts).
  for (const act of ["relu", "silu"] as const) {
    const ya = T.groupNorm(x, 2, w, b, 1e-5, act).dataSync();
    for (let k = 0; k < ya.length; k++) {
      const p = y[k], want = act === "relu" ? Math.max(p, 0) : p / (1 + Math.exp(-p));
      assert.ok(Math.abs(ya[k] - want) < 1e-12, `${act} at ${k}: ${ya[k]} vs ${want}`);
    }
  }
  assert.throws(() => T.normalizeGroups(rand64(33, [2, 6, 2]), 4), /not divisible into 4 groups/);
  assert.throws(() => T.groupNormGrad(rand64(34, [2, 3]), rand64(35, [2, 4]), rand64(36, [2, 1])), /are not \[rows, M\]/);
});

S("gradients vs central differences: normalizeGroups, groupNorm with affine (and SiLU after it), groupNormGrad in each input", () => {
  for (const [i, [shape, groups]] of SHAPES.entries()) {
    const err = gradcheck((x) => T.normalizeGroups(x, groups), [rand64(40 + i, shape)]);
    assert.ok(err < TOL, `normalizeGroups ${JSON.stringify(shape)} / ${groups}: err ${err}`);
  }
  const err = gradcheck((x, w, b) => T.groupNorm(x, 2, w, b), [rand64(50, [2, 4, 3, 2]), rand64(51, [4]), rand64(52, [4])]);
  assert.ok(err < TOL, `groupNorm affine: err ${err}`);
  const errSilu = gradcheck((x, w, b) => T.groupNorm(x, 2, w, b, 1e-5, "silu"), [rand64(53, [2, 4, 3, 2]), rand64(54, [4]), rand64(55, [4])]);
  assert.ok(errSilu < TOL, `groupNorm affine and SiLU: err ${errSilu}`);
  // groupNormGrad is a function of arbitrary (g, y, rstd): its own backward checked directly.
  for (const [rows, M] of [[3, 5], [1, 1], [2, 7]]) {
    const e = gradcheck((g, y, r) => T.groupNormGrad(g, y, r), [rand64(60 + M, [rows, M]), rand64(61 + M, [rows, M]), rand64(62 + M, [rows, 1], 0.5, 2)]);
    assert.ok(e < TOL, `groupNormGrad [${rows}, ${M}]: err ${e}`);
  }
});

S("second order: the gradient of v . grad_x sum(groupNorm(x) r) by double backprop vs central differences", () => {
  const shape = [2, 4, 3], w = rand64(71, [4]), b = rand64(72, [4]), r = rand64(73, shape), v = rand64(74, shape);
  // h also goes through the weight's gradient: the affine's path into the second derivative.
  const h = (x: T.Tensor, createGraph: boolean) => {
    const wl = T.tensor(w.dataSync(), [4], { dtype: "float64", backend: T.cpu, requiresGrad: true });
    const [gx, gw] = T.grad(T.sum(T.mul(T.groupNorm(x, 2, wl, b), r)), [x, wl], { createGraph });
    return T.add(T.sum(T.mul(gx!, v)), T.sum(T.mul(gw!, T.sum(v, [0, 2]))));
  };
  const { err, an } = gradcheck2(h, rand64(70, shape, -2, 2));
  assert.ok(err < 1e-5, `second order err ${err}`);
  // Not vacuous: the second derivative is far from zero.
  assert.ok(an.some((q) => Math.abs(q) > 1e-2), "second derivative is all (near) zero");
});

S("batched: one call on G groups equals G calls, values and gradients", () => {
  const G = 3, shape = [2, 4, 5], x = rand64(80, [G, ...shape]), r = rand64(81, [G, ...shape]);
  const xl = T.tensor(x.dataSync(), x.shape, { dtype: "float64", backend: T.cpu, requiresGrad: true });
  const yb = T.unbatch(T.normalizeGroups(T.batch(xl), 2));
  const [gb] = T.grad(T.sum(T.mul(yb, r)), [xl]);
  const parts = Array.from({ length: G }, (_, g) => {
    const xg = T.tensor(x.dataSync().slice(g * 40, (g + 1) * 40), shape, { dtype: "float64", backend: T.cpu, requiresGrad: true });
    const y = T.normalizeGroups(xg, 2);
    const [gg] = T.grad(T.sum(T.mul(y, T.tensor(r.dataSync().slice(g * 40, (g + 1) * 40), shape, { dtype: "float64", backend: T.cpu }))), [xg]);
    return [y.dataSync(), gg!.dataSync()];
  });
  const ybd = yb.dataSync(), gbd = gb!.dataSync();
  for (let g = 0; g < G; g++) {
    for (let k = 0; k < 40; k++) {
      assert.ok(Math.abs(ybd[g * 40 + k] - parts[g][0][k]) < 1e-12, `value group ${g} at ${k}`);
      assert.ok(Math.abs(gbd[g * 40 + k] - parts[g][1][k]) < 1e-12, `gradient group ${g} at ${k}`);
    }
  }
});

S.run();
