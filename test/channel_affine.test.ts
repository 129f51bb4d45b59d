// ActNorm's per-channel affine in one op each way (T.channelAffine; the wasm backend's ca_fwd and
// ca_bwd, src/kernels/wasm/coupling.ts) against the composed ops (the same backend with the fused
// ops hidden): values, first- and second-order gradients, and a per-group pass's per-group
// gradients and features, bit for bit, with poisoned outputs; its gradient against float64 central
// differences (the composed ops on the CPU backend).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import type { Task } from "../src/kernels/wasm/runtime.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";
import { Glow } from "../src/models/glow.ts";
import { drawsOf, fusedPerGroupPassMatchesComposed, gradcheck, hideOps, perturbed, rand64, sameBits } from "./helpers.ts";

const wb = await createWasmBackend();
const S = suite(`channelAffine, ActNorm's affine: fused against composed (${wb.description}, poisoned outputs)`);
S.before(() => { wb.poison = true; });
S.after(() => { wb.poison = false; wb.close(); });

const OPS = ["channelAffine", "channelAffineGrad"] as const;
type Counts = Record<typeof OPS[number], number>;

/** Counts the fused ops' calls that returned a result, those whose phase was offered to every thread, and those on a folded per-group batch (N = folded). */
function counting(folded = 0) {
  const proto = Object.getPrototypeOf(wb) as Record<string, (...a: unknown[]) => unknown>;
  const kept = Object.fromEntries(OPS.map((k) => [k, proto[k]])) as Record<typeof OPS[number], (...a: unknown[]) => unknown>;
  const n: Counts = { channelAffine: 0, channelAffineGrad: 0 }, threaded: Counts = { ...n }, onFolded: Counts = { ...n };
  const pool = wb.runtime.pool as unknown as { run: (jobs: Task[], parallel?: boolean) => void };
  const poolRun = pool.run;
  let parallel = false;
  pool.run = function (this: unknown, jobs: Task[], par?: boolean) {
    parallel ||= par === true;
    return poolRun.call(this, jobs, par);
  };
  for (const k of OPS) {
    proto[k] = function (this: unknown, ...a: unknown[]) {
      parallel = false;
      const r = kept[k].apply(this, a);
      if (r) {
        n[k]++;
        if (parallel) threaded[k]++;
        if (folded && a[k === "channelAffine" ? 3 : 4] === folded) onFolded[k]++;
      }
      return r;
    };
  }
  return { n, threaded, onFolded, restore: () => { for (const k of OPS) proto[k] = kept[k]; delete (pool as { run?: unknown }).run; } };
}

const fin = (t: T.Tensor) => T.where(T.eq(t, t), t, T.zerosLike(t));

/**
 * y = channelAffine(x, bias, scale), a weighted sum of its finite values, and its gradients in
 * x, bias and scale (the fused backward: no graph recorded); with `second`, the gradients' graph
 * recorded (the composed backward rules) and the second-order gradients of their squares' sum.
 */
function valuesAndGrads(composed: boolean, second: boolean, data: { x: Float32Array; sx: number[]; b: Float32Array; s: Float32Array; w: Float32Array }): number[][] {
  const restore = hideOps(wb, composed ? OPS : []);
  try {
    return T.tidy(() => {
      const C = data.sx[1];
      const x = T.tensor(data.x, data.sx, { backend: wb, requiresGrad: true }), b = T.tensor(data.b, [C], { backend: wb, requiresGrad: true });
      const s = T.tensor(data.s, [C], { backend: wb, requiresGrad: true });
      const y = T.channelAffine(x, b, s);
      const loss = T.sum(T.mul(fin(y), T.tensor(data.w, data.sx, { backend: wb })));
      const gs = T.grad(loss, [x, b, s], { createGraph: second });
      if (!second) return [y, ...gs].map((t) => Array.from(t!.dataSync()));
      const d2 = T.grad(T.add(T.add(T.sum(T.square(fin(gs[0]!))), T.sum(T.square(fin(gs[1]!)))), T.sum(T.square(fin(gs[2]!)))), [x, b, s]);
      return d2.map((t) => Array.from(t!.dataSync()));
    });
  } finally {
    restore();
  }
}

S("fused forward and backward equal the composed ops bit for bit (values, gradients of x, bias and scale, second-order gradients) on odd, short-row, rank-3, row-tail and threaded shapes, with NaN, infinities and signed zeros, and with rows whose sums round at every step (their order shows); rows of one position compose", () => {
  const { n, threaded, restore } = counting();
  const cases: [number[], boolean][] = [ // x shape; the fused ops run
    [[2, 3, 5, 7], true], // rows of 35 floats: vectors and a tail; 6 rows: summed by reduce's kernel as a block of four and two alone
    [[1, 1, 1, 2], true], // one row of two floats: lanes only
    [[3, 4, 1, 3], true], // rows of 3 floats
    [[5, 3, 2, 2], true], // rows of one vector; 15 rows
    [[2, 5, 6], true], // rank 3
    [[64, 4, 14, 14], true], // the shipped Glow's first level at batch 64
    [[64, 8, 7, 7], true], // its second level
    [[7, 6, 40, 41], true], // threaded (68,880 floats), row ranges starting inside an image (the channel wraps)
    [[4, 3, 1, 1], false], // rows of one position: composed
    [[6, 5], false], // rank 2: composed
  ];
  const special = [NaN, Infinity, -Infinity, -0, 0, 3e-39, -3e-39];
  try {
    for (const [sx, fuses] of cases) {
      for (const kind of ["plain", "specials", "wide"] as const) {
        const specials = kind === "specials";
        const g = new T.Generator(sx.reduce((p, q) => p * 7 + q, specials ? 5 : kind === "wide" ? 7 : 3)), C = sx[1];
        const x = T.randn(g, sx, { backend: T.cpu }).dataSync() as Float32Array, w = T.randn(g, sx, { backend: T.cpu }).dataSync() as Float32Array;
        const b = T.randn(g, [C], { backend: T.cpu }).dataSync() as Float32Array, s = T.exp(T.randn(g, [C], { backend: T.cpu })).dataSync() as Float32Array;
        if (specials) {
          special.forEach((v, i) => { x[(i * 13) % x.length] = v; w[(i * 7 + 3) % w.length] = v === v ? -v : 1; });
          b[0] = -0;
          if (C > 1) x[x.length - 1] = -b[C - 1]; // x + bias = +0 exactly
        }
        // rows whose sums start at 2^40 and end at -2^40, small terms between: each partial sum in
        // double rounds and the big ones cancel, so only the reference's order gives its bits.
        // Even rows: g (w) so, for the sums of dx = g * scale; odd rows: x so, with g equal at
        // both ends, for the sums of g * (x + bias)
        const HW = x.length / (sx[0] * C);
        if (kind === "wide") {
          for (let i = 0, r = 0; i < x.length; i += HW, r++) {
            const v = r % 2 ? x : w;
            v[i] = 2 ** 40;
            v[i + HW - 1] = -(2 ** 40);
            if (r % 2) w[i + HW - 1] = w[i];
          }
        }
        const data = { x, sx, b, s, w }, what = `${JSON.stringify(sx)} ${kind}`;
        const before = { ...n };
        const f = valuesAndGrads(false, false, data);
        assert.is(n.channelAffine > before.channelAffine && n.channelAffineGrad > before.channelAffineGrad, fuses, `${what}: the fused ops ran (${fuses ? "expected" : "not expected"})`);
        sameBits(f, valuesAndGrads(true, false, data), ["y", "dx", "dbias", "dscale"], what, !specials);
        sameBits(valuesAndGrads(false, true, data), valuesAndGrads(true, true, data), ["d2x", "d2bias", "d2scale"], `${what}, second order`, !specials);
      }
    }
    // the largest case's rows (68,880 floats) are shared among the threads, both ways; the Glow's
    // batch-64 levels (50,176 and 25,088 floats) run on the caller (memory bound: flow.ts)
    assert.ok(threaded.channelAffine >= 3 && threaded.channelAffineGrad >= 3, `threaded: ${JSON.stringify(threaded)}`);
  } finally {
    restore();
  }
});

S("in a per-group pass (each group one image, bias and scale per-group copies) the fused ops run once over the folded batch and give the composed ops' per-group gradients and features bit for bit (a small Glow)", async () => {
  const G = 5;
  const { onFolded, restore } = counting(G);
  try {
    const m = perturbed(new Glow({ levels: 2, steps: 2, hidden: 4, image: [1, 4, 4] }, { backend: wb, gen: new T.Generator(21) }), 400);
    m.eval();
    const x = T.rand(new T.Generator(22), [G, 1, 4, 4], { backend: wb });
    const o = m.objective(), noise = drawsOf(m, o, G, new T.Generator(23));
    await fusedPerGroupPassMatchesComposed(m, o, x, noise, OPS);
    assert.ok(onFolded.channelAffine >= 4 && onFolded.channelAffineGrad >= 4, `the fused ops ran on the folded batch: ${JSON.stringify(onFolded)}`);
  } finally {
    restore();
  }
});

S("its gradient (the composed ops: float64 on the CPU backend) matches central differences", () => {
  const x = rand64(31, [2, 3, 4, 5]), b = rand64(32, [3]), s = rand64(33, [3], 0.5, 2);
  const w = rand64(34, [2, 3, 4, 5]);
  const err = gradcheck((x, b, s) => T.sum(T.mul(T.channelAffine(x, b, s), w)), [x, b, s]);
  assert.ok(err < 1e-6, `max relative error ${err}`);
});

S("bad operands are refused with what is allowed", () => {
  const x = T.zeros([2, 3, 4, 4], { backend: wb });
  assert.throws(() => T.channelAffine(x, T.zeros([4], { backend: wb }), T.zeros([3], { backend: wb })), /bias \[4\].*allowed: x \[N, C, \.\.\.\], bias and scale \[C\]/);
  assert.throws(() => T.channelAffine(T.zeros([3], { backend: wb }), T.zeros([3], { backend: wb }), T.zeros([3], { backend: wb })), /allowed/);
});

S.run();
