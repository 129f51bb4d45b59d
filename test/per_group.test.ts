// Per-group passes (src/nn/per_group.ts over src/autograd/batched.ts): layers written once, with no
// per-group code, get each group's exact gradient from one forward and one backward. Checked in
// float64 against one backward per group on layers of the kinds the models use and the U-Net will
// add (a GroupNorm affine, projections of [B, T, C] tokens, attention, a time-embedding MLP), and on
// every op with a batching rule.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Conv2d, type Init, Linear, Module, withParameters } from "../src/nn/module.ts";
import { gramNorm, perGroupGradients, perGroupPass, perGroupSquaredNorms } from "../src/nn/per_group.ts";
import { InvConv1x1 } from "../src/models/glow_layers.ts";

const S = suite("per_group");
const init = (seed: number): Init => ({ backend: T.cpu, dtype: "float64", gen: new T.Generator(seed) });

/** A per-channel affine after normalisation, written as a newcomer would: no per-group code. */
class GroupNormAffine extends Module {
  readonly gamma: T.Tensor;
  readonly beta: T.Tensor;
  constructor(readonly channels: number, o: Init) {
    super();
    this.gamma = this.param("gamma", T.add(T.rand(o.gen, [channels], { backend: o.backend, dtype: o.dtype }), 0.5));
    this.beta = this.param("beta", T.randn(o.gen, [channels], { backend: o.backend, dtype: o.dtype }));
  }
  forward(x: T.Tensor): T.Tensor {
    const c = [1, this.channels, 1, 1];
    return T.add(T.mul(T.groupNorm(x, 2), T.reshape(this.gamma, c)), T.reshape(this.beta, c));
  }
}

/** Conv, GroupNorm affine, then tokens [B, T, C] through q/k/v projections, attention and a time MLP. */
class TinyBlock extends Module {
  readonly conv: Conv2d;
  readonly norm: GroupNormAffine;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly time1: Linear;
  readonly time2: Linear;
  readonly scale: T.Tensor;
  constructor(o: Init) {
    super();
    this.conv = this.child("conv", new Conv2d(2, 4, 3, o));
    this.norm = this.child("norm", new GroupNormAffine(4, o));
    this.q = this.child("q", new Linear(4, 4, o));
    this.k = this.child("k", new Linear(4, 4, o));
    this.v = this.child("v", new Linear(4, 4, o));
    this.time1 = this.child("time1", new Linear(3, 8, o));
    this.time2 = this.child("time2", new Linear(8, 4, o));
    this.scale = this.param("scale", T.randn(o.gen, [4], { backend: o.backend, dtype: o.dtype, std: 0.3 }));
  }
  /** Per-example loss [B] of images x [B, 2, 4, 4] and time features t [B, 3]. */
  loss(x: T.Tensor, t: T.Tensor): T.Tensor {
    const B = x.shape[0];
    const h = T.silu(this.norm.forward(this.conv.forward(x))); // [B, 4, 4, 4]
    const emb = this.time2.forward(T.silu(this.time1.forward(t))); // [B, 4]
    const tok = T.transpose(T.reshape(T.add(h, T.reshape(emb, [B, 4, 1, 1])), [B, 4, 16]), 1, 2); // [B, 16, 4]
    const att = T.mm(this.q.forward(tok), this.k.forward(tok), false, true); // [B, 16, 16]
    const w = T.exp(T.sub(att, T.logsumexp(att, 2, true)));
    const o = T.mm(w, this.v.forward(tok)); // [B, 16, 4]
    // A data-independent term of a parameter, once per example (like a log-determinant).
    const prior = T.mul(T.sum(T.exp(this.scale)), 0.1);
    return T.add(T.sum(T.reshape(T.square(T.mul(o, this.scale)), [B, -1]), 1), prior);
  }
}

/** Every op with a batching rule, on one parameter set: movement, reductions, where, concat, products of parameters. */
class OpZoo extends Module {
  readonly a: T.Tensor;
  readonly m: T.Tensor;
  readonly n: T.Tensor;
  constructor(o: Init) {
    super();
    this.a = this.param("a", T.randn(o.gen, [3, 4], { backend: o.backend, dtype: o.dtype }));
    this.m = this.param("m", T.randn(o.gen, [4, 4], { backend: o.backend, dtype: o.dtype }));
    this.n = this.param("n", T.randn(o.gen, [2, 1, 4], { backend: o.backend, dtype: o.dtype }));
  }
  loss(x: T.Tensor): T.Tensor {
    const B = x.shape[0]; // x [B, 3, 4]
    const mn = T.matmul(this.m, T.transpose(this.m)); // parameter x parameter
    let h = T.add(T.mul(x, this.a), T.mm(x, mn)); // [B, 3, 4]
    h = T.concat([h, T.broadcastTo(T.reshape(this.a, [1, 3, 4]), [B, 3, 4]), T.ones([B, 1, 4], { backend: x.backend, dtype: x.dtype })], 1); // [B, 7, 4]
    h = T.flip(T.pad(T.slice(h, [0, 1, 0], [B, 6, 4]), [[0, 0], [1, 0], [0, 2]]), [1, 2]); // [B, 6, 6]
    h = T.permute(h, [0, 2, 1]);
    const p = T.reshape(T.mul(this.n, T.ones([2, 3, 4], { backend: x.backend, dtype: x.dtype })), [6, 4]); // [6, 4] from a parameter
    const mx = T.max(T.sub(T.slice(h, [0, 0, 0], [B, 6, 4]), p), 2); // [B, 6]
    const sel = T.where(T.gt(mx, 0), T.maximum(mx, T.slice(this.a, [0, 0], [1, 1])), T.square(mx));
    const edge = T.sum(T.slice(T.flip(T.permute(this.n, [1, 2, 0]), [2]), [0, 0, 1], [1, 4, 2])); // batching rules on a parameter's own axes
    return T.add(T.sum(T.square(sel), 1), T.mul(T.add(T.logsumexp(T.reshape(h, [B, -1]), 1), edge), T.sum(T.square(this.n))));
  }
}

/**
 * Values of the parameters alone in the shapes onCopies meets (batched.ts): a copy used twice by
 * one op, an operand made from another, rank-3 products of copies, logsumexp and softmax of a
 * parameter, and each of them meeting the data.
 */
class CopyZoo extends Module {
  readonly p: T.Tensor;
  readonly q: T.Tensor;
  readonly r: T.Tensor;
  constructor(o: Init) {
    super();
    this.p = this.param("p", T.rand(o.gen, [3, 3], { backend: o.backend, dtype: o.dtype }));
    this.q = this.param("q", T.randn(o.gen, [3, 3], { backend: o.backend, dtype: o.dtype }));
    this.r = this.param("r", T.randn(o.gen, [2, 3, 3], { backend: o.backend, dtype: o.dtype }));
  }
  loss(x: T.Tensor): T.Tensor { // x [B, 3]
    const { p, q, r } = this;
    const twice = T.add(T.add(T.mul(q, q), T.add(p, p)), T.matmul(q, q));
    const chained = T.add(T.div(p, T.addScalar(p, 1)), T.maximum(q, T.square(q)));
    const rank3 = T.sum(T.mm(r, r), 0);
    const soft = T.add(T.softmax(q, 1), T.reshape(T.logsumexp(r, [0, 2]), [3, 1]));
    const m = T.add(T.add(twice, chained), T.add(rank3, soft)); // [3, 3]
    return T.sum(T.square(T.mm(x, m)), 1);
  }
}

/** Reference: one backward per group of Bg consecutive examples. */
function loopGradients(params: T.Tensor[], inputs: T.Tensor[], G: number, loss: (...xs: T.Tensor[]) => T.Tensor): Float64Array[][] {
  const out: Float64Array[][] = [];
  for (let g = 0; g < G; g++) {
    const sl = (t: T.Tensor) => T.slice(t, [g * (t.shape[0] / G)], [(g + 1) * (t.shape[0] / G)]);
    const gs = T.grad(T.sum(loss(...inputs.map(sl))), params);
    out.push(gs.map((x) => Float64Array.from(x!.dataSync())));
  }
  return out;
}

function closeTo(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-10) {
  assert.is(got.length, want.length, what);
  const scale = Math.max(1e-12, ...Array.from(want, Math.abs));
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * scale, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

function checkAgainstLoopGradientsOnly(model: Module, inputs: T.Tensor[], G: number, loss: (...xs: T.Tensor[]) => T.Tensor) {
  const params = model.parameters();
  const want = loopGradients(params, inputs, G, loss);
  const got = perGroupGradients(perGroupPass(model, { groups: G }, inputs, (...xs) => loss(...(xs as T.Tensor[]))), params);
  params.forEach((p, l) => {
    const d = got[l].dataSync();
    for (let g = 0; g < G; g++) closeTo(d.subarray(g * p.size, (g + 1) * p.size), want[g][l], `${p.name} group ${g}`);
  });
}

function checkAgainstLoop(model: Module, inputs: T.Tensor[], G: number, loss: (...xs: T.Tensor[]) => T.Tensor) {
  const named = model.namedParameters();
  const params = named.map(([, p]) => p);
  const want = loopGradients(params, inputs, G, loss);
  const pass = perGroupPass(model, { groups: G }, inputs, (...xs) => loss(...(xs as T.Tensor[])));
  const got = perGroupGradients(pass, params);
  named.forEach(([name, p], l) => {
    assert.equal(got[l].shape, [G, ...p.shape], name);
    const d = got[l].dataSync();
    for (let g = 0; g < G; g++) closeTo(d.subarray(g * p.size, (g + 1) * p.size), want[g][l], `${name} group ${g}`);
  });
  // Norms-only (Gram sites for the products with a parameter) against the same loop.
  const normsPass = perGroupPass(model, { groups: G, normsOnly: true }, inputs, (...xs) => loss(...(xs as T.Tensor[])));
  const norms = perGroupSquaredNorms(normsPass, params);
  named.forEach(([name], l) => closeTo(norms[l].dataSync(), want.map((w) => w[l].reduce((s, v) => s + v * v, 0)), `${name} norms`));
  return normsPass.gramSites.length;
}

S("layers with no per-group code get exact per-group gradients: GroupNorm affine, token projections, attention, time MLP, a data-independent term", () => {
  for (const Bg of [1, 3]) {
    const G = 4;
    const m = new TinyBlock(init(1));
    const x = T.randn(new T.Generator(2), [G * Bg, 2, 4, 4], { backend: T.cpu, dtype: "float64" });
    const t = T.randn(new T.Generator(3), [G * Bg, 3], { backend: T.cpu, dtype: "float64" });
    const sites = checkAgainstLoop(m, [x, t], G, (xs, ts) => m.loss(xs, ts));
    assert.is(sites, 5, "every Linear weight is a Gram site in the norms-only pass");
  }
});

S("every op with a batching rule: per-group gradients equal the loop (parameters meeting data, and parameters alone)", () => {
  for (const Bg of [1, 2]) {
    const G = 3;
    const m = new OpZoo(init(5));
    const x = T.randn(new T.Generator(6), [G * Bg, 3, 4], { backend: T.cpu, dtype: "float64" });
    checkAgainstLoop(m, [x], G, (xs) => m.loss(xs));
  }
});

S("a convolution with a per-group weight copy (one shared-weight convolution) equals per-group weights: values, first and second derivatives, stride, padding, groups, several images per group", () => {
  const cases: [number[], number[], T.ConvOptions][] = [
    [[6, 4, 5, 7], [6, 2, 3, 3], { padding: 1, groups: 2 }],
    [[3, 3, 6, 5], [4, 3, 3, 2], { stride: 2, padding: 1 }],
    [[2, 2, 4, 4], [3, 2, 1, 1], {}],
  ];
  for (const [i, [sx, sw, o]] of cases.entries()) {
    const G = sx[0] === 6 ? 3 : sx[0], Bg = sx[0] / G;
    const f64r = (seed: number, shape: number[]) => T.randn(new T.Generator(seed), shape, { backend: T.cpu, dtype: "float64" });
    const x0 = f64r(300 + i, sx), w0 = f64r(310 + i, sw);
    /** per-group weights as a leaf [G, ...] (its batched view takes the grouped-convolution rule), or a per-group copy (the shared-weight rule) */
    const run = (copy: boolean) => {
      const x = T.tensor(x0.dataSync(), sx, { backend: T.cpu, dtype: "float64", requiresGrad: true });
      const leaf = copy ? T.groupCopy(T.tensor(w0.dataSync(), sw, { backend: T.cpu, dtype: "float64" }), G)
        : T.tensor(Float64Array.from({ length: G * w0.size }, (_, k) => w0.dataSync()[k % w0.size]), [G, ...sw], { backend: T.cpu, dtype: "float64", requiresGrad: true });
      const w = copy ? leaf : T.batch(leaf);
      const xb = T.batch(T.reshape(x, [G, Bg, ...sx.slice(1)]));
      const y = T.conv2d(xb, w, o);
      const yv = T.unbatch(y).dataSync();
      const loss = T.sum(T.square(T.unbatch(y)));
      const [gx, gw] = T.grad(loss, [x, leaf], { createGraph: true });
      // a second-order term: the input gradient's squared norm, differentiated by the weights
      const [ggw] = T.grad(T.sum(T.square(gx!)), [leaf]);
      return [yv, gx!.dataSync(), T.unbatch(gw!).dataSync(), T.unbatch(ggw!).dataSync()].map((a) => Float64Array.from(a));
    };
    const [want, got] = [run(false), run(true)];
    ["values", "input gradient", "weight gradients", "second derivative"].forEach((what, k) => closeTo(got[k], want[k], `case ${i} ${what}`));
  }
});

S("a weight made from parameters alone (Glow's 1x1 convolution, W = P L U from its LU factors) is computed once, as a per-group copy that the convolution reads as one shared weight: per-group gradients, norms and second derivatives equal the loop", () => {
  const G = 3, Bg = 2, n = 4;
  const m = new InvConv1x1(n, init(20));
  const loss = (x: T.Tensor) => {
    const { y, logdet } = m.forward(x);
    return T.add(T.sum(T.reshape(T.square(y), [x.shape[0], -1]), 1), logdet);
  };
  const x = T.randn(new T.Generator(21), [G * Bg, n, 3, 5], { backend: T.cpu, dtype: "float64" });
  // how the pass convolves: one shared-weight convolution of every image, not a grouped one of G weights
  const be = T.cpu as unknown as { conv2d: (...a: unknown[]) => unknown };
  const conv = be.conv2d, seen: string[] = [];
  be.conv2d = function (this: unknown, ...a: unknown[]) {
    const p = a[2] as { N: number; Cin: number; groups: number };
    seen.push(`N${p.N} Cin${p.Cin} g${p.groups}`);
    return conv.apply(this, a);
  };
  try {
    let w: T.Tensor | null = null;
    const pass = perGroupPass(m, { groups: G }, [x], (xs) => {
      w = m.weight();
      return loss(xs!);
    });
    assert.is(w!.groups, G);
    assert.ok(w!.groupCopy, "the pass's weight is a per-group copy, not [G, n, n] values");
    assert.equal(seen, [`N${G * Bg} Cin${n} g1`]);
    pass.loss.dispose();
  } finally {
    be.conv2d = conv;
  }
  checkAgainstLoop(m, [x], G, loss);
  // second derivatives: each group's gradient of lower, its squared norm differentiated by that group's upper and logs
  const params = [m.lower, m.upper, m.logs];
  const pass = perGroupPass(m, { groups: G }, [x], (xs) => loss(xs!));
  const copies = params.map((p) => pass.copies.get(p)!);
  const [gl] = T.grad(T.sum(pass.loss), [copies[0]], { createGraph: true });
  const got = T.grad(T.sum(T.square(T.unbatch(gl!))), [copies[1], copies[2]]).map((g) => Float64Array.from(T.unbatch(g!).dataSync()));
  for (let g = 0; g < G; g++) {
    const xg = T.slice(x, [g * Bg], [(g + 1) * Bg]);
    const [l] = T.grad(T.sum(loss(xg)), [m.lower], { createGraph: true });
    const want = T.grad(T.sum(T.square(l!)), [m.upper, m.logs]).map((w) => w!.dataSync());
    want.forEach((w, k) => {
      assert.ok(w.some((v) => Math.abs(v) > 1e-3), "the second derivative is not zero");
      closeTo(got[k].subarray(g * w.length, (g + 1) * w.length), w, `second derivative by ${["upper", "logs"][k]}, group ${g}`);
    });
  }
});

S("an upsampling convolution (upsampleConv3x3: a transposed convolution with a kernel made from the weight) with per-group copies: gradients and norms equal the loop; an ordinary kernel folds the groups, per-group kernels are each group's own", () => {
  for (const Bg of [1, 2]) {
    const G = 3;
    const conv = new Conv2d(2, 3, 3, init(30));
    const x = T.randn(new T.Generator(31), [G * Bg, 2, 3, 4], { backend: T.cpu, dtype: "float64" });
    const loss = (xs: T.Tensor) => T.sum(T.reshape(T.square(conv.forwardUpsampled(xs, "silu")), [xs.shape[0], -1]), 1);
    checkAgainstLoop(conv, [x], G, loss);
  }
  // an ordinary kernel against batched images: each group's transposed convolution
  const gy = T.randn(new T.Generator(32), [6, 2, 3, 4], { backend: T.cpu, dtype: "float64" });
  const k = T.randn(new T.Generator(33), [2, 3, 4, 4], { backend: T.cpu, dtype: "float64" });
  const o = { stride: 2, padding: 1 };
  const y = T.unbatch(T.conv2dInputGrad(T.batch(T.reshape(gy, [3, 2, 2, 3, 4])), k, [2, 3, 6, 8], o));
  closeTo(y.dataSync(), T.conv2dInputGrad(gy, k, [6, 3, 6, 8], o).dataSync(), "folded transposed convolution");
  // per-group kernels (not copies): each group's own transposed convolution
  const ks = T.randn(new T.Generator(34), [3, 2, 3, 4, 4], { backend: T.cpu, dtype: "float64" });
  const yk = T.unbatch(T.conv2dInputGrad(T.batch(T.reshape(gy, [3, 2, 2, 3, 4])), T.batch(ks), [2, 3, 6, 8], o)).dataSync();
  for (let g = 0; g < 3; g++) {
    const one = T.conv2dInputGrad(T.slice(gy, [2 * g], [2 * g + 2]), T.reshape(T.slice(ks, [g], [g + 1]), [2, 3, 4, 4]), [2, 3, 6, 8], o).dataSync();
    closeTo(yk.subarray(g * one.length, (g + 1) * one.length), one, `per-group kernel, group ${g}`);
  }
});

S("values of the parameters alone in every form onCopies meets (a copy used twice by one op, an operand made from another, rank-3 products, logsumexp, softmax): gradients, norms and second derivatives equal the loop; hooks run once", () => {
  const G = 3, Bg = 2;
  const m = new CopyZoo(init(40));
  const x = T.randn(new T.Generator(41), [G * Bg, 3], { backend: T.cpu, dtype: "float64" });
  checkAgainstLoop(m, [x], G, (xs) => m.loss(xs));
  // second derivatives: each group's squared gradient of p and of r, differentiated by p, q and r
  for (const first of [m.p, m.r]) {
    const pass = perGroupPass(m, { groups: G }, [x], (xs) => m.loss(xs!));
    const cs = [m.p, m.q, m.r].map((t) => pass.copies.get(t)!);
    const [g1] = T.grad(T.sum(pass.loss), [pass.copies.get(first)!], { createGraph: true });
    const got = T.grad(T.sum(T.square(T.unbatch(g1!))), cs).map((g) => Float64Array.from(T.unbatch(g!).dataSync()));
    for (let g = 0; g < G; g++) {
      const [l] = T.grad(T.sum(m.loss(T.slice(x, [g * Bg], [(g + 1) * Bg]))), [first], { createGraph: true });
      T.grad(T.sum(T.square(l!)), [m.p, m.q, m.r]).forEach((w, k) => {
        const d = w!.dataSync();
        closeTo(got[k].subarray(g * d.length, (g + 1) * d.length), d, `d/d${"pqr"[k]} of |dL/d${first.name}|^2, group ${g}`);
      });
    }
  }
  // a hook on a copy runs once per backward and its doubling is seen once, recording a graph or not
  const plain = perGroupPass(m, { groups: G }, [x], (xs) => m.loss(xs!));
  const want = T.unbatch(T.grad(T.sum(plain.loss), [plain.copies.get(m.q)!])[0]!).dataSync();
  for (const createGraph of [false, true]) {
    const pass = perGroupPass(m, { groups: G }, [x], (xs) => m.loss(xs!));
    const c = pass.copies.get(m.q)!;
    let calls = 0;
    c.registerHook((g) => {
      calls++;
      return T.mul(g, 2);
    });
    const [g2] = T.grad(T.sum(pass.loss), [c], { createGraph });
    assert.is(calls, 1, `hook calls, createGraph ${createGraph}`);
    closeTo(T.unbatch(g2!).dataSync(), want.map((v) => 2 * v), `hooked gradient, createGraph ${createGraph}`);
  }
});

S("a derived copy reads as its values repeated per group, survives the scope it leaves, refuses another group count; forwardUpsampled takes ordinary images and per-group weights as forward(upsampleNearest(x)) does", () => {
  const f64 = (seed: number, shape: number[]) => T.randn(new T.Generator(seed), shape, { backend: T.cpu, dtype: "float64" });
  const p = f64(50, [2, 3]);
  const c = T.groupCopy(p, 3);
  const e = T.exp(c);
  assert.ok(e.groupCopy, "exp of a copy is a copy");
  const want = T.exp(p).dataSync();
  assert.equal(Array.from(T.unbatch(e).dataSync()), [...want, ...want, ...want]);
  assert.equal(Array.from(e.detach().groupCopy ? T.unbatch(e.detach()).dataSync() : []), [...want, ...want, ...want]);
  const xb = T.batch(f64(51, [3, 2, 3]));
  const kept = T.tidy(() => {
    const d = T.exp(c);
    T.mul(d, xb); // makes d's [G, ...] values inside this scope
    return d;
  });
  closeTo(T.unbatch(T.mul(kept, xb)).dataSync(), T.unbatch(T.mul(T.exp(c), xb)).dataSync(), "a derived copy after its scope");
  assert.throws(() => T.add(T.groupCopy(p, 2), T.groupCopy(p, 3)), /operands batched over 2 and 3 groups/);
  // forwardUpsampled against forward(upsampleNearest(x)) in a pass: ordinary images (one per group's copy), and a per-group weight
  const conv = new Conv2d(2, 3, 3, init(52));
  const x = f64(53, [2, 2, 3, 4]);
  const run = (up: boolean) => {
    const pass = perGroupPass(conv, { groups: 3 }, [], () => T.reshape(T.sum(T.square(up ? conv.forwardUpsampled(x, "relu") : conv.forward(T.upsampleNearest(x), "relu"))), [1]));
    return perGroupGradients(pass, conv.parameters()).map((g) => Float64Array.from(g.dataSync()));
  };
  const [a, b] = [run(true), run(false)];
  a.forEach((g, i) => closeTo(g, b[i], `ordinary images, parameter ${i}`));
  const wb = T.batch(f64(54, [3, 3, 2, 3, 3]));
  const y1 = T.unbatch(T.upsampleConv3x3(T.batch(f64(55, [3, 2, 2, 3, 4])), wb, null));
  const y2 = T.unbatch(T.conv2d(T.upsampleNearest(T.batch(f64(55, [3, 2, 2, 3, 4]))), wb, { padding: 1 }));
  closeTo(y1.dataSync(), y2.dataSync(), "per-group weights");
});

S("norms-only: a weight used by a product and anywhere else is refused; without normsOnly its gradient is the sum of both uses", () => {
  const lin = new Linear(3, 2, init(12));
  const x = T.randn(new T.Generator(13), [4, 3], { backend: T.cpu, dtype: "float64" });
  const loss = (xs: T.Tensor) => T.add(T.sum(T.square(lin.forward(xs)), 1), T.sum(T.square(lin.weight)));
  const pass = perGroupPass(lin, { groups: 2, normsOnly: true }, [x], (xs) => loss(xs!));
  assert.throws(() => perGroupSquaredNorms(pass, lin.parameters()), /parameter weight enters the loss more than once/);
  checkAgainstLoopGradientsOnly(lin, [x], 2, (xs) => loss(xs));
});

S("a module's own forward is unchanged outside a pass, and withParameters restores the fields when f throws", () => {
  const lin = new Linear(3, 2, init(7));
  const w = lin.weight;
  const other = T.zeros([3, 2], { backend: T.cpu, dtype: "float64" });
  assert.throws(() => withParameters(lin, new Map([[w, other]]), () => {
    assert.is(lin.weight, other);
    throw new Error("boom");
  }), /boom/);
  assert.is(lin.weight, w);
  const stray = T.zeros([1], { backend: T.cpu, dtype: "float64" });
  assert.throws(() => withParameters(lin, new Map([[stray, other]]), () => 0), /not held in a field/);
});

S("an op without a batching rule refuses a batched operand instead of reading its storage", () => {
  const g = T.batch(T.randn(new T.Generator(8), [2, 1, 1, 3, 3], { backend: T.cpu, dtype: "float64" }));
  const x = T.randn(new T.Generator(9), [1, 1, 3, 3], { backend: T.cpu, dtype: "float64" });
  assert.throws(() => T.conv2dWeightGrad(x, g, [1, 1, 3, 3], { padding: 1 }), /batched over 2 groups and conv2dWeightGrad has no batching rule/);
});

S("the Gram form agrees with explicit per-group weight gradients of rank-3 inputs (rows of all tokens)", () => {
  const G = 2, Bg = 2, Tk = 3;
  const a = T.randn(new T.Generator(10), [G * Bg * Tk, 4], { backend: T.cpu, dtype: "float64" });
  const g = T.randn(new T.Generator(11), [G * Bg * Tk, 5], { backend: T.cpu, dtype: "float64" });
  const n = gramNorm(a, g, G).dataSync();
  for (let k = 0; k < G; k++) {
    const rows = Bg * Tk;
    const wk = T.mm(T.slice(a, [k * rows], [(k + 1) * rows]), T.slice(g, [k * rows], [(k + 1) * rows]), true, false);
    const want = [...wk.dataSync()].reduce((s, v) => s + v * v, 0);
    assert.ok(Math.abs(n[k] - want) < 1e-10 * want, `group ${k}: ${n[k]} vs ${want}`);
  }
});

S.run();
