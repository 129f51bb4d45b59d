// One optimiser step against a hand-computed update; gradient clipping; modules.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Adam, Adamax, clipGradNorm } from "../src/nn/optim.ts";
import { Linear, Module } from "../src/nn/module.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";

const S = suite("optimisers and modules");
const f64 = { backend: T.cpu, dtype: "float64" as const };

S("Adam: two steps match the update rule computed by hand", () => {
  const p = T.tensor([1, -2], [2], { ...f64, requiresGrad: true });
  const opt = new Adam([p], { lr: 0.1 });
  const grads = [[0.5, -1], [0.2, 0.3]];
  let m = [0, 0], v = [0, 0], w = [1, -2];
  for (let t = 1; t <= 2; t++) {
    p.grad = T.tensor(grads[t - 1], [2], f64);
    opt.update();
    m = m.map((mi, i) => 0.9 * mi + 0.1 * grads[t - 1][i]);
    v = v.map((vi, i) => 0.999 * vi + 0.001 * grads[t - 1][i] ** 2);
    w = w.map((wi, i) => wi - 0.1 * (m[i] / (1 - 0.9 ** t)) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8));
  }
  p.dataSync().forEach((x, i) => assert.ok(Math.abs(x - w[i]) < 1e-12, `${x} vs ${w[i]}`));
});

S("Adamax: one step matches; weight decay is off by default and applies when set", () => {
  const p = T.tensor([1, -2], [2], { ...f64, requiresGrad: true });
  new Adamax([p], { lr: 0.01 }).update(); // no grad: skipped
  assert.equal([...p.dataSync()], [1, -2]);
  p.grad = T.tensor([0.5, -1], [2], f64);
  new Adamax([p], { lr: 0.01 }).update();
  // m = 0.1 g, u = |g|, step = lr * (m / 0.1) / u = lr * sign(g)
  p.dataSync().forEach((x, i) => assert.ok(Math.abs(x - ([1, -2][i] - 0.01 * Math.sign([0.5, -1][i]))) < 1e-9));
  const q = T.tensor([1], [1], { ...f64, requiresGrad: true });
  q.grad = T.tensor([0], [1], f64);
  new Adam([q], { lr: 0.1, weightDecay: 0.5 }).update();
  assert.ok(q.dataSync()[0] < 1, "decay moved the weight");
});

S("the fused update (wasm momentUpdate) equals the composed ops: Adam and Adamax, with and without weight decay, odd, size-1, tail and threaded sizes, poisoned outputs, three steps", async () => {
  const wb = await createWasmBackend();
  wb.poison = true;
  try {
    for (const [Opt, wd] of [[Adam, 0], [Adam, 0.01], [Adamax, 0], [Adamax, 0.01]] as const) {
      for (const n of [1, 3, 4, 67, 70001]) {
        const g = new T.Generator(n + (Opt === Adam ? 0 : 7) + wd * 1000);
        const init = T.rand(g, [n], { backend: T.cpu, low: -1, high: 1 }).dataSync();
        const grads = [0, 1, 2].map(() => T.rand(g, [n], { backend: T.cpu, low: -2, high: 2 }).dataSync());
        grads[1][0] = 0; // a zero gradient (Adamax: max(b2 v, 0))
        const run = (composed: boolean) => {
          // the composed path on the same backend: momentUpdate hidden by an own property
          if (composed) (wb as unknown as Record<string, unknown>).momentUpdate = undefined;
          try {
            const p = T.tensor(init, [n], { backend: wb, requiresGrad: true });
            const opt = new Opt([p], { lr: 0.01, weightDecay: wd });
            for (const gr of grads) {
              p.grad = T.tensor(gr, [n], { backend: wb });
              opt.update();
            }
            return [p, opt.m[0], opt.v[0]].map((t) => t.dataSync());
          } finally {
            if (composed) delete (wb as unknown as Record<string, unknown>).momentUpdate;
          }
        };
        const fused = run(false), composed = run(true);
        for (let k = 0; k < 3; k++) {
          const e = maxRel(fused[k], composed[k]);
          // the SIMD kernels round as the fused one does; tensors under 64 elements take TypeScript loops (products in double): an ulp or two
          assert.ok(n >= 64 ? e === 0 : e < 1e-6, `${Opt.name} wd ${wd} n ${n}: ${["p", "m", "v"][k]} differs by ${e}`);
          assert.ok(fused[k].every(Number.isFinite), "poison left in an output");
        }
      }
    }
  } finally {
    wb.poison = false;
    wb.close();
  }
});

S("clipping and the update of many parameters, one op each (wasm sumSquaresAll, scaleAll, momentUpdate over a list), equal the composed ops bit for bit: sizes 1 to past the threaded split and a scalar, clipping off and on, three steps, poisoned outputs", async () => {
  const wb = await createWasmBackend();
  wb.poison = true;
  const FUSED = ["momentUpdate", "sumSquaresAll", "scaleAll"] as const;
  const proto = Object.getPrototypeOf(wb) as Record<string, (...a: unknown[]) => unknown>;
  const saved = FUSED.map((k) => proto[k]), calls = { n: 0 };
  FUSED.forEach((k, i) => { proto[k] = function (this: unknown, ...a: unknown[]) { calls.n++; return saved[i].apply(this, a); }; });
  try {
    // under 256 elements the reduce is a TypeScript loop, from 256 a kernel; under 64 the multiply is a loop
    const sizes: number[][] = [[1], [3], [63], [64], [255], [256], [4, 67], [70001], []];
    for (const maxNorm of [1e9, 5, 0.5]) {
      for (const Opt of [Adam, Adamax]) {
        const g = new T.Generator(maxNorm === 5 ? 2 : 3);
        const init = sizes.map((sh) => T.rand(g, sh, { backend: T.cpu, low: -1, high: 1 }).dataSync());
        const grads = [0, 1, 2].map(() => sizes.map((sh) => T.rand(g, sh, { backend: T.cpu, low: -2, high: 2 }).dataSync()));
        const run = (composed: boolean) => {
          if (composed) for (const k of FUSED) (wb as unknown as Record<string, unknown>)[k] = undefined;
          try {
            const ps = sizes.map((sh, i) => T.tensor(init[i], sh, { backend: wb, requiresGrad: true }));
            const opt = new Opt(ps, { lr: 0.01, weightDecay: 0.01 });
            const norms: number[] = [];
            for (const gr of grads) {
              ps.forEach((p, i) => { p.grad = T.tensor(gr[i], sizes[i], { backend: wb }); });
              const n = clipGradNorm(ps, maxNorm);
              norms.push(n.dataSync()[0]);
              n.dispose();
              opt.update();
            }
            return { norms, grads: ps.map((p) => p.grad!.dataSync()), state: [...ps, ...opt.m, ...opt.v].map((t) => t.dataSync()) };
          } finally {
            if (composed) for (const k of FUSED) delete (wb as unknown as Record<string, unknown>)[k];
          }
        };
        const before = calls.n, f = run(false);
        assert.is(calls.n - before, 9, "three fused ops a step");
        const c = run(true);
        assert.equal(f.norms, c.norms, `${Opt.name} max ${maxNorm}: the norms`);
        if (maxNorm === 0.5) assert.ok(f.norms.every((n) => n > 0.5), "clipping was active");
        f.grads.forEach((a, i) => {
          const at = Array.from(a).findIndex((v, j) => !Object.is(v, c.grads[i][j]));
          assert.ok(at < 0, `${Opt.name} max ${maxNorm}: clipped gradient of [${sizes[i]}] at ${at}: ${a[at]} fused, ${c.grads[i][at]} composed`);
          assert.ok(a.every(Number.isFinite), "poison left in a clipped gradient");
        });
        f.state.forEach((a, i) => {
          const k = i % sizes.length, n = sizes[k].reduce((p, q) => p * q, 1);
          // under 64 elements the composed ops are TypeScript loops (products in double): a few ulp
          // of the tensor's scale apart after three steps; from 64 the same kernels, bit for bit
          const scale = Math.max(1e-30, ...Array.from(c.state[i], Math.abs));
          const e = n >= 64 ? maxRel(a, c.state[i]) : Math.max(...Array.from(a, (v, j) => Math.abs(v - c.state[i][j]))) / scale;
          assert.ok(n >= 64 ? e === 0 : e < 1e-5, `${Opt.name} max ${maxNorm}: ${["p", "m", "v"][Math.floor(i / sizes.length)]} of [${sizes[k]}] differs by ${e}`);
          assert.ok(a.every(Number.isFinite), "poison left in an update");
        });
      }
    }
  } finally {
    FUSED.forEach((k, i) => { proto[k] = saved[i]; });
    wb.poison = false;
    wb.close();
  }
});

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]) / Math.max(1e-30, Math.abs(b[i])));
  return e;
}

S("clipGradNorm scales all gradients to the max norm and returns the norm before", () => {
  const a = T.tensor([0], [1], { ...f64, requiresGrad: true }), b = T.tensor([0, 0], [2], { ...f64, requiresGrad: true });
  a.grad = T.tensor([3], [1], f64);
  b.grad = T.tensor([0, 4], [2], f64);
  const n = clipGradNorm([a, b], 1);
  assert.ok(Math.abs(n.dataSync()[0] - 5) < 1e-12);
  assert.ok(Math.abs(a.grad!.dataSync()[0] - 0.6) < 1e-6 && Math.abs(b.grad!.dataSync()[1] - 0.8) < 1e-6);
  a.grad = T.tensor([0.3], [1], f64);
  b.grad = null;
  clipGradNorm([a, b], 1);
  assert.ok(Math.abs(a.grad!.dataSync()[0] - 0.3) < 1e-12, "small gradients untouched");
});

S("modules: stable dotted names in registration order, train/eval modes", () => {
  class Net extends Module {
    readonly enc: Linear;
    readonly dec: Linear;
    constructor() {
      super();
      const o = { ...f64, gen: new T.Generator(1) };
      this.enc = this.child("encoder", new Linear(3, 4, o));
      this.dec = this.child("decoder", new Linear(4, 2, { ...o, bias: false }));
    }
  }
  const n = new Net();
  assert.equal(n.namedParameters().map(([k]) => k), ["encoder.weight", "encoder.bias", "decoder.weight"]);
  assert.is(n.numParameters(), 12 + 4 + 8);
  n.eval();
  assert.ok(n.modules().every((m) => !m.training));
  n.train();
  assert.ok(n.enc.training);
});

S.run();
