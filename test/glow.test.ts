// Glow: exact invertibility, log-determinants against the Jacobian built with the engine, and
// NLL gradients of every parameter tensor against finite differences (float64, CPU).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Glow } from "../src/models/glow.ts";
import { ActNorm, AffineCoupling, FlowStep, InvConv1x1, depthToSpace, LogitPreprocess, spaceToDepth } from "../src/models/glow_layers.ts";
import { logAbsDet } from "../src/models/host_linalg.ts";
import { gpuTest, maxRelErr, webgpu } from "./helpers.ts";

const S = suite("glow");
const G = gpuTest(S, await webgpu());
const f64 = { backend: T.cpu, dtype: "float64" as const };
const init = (seed: number) => ({ ...f64, gen: new T.Generator(seed) });
const rnd = (seed: number, shape: number[], std = 0.5) => T.randn(new T.Generator(seed), shape, { ...f64, std });

/** Random values in every parameter, so zero-initialised layers are not the identity. */
function perturb(m: { namedParameters(): [string, T.Tensor][] }, seed: number, std = 0.1) {
  m.namedParameters().forEach(([, p], i) => {
    const r = T.randn(new T.Generator(seed + i), [...p.shape], { backend: p.backend, dtype: p.dtype, std });
    p.assign(T.add(p, r));
  });
}

/** log|det dy/dx| per example, from the Jacobian's rows: one backward per output unit, example 0. */
function jacobianLogDet(f: (x: T.Tensor) => T.Tensor, x: T.Tensor): number {
  const xs = x.detach().requireGrad();
  const y = T.reshape(f(xs), [x.shape[0], -1]);
  const D = y.shape[1];
  if (D !== x.size / x.shape[0]) throw new Error(`not square: ${D} outputs for ${x.size / x.shape[0]} inputs`);
  const J = new Float64Array(D * D);
  for (let j = 0; j < D; j++) {
    const seed = new Float64Array(y.size);
    seed[j] = 1; // output j of example 0
    const [g] = T.grad(y, [xs], { seed: T.tensor(seed, y.shape, f64) });
    J.set(g!.dataSync().subarray(0, D), j * D);
  }
  return logAbsDet(J, D);
}

const X = () => rnd(1, [2, 4, 4, 4]);

S("spaceToDepth / depthToSpace (Glow's squeeze and unsqueeze) are exact inverses and a permutation", () => {
  const x = rnd(2, [2, 3, 4, 6]);
  const y = spaceToDepth(x);
  assert.equal(y.shape, [2, 12, 2, 3]);
  assert.equal([...depthToSpace(y).dataSync()], [...x.dataSync()]);
  assert.equal([...y.dataSync()].sort(), [...x.dataSync()].sort());
});

S("every layer inverts to 1e-4 and its log-determinant equals log|det J|", async () => {
  const layers: [string, { forward(x: T.Tensor): { y: T.Tensor; logdet: T.Tensor }; reverse(y: T.Tensor): T.Tensor | Promise<T.Tensor> }][] = [
    ["actnorm", new ActNorm(4, init(3))],
    ["invconv1x1", new InvConv1x1(4, init(4))],
    ["coupling", new AffineCoupling(4, 6, init(5))],
    ["flow step", new FlowStep(4, 6, init(6))],
  ];
  for (const [name, layer] of layers) {
    perturb(layer as unknown as ActNorm, 100);
    const x = X();
    const { y, logdet } = layer.forward(x);
    const back = await layer.reverse(y);
    assert.ok(maxRelErr(back.dataSync(), x.dataSync()) < 1e-4, `${name}: inverse err ${maxRelErr(back.dataSync(), x.dataSync())}`);
    // Example 0's log-determinant (a data-independent one is a single value for every example).
    const ld = logdet.dataSync()[0];
    const jac = jacobianLogDet((t) => layer.forward(t).y, x);
    assert.ok(Math.abs(ld - jac) < 1e-8 * Math.max(1, Math.abs(jac)), `${name}: logdet ${ld} vs log|det J| ${jac}`);
  }
});

const tiny = () => {
  const g = new Glow({ levels: 2, steps: 2, hidden: 4, image: [1, 4, 4] }, init(7));
  g.initialize(rnd(8, [4, 1, 4, 4], 0.3));
  perturb(g, 200, 0.05);
  return g;
};

S("whole model: decode(encode(x)) = x, and its log-determinant equals log|det J| of x -> z", async () => {
  const g = tiny();
  const x = rnd(9, [2, 1, 4, 4], 0.3);
  const e = g.encode(x);
  const back = await g.decode(e.zs);
  assert.ok(maxRelErr(back.dataSync(), x.dataSync()) < 1e-4);
  const flat = (t: T.Tensor) => {
    const zs = g.encode(t).zs.map((z) => T.reshape(z, [t.shape[0], -1]));
    return T.concat(zs, 1);
  };
  const jac = jacobianLogDet(flat, x);
  const ld = e.logdet.dataSync()[0];
  assert.ok(Math.abs(ld - jac) < 1e-8 * Math.max(1, Math.abs(jac)), `logdet ${ld} vs ${jac}`);
});

/** The NLL sum's gradient w.r.t. every parameter tensor of g against float64 central differences (relative error < 1e-6). */
function assertNllGradsMatchFD(g: Glow, x: T.Tensor) {
  const loss = () => T.sum(g.nll(x));
  g.zeroGrad();
  loss().backward();
  const eps = 1e-6;
  for (const [name, p] of g.namedParameters()) {
    const base = p.dataSync(), an = p.grad!.dataSync();
    let worst = 0;
    for (let i = 0; i < base.length; i++) {
      const at = (d: number) => {
        const v = base.slice();
        v[i] += d;
        p.assign(T.tensor(v, p.shape, f64));
        return T.noGrad(() => loss().dataSync()[0]);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      p.assign(T.tensor(base, p.shape, f64));
      worst = Math.max(worst, Math.abs(fd - an[i]) / Math.max(1, Math.abs(fd)));
    }
    assert.ok(worst < 1e-6, `${name}: worst error ${worst}`);
  }
}

S("NLL gradient of every parameter tensor matches central finite differences", () => {
  const g = tiny();
  const x = rnd(10, [3, 1, 4, 4], 0.3);
  assertNllGradsMatchFD(g, x);
});

S("samples are valid 8-bit images; NLL is -log p(z) - log|det J| plus the discretisation term D log 256", async () => {
  const g = tiny();
  const s = await g.sample(3, new T.Generator(11), { temperature: 0.7 });
  assert.is(s.length, 3 * 16);
  assert.ok(s.some((v) => v !== s[0]), "samples are not constant");
  const x = rnd(12, [2, 1, 4, 4], 0.2);
  const nll = g.nll(x).dataSync();
  const { logpz, logdet } = g.encode(x);
  const lp = logpz.dataSync(), ld = logdet.dataSync();
  // The log-determinant itself is checked against the Jacobian above; D = 16 dimensions.
  const jac = jacobianLogDet((t) => T.concat(g.encode(t).zs.map((z) => T.reshape(z, [t.shape[0], -1])), 1), x);
  assert.ok(Math.abs(ld[0] - jac) < 1e-8 * Math.max(1, Math.abs(jac)));
  for (let i = 0; i < 2; i++) {
    const want = -(lp[i] + ld[ld.length === 1 ? 0 : i]) + 16 * Math.log(256);
    assert.ok(Math.abs(nll[i] - want) < 1e-9 * Math.abs(want), `example ${i}: nll ${nll[i]} vs ${want}`);
  }
});

// The logit representation (config key logit = alpha): pixels in [-1/2, 1/2), so inputs are uniform there.
const pixels = (seed: number, shape: number[]) => T.rand(new T.Generator(seed), shape, { ...f64, low: -0.5, high: 0.5 });
const tinyLogit = () => {
  const g = new Glow({ levels: 2, steps: 2, hidden: 4, image: [1, 4, 4], logit: 0.05 }, init(17));
  g.initialize(pixels(18, [4, 1, 4, 4]));
  perturb(g, 400, 0.05);
  return g;
};

S("logit preprocessing: inverse to 1e-10, log-determinant equals log|det J|, black pixels stay bounded", () => {
  const pre = new LogitPreprocess(0.05);
  const x = pixels(19, [2, 4, 4, 4]);
  const { y, logdet } = pre.forward(x);
  assert.ok(maxRelErr(pre.reverse(y).dataSync(), x.dataSync()) < 1e-10);
  const jac = jacobianLogDet((t) => pre.forward(t).y, x);
  assert.ok(Math.abs(logdet.dataSync()[0] - jac) < 1e-8 * Math.abs(jac), `logdet ${logdet.dataSync()[0]} vs ${jac}`);
  // Pixel 0 (y = -1/2) maps to logit(alpha), not -infinity.
  const lo = pre.forward(T.tensor([-0.5], [1, 1, 1, 1], f64)).y.dataSync()[0];
  assert.ok(Math.abs(lo - Math.log(0.05 / 0.95)) < 1e-12, `logit of black ${lo}`);
  assert.throws(() => new LogitPreprocess(0), /alpha 0/);
});

S("Glow with logit: decode(encode(x)) = x, log-determinant = log|det J| of pixels -> z, NLL = that plus D log 256", async () => {
  const g = tinyLogit();
  const x = pixels(20, [2, 1, 4, 4]);
  const e = g.encode(x);
  const back = await g.decode(e.zs);
  assert.ok(maxRelErr(back.dataSync(), x.dataSync()) < 1e-8, `inverse err ${maxRelErr(back.dataSync(), x.dataSync())}`);
  const jac = jacobianLogDet((t) => T.concat(g.encode(t).zs.map((z) => T.reshape(z, [t.shape[0], -1])), 1), x);
  const ld = e.logdet.dataSync(), lp = e.logpz.dataSync(), nll = g.nll(x).dataSync();
  assert.ok(Math.abs(ld[0] - jac) < 1e-8 * Math.abs(jac), `logdet ${ld[0]} vs ${jac}`);
  // The preprocessing's own log-determinant is part of it (without it the two would differ by ~16 * 2.9).
  const pre = new LogitPreprocess(0.05).forward(x).logdet.dataSync()[0];
  assert.ok(Math.abs(pre) > 10, `preprocessing logdet ${pre}`);
  for (let i = 0; i < 2; i++) {
    const want = -(lp[i] + ld[i]) + 16 * Math.log(256);
    assert.ok(Math.abs(nll[i] - want) < 1e-9 * Math.abs(want), `example ${i}: nll ${nll[i]} vs ${want}`);
  }
  const s = await g.sample(3, new T.Generator(21), { temperature: 0.7 });
  assert.is(s.length, 3 * 16);
  assert.ok(s.some((v) => v !== s[0]), "samples are not constant");
});

S("Glow with logit: NLL gradient of every parameter tensor matches central finite differences", () => {
  const g = tinyLogit();
  const x = pixels(22, [3, 1, 4, 4]);
  assertNllGradsMatchFD(g, x);
});

G("whole model inverts on the webgpu backend (float32)", async (gpu) => {
  const g = new Glow({ levels: 2, steps: 2, hidden: 8, image: [1, 8, 8] }, { backend: gpu, gen: new T.Generator(13) });
  const x = T.rand(new T.Generator(14), [3, 1, 8, 8], { backend: gpu, low: -0.5, high: 0.5 });
  g.initialize(x);
  perturb(g, 300, 0.05);
  const back = await g.decode(g.encode(x).zs);
  const err = maxRelErr(await back.data(), await x.data());
  assert.ok(err < 1e-4, `gpu inverse err ${err}`);
});

S.run();
