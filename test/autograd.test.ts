// Autograd semantics: accumulation, zeroing, hooks, intermediates, noGrad, errors, grad-of-grad.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { gradcheck, gradcheck2, maxRelErr, rand64 } from "./helpers.ts";
import { result } from "../src/autograd/tensor.ts";
import { createWasmBackend } from "../src/kernels/wasm/backend.ts";

const S = suite("autograd");
const f64 = { dtype: "float64" as const, backend: T.cpu };

S("a shape given as a typed array (a JavaScript caller's) works as its array: the tensor's shape is a frozen plain array", () => {
  const shape = new Int32Array([2, 3]) as unknown as number[];
  for (const t of [T.tensor(new Float32Array(6).fill(1.5), shape), T.zeros(shape)]) {
    assert.ok(Array.isArray(t.shape) && Object.isFrozen(t.shape));
    assert.equal([...t.shape], [2, 3]);
    assert.is(t.size, 6);
    t.dispose();
  }
});

S("gradients accumulate across backward calls and zeroGrad clears them", () => {
  const x = T.tensor([1, 2, 3], [3], { ...f64, requiresGrad: true });
  T.sum(T.square(x)).backward();
  assert.equal([...x.grad!.dataSync()], [2, 4, 6]);
  T.sum(T.mul(x, 3)).backward();
  assert.equal([...x.grad!.dataSync()], [5, 7, 9]);
  x.zeroGrad();
  assert.is(x.grad, null);
});

S("a tensor used twice gets the sum of both paths", () => {
  const x = T.tensor([2], [1], { ...f64, requiresGrad: true });
  T.sum(T.add(T.mul(x, x), T.exp(x))).backward();
  assert.ok(Math.abs(x.grad!.dataSync()[0] - (4 + Math.exp(2))) < 1e-12);
});

S("retainGrad and grad() give gradients of intermediates", () => {
  const x = T.tensor([1, -2], [2], { ...f64, requiresGrad: true });
  const h = T.mul(x, 3).retainGrad();
  const y = T.sum(T.square(h));
  const [gh, gx] = T.grad(y, [h, x]);
  assert.equal([...gh!.dataSync()], [6, -12]);
  assert.equal([...gx!.dataSync()], [18, -36]);
  assert.is(x.grad, null, "grad() must not touch .grad");
  y.backward();
  assert.equal([...h.grad!.dataSync()], [6, -12]);
});

S("hooks see, and may replace, a tensor's gradient", () => {
  const x = T.tensor([1, 2], [2], { ...f64, requiresGrad: true });
  const h = T.mul(x, 2);
  const seen: number[][] = [];
  h.registerHook((g) => { seen.push([...g.dataSync()]); return T.mul(g, 10); });
  T.sum(h).backward();
  assert.equal(seen, [[1, 1]]);
  assert.equal([...x.grad!.dataSync()], [20, 20]);
});

S("backward with an explicit seed; non-scalar without one is an error", () => {
  const x = T.tensor([1, 2], [2], { ...f64, requiresGrad: true });
  const y = T.mul(x, x);
  assert.throws(() => y.backward(), /non-scalar needs an explicit seed/);
  y.backward({ seed: T.tensor([1, 0.5], [2], f64) });
  assert.equal([...x.grad!.dataSync()], [2, 2]);
});

S("noGrad records nothing", () => {
  const x = T.tensor([1], [1], { ...f64, requiresGrad: true });
  const y = T.noGrad(() => T.mul(x, 2));
  assert.is(y.requiresGrad, false);
  assert.throws(() => y.backward(), /does not require grad/);
});

S("errors name the op and the shapes", () => {
  const a = T.zeros([2, 3], f64), b = T.zeros([4, 3], f64);
  assert.throws(() => T.add(a, b), /add: shapes \[2,3\] and \[4,3\] cannot be broadcast/);
  assert.throws(() => T.matmul(a, b), /matmul: shapes \[2,3\] and \[4,3\]/);
  assert.throws(() => T.conv2d(T.zeros([1, 3, 4, 4]), T.zeros([2, 2, 3, 3])), /conv2d: input \[1,3,4,4\] and weight \[2,2,3,3\]/);
  assert.throws(() => T.reshape(a, [5]), /reshape: cannot reshape \[2,3\]/);
  const c = T.ones([2], f64);
  c.dispose();
  assert.throws(() => T.exp(c), /exp: tensor #\d+ \[2\] was already disposed/);
});

S("tidy frees what it does not return; keep() and returned tensors survive", () => {
  let inner: T.Tensor | null = null;
  const out = T.tidy(() => {
    inner = T.ones([3]);
    return T.add(inner, 1);
  });
  assert.ok(inner!.disposed);
  assert.not.ok(out.disposed);
});

S("Hessian-vector product of a small MLP (grad-of-grad) matches finite differences of gradients", () => {
  const x = rand64(1, [5, 4]);
  const w1 = rand64(2, [4, 6]).requireGrad(), w2 = rand64(3, [6, 3]).requireGrad();
  const v1 = rand64(4, [4, 6]), v2 = rand64(5, [6, 3]);
  const loss = (a: T.Tensor, b: T.Tensor) => T.mean(T.square(T.matmul(T.tanh(T.matmul(x, a)), b)));
  const [g1, g2] = T.grad(loss(w1, w2), [w1, w2], { createGraph: true });
  const gv = T.add(T.sum(T.mul(g1!, v1)), T.sum(T.mul(g2!, v2)));
  const [h1, h2] = T.grad(gv, [w1, w2]);
  const eps = 1e-5;
  const gradAt = (s: number) => {
    const a = T.add(w1.detach(), T.mul(v1, s)).requireGrad(), b = T.add(w2.detach(), T.mul(v2, s)).requireGrad();
    return T.grad(loss(a, b), [a, b]).map((t) => t!.dataSync());
  };
  const [p1, p2] = gradAt(eps), [m1, m2] = gradAt(-eps);
  const fd1 = p1.map((v, i) => (v - m1[i]) / (2 * eps)), fd2 = p2.map((v, i) => (v - m2[i]) / (2 * eps));
  assert.ok(maxRelErr(h1!.dataSync(), fd1) < 1e-7, `H v (w1) err ${maxRelErr(h1!.dataSync(), fd1)}`);
  assert.ok(maxRelErr(h2!.dataSync(), fd2) < 1e-7, `H v (w2) err ${maxRelErr(h2!.dataSync(), fd2)}`);
});

S("seeded generators repeat and differ by seed", () => {
  const a = T.randn(new T.Generator(7), [100]).dataSync(), b = T.randn(new T.Generator(7), [100]).dataSync();
  const c = T.randn(new T.Generator(8), [100]).dataSync();
  assert.equal([...a], [...b]);
  assert.not.equal([...a], [...c]);
  const u = [...T.rand(new T.Generator(1), [10000]).dataSync()];
  const m = u.reduce((s, v) => s + v, 0) / u.length;
  assert.ok(Math.abs(m - 0.5) < 0.02 && Math.min(...u) >= 0 && Math.max(...u) < 1);
  const n = [...T.randn(new T.Generator(2), [20000]).dataSync()];
  const nm = n.reduce((s, v) => s + v, 0) / n.length, nv = n.reduce((s, v) => s + (v - nm) ** 2, 0) / n.length;
  assert.ok(Math.abs(nm) < 0.03 && Math.abs(nv - 1) < 0.05, `normal mean ${nm} var ${nv}`);
});

S("storages are released exactly once: by tidy() for what a scope owns, by dispose(), and by the finalizer for a tensor dropped without either (outside any scope, a scope's result, kept, made in a scope that threw or returned a Promise, and after assign() the storage it took), and never while another tensor holds the storage", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", new URL("./fixtures/finalizer_child.ts", import.meta.url).pathname], stdout: "piped", stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.ok(r.success, err);
  const at = JSON.parse(new TextDecoder().decode(r.stdout));
  assert.equal(at["after scopes"], { scoped: 2, "inner-result": 1 });
  assert.equal(at["before gc"], { scoped: 2, "inner-result": 1, "assign-old": 1, disposed: 1, "assign-disposed": 1 });
  // "shared-live" never: a tensor still holds it
  assert.equal(at["after gc"], { scoped: 2, "inner-result": 1, "assign-old": 1, disposed: 1, "assign-disposed": 1, unscoped: 1, escaped: 1, kept: 1, thrown: 1, "thrown-nested": 1, promised: 1, "assign-new": 1 });
  assert.equal(at["live"], { size: 3 });
});

// A slice's gradient is a box of its input (BoxGrad); the engine joins an input's boxes with one
// concat where they tile an axis, else pads and adds them as before.
/** x's gradient under f, with the backend's strided copies that pad and its concats counted. */
function sliceGrads(f: (x: T.Tensor) => T.Tensor, x0: T.Tensor): { g: Float64Array | Float32Array; pads: number; concats: number } {
  const be = T.cpu, strided = be.strided, concat = be.concat;
  let pads = 0, concats = 0;
  be.strided = (x, spec, dtype) => {
    // a read outside the input: padding (a broadcast's step 0 reads its start throughout)
    if (spec.start.some((s, i) => s < 0 || s + (spec.outShape[i] - 1) * spec.step[i] >= spec.inShape[spec.map[i]])) pads++;
    return strided.call(be, x, spec, dtype);
  };
  be.concat = (...a) => {
    concats++;
    return concat.apply(be, a);
  };
  try {
    const x = T.tensor(x0.dataSync(), x0.shape, { dtype: x0.dtype, backend: be, requiresGrad: true });
    return { g: T.grad(f(x), [x])[0]!.dataSync(), pads, concats };
  } finally {
    be.strided = strided;
    be.concat = concat;
  }
}
/** The same gradient by the padded sum, written out: each slice's gradient (grad w.r.t. the slice) padded to x's shape, added in the given order. */
function paddedSum(f: (x: T.Tensor, s: (b: number[], e: number[]) => T.Tensor) => T.Tensor, x0: T.Tensor): Float64Array | Float32Array {
  const x = T.tensor(x0.dataSync(), x0.shape, { dtype: x0.dtype, backend: T.cpu });
  const boxes: [T.Tensor, number[]][] = [];
  const y = f(x, (b, e) => {
    const s = T.slice(x, b, e).detach();
    s.requiresGrad = true;
    boxes.push([s, b]);
    return s;
  });
  const gs = T.grad(y, boxes.map(([s]) => s));
  let sum: T.Tensor | null = null;
  boxes.forEach(([s, b], i) => {
    const p = T.pad(gs[i]!, x.shape.map((d, a) => [b[a], d - b[a] - s.shape[a]] as [number, number]));
    sum = sum ? T.add(sum, p) : p;
  });
  return sum!.dataSync();
}

S("slices' gradients: halves and out-of-order thirds of an axis join by one concat (no padding), bit for bit the padded sum; gaps and overlaps pad and add", () => {
  for (const dtype of ["float32", "float64"] as const) {
    const x0 = T.tensor(rand64(5, [2, 4, 3, 5]).dataSync(), [2, 4, 3, 5], { dtype, backend: T.cpu });
    const w = (s: T.Tensor, k: number) => T.sum(T.mulScalar(T.exp(T.mulScalar(s, 0.5)), k)); // a different weight per piece
    const cases: [string, [number[], number[]][], { pads: number; concats: number }][] = [
      ["halves of axis 1", [[[0, 0, 0, 0], [2, 2, 3, 5]], [[0, 2, 0, 0], [2, 4, 3, 5]]], { pads: 0, concats: 1 }],
      ["thirds of axis 3, last first", [[[0, 0, 0, 3], [2, 4, 3, 5]], [[0, 0, 0, 0], [2, 4, 3, 1]], [[0, 0, 0, 1], [2, 4, 3, 3]]], { pads: 0, concats: 1 }],
      ["a gap on axis 1", [[[0, 0, 0, 0], [2, 1, 3, 5]], [[0, 2, 0, 0], [2, 4, 3, 5]]], { pads: 2, concats: 0 }],
      ["overlapping on axis 1", [[[0, 0, 0, 0], [2, 3, 3, 5]], [[0, 1, 0, 0], [2, 4, 3, 5]]], { pads: 2, concats: 0 }],
      ["boxes on two axes", [[[0, 0, 0, 0], [2, 2, 3, 5]], [[0, 2, 0, 0], [2, 4, 2, 5]], [[0, 2, 2, 0], [2, 4, 3, 5]]], { pads: 3, concats: 0 }],
      ["one slice", [[[0, 1, 0, 0], [2, 3, 3, 5]]], { pads: 1, concats: 0 }],
    ];
    for (const [name, boxes, want] of cases) {
      const f = (_x: T.Tensor, s: (b: number[], e: number[]) => T.Tensor) => boxes.map(([b, e], k) => w(s(b, e), k + 2)).reduce((p, q) => T.add(p, q));
      const got = sliceGrads((x) => f(x, (b, e) => T.slice(x, b, e)), x0);
      const ref = paddedSum(f, x0);
      assert.equal({ pads: got.pads, concats: got.concats }, want, `${dtype} ${name}: the backend calls`);
      assert.equal([...got.g].map((v) => Object.is(v, -0) ? 0 : v), [...ref].map((v) => Object.is(v, -0) ? 0 : v), `${dtype} ${name}: the gradient`);
      assert.ok(got.g.some((v) => v !== 0), `${dtype} ${name}: a gradient that is not all zero`);
    }
  }
});

S("a batched tensor's slices (the per-group pass): their gradients join by one concat too, equal to each group's own", () => {
  const G = 3, x0 = rand64(11, [G, 2, 4, 3]);
  const f = (x: T.Tensor) => T.add(T.sum(T.mulScalar(T.exp(T.slice(x, [0, 0, 0], [2, 2, 3])), 0.5)), T.sum(T.square(T.slice(x, [0, 2, 0], [2, 4, 3]))));
  // batched: x's groups carry the first axis; the loss sums every group's f
  const got = sliceGrads((x) => T.sum(T.unbatch(f(T.batch(x)))), x0);
  assert.equal({ pads: got.pads, concats: got.concats }, { pads: 0, concats: 1 });
  const loop = [...Array(G).keys()].flatMap((k) => {
    const xk = T.tensor(x0.dataSync().slice(k * 24, k * 24 + 24), [2, 4, 3], { dtype: "float64", backend: T.cpu, requiresGrad: true });
    return [...T.grad(f(xk), [xk])[0]!.dataSync()];
  });
  assert.equal([...got.g], loop);
});

/** A slice as it was before boxes: its backward gives the whole gradient, g padded to x's shape. */
function paddedSlice(x: T.Tensor, b: number[], e: number[]): T.Tensor {
  const y = T.noGrad(() => T.slice(x, b, e));
  return result("paddedSlice", [x], null, y.shape, (g) => [T.pad(g, x.shape.map((d, i) => [b[i], d - e[i]] as [number, number]))], y, y);
}

S("slices' gradients beside whole ones, in either order, tiling or overlapping: bit for bit what padded slices gave (tiling: up to a zero's sign)", () => {
  const x0 = rand64(13, [3, 6, 4]);
  const w = T.tensor(rand64(14, [3, 6, 4]).dataSync(), [3, 6, 4], { dtype: "float32", backend: T.cpu });
  const layouts: [string, [number[], number[]][]][] = [
    ["tiling", [[[0, 0, 0], [3, 2, 4]], [[0, 2, 0], [3, 6, 4]]]],
    ["overlapping", [[[0, 0, 0], [3, 4, 4]], [[0, 2, 0], [3, 6, 4]]]],
    ["three, overlapping and a gap", [[[0, 0, 0], [3, 2, 4]], [[0, 1, 0], [3, 3, 4]], [[0, 4, 0], [3, 6, 4]]]],
  ];
  for (const [name, boxes] of layouts) {
    for (const wholeFirst of [true, false]) {
      const f = (sl: (x: T.Tensor, b: number[], e: number[]) => T.Tensor) => (x: T.Tensor) => {
        const whole = T.sum(T.mul(T.exp(T.mulScalar(x, 0.3)), w));
        const parts = boxes.map(([b, e], k) => T.sum(T.mulScalar(T.exp(T.mulScalar(sl(x, b, e), 0.7 + k)), 1 / (k + 1))));
        const p = parts.reduce((a, c) => T.add(a, c));
        return wholeFirst ? T.add(whole, p) : T.add(p, whole);
      };
      const x32 = () => T.tensor(x0.dataSync(), x0.shape, { dtype: "float32", backend: T.cpu, requiresGrad: true });
      const xn = x32(), xo = x32();
      const gn = T.grad(f(T.slice)(xn), [xn])[0]!.dataSync(), go = T.grad(f(paddedSlice)(xo), [xo])[0]!.dataSync();
      const norm = (v: ArrayLike<number>) => Array.from(v, (e) => name === "tiling" && Object.is(e, -0) ? 0 : e);
      assert.equal(norm(gn), norm(go), `${name}, the whole gradient ${wholeFirst ? "first" : "last"}`);
    }
  }
});

S("slices' gradients beside whole ones: first and second order match central differences", () => {
  // x reaches y through its halves and whole (a whole gradient between two boxes: the first box is padded when it comes)
  const f = (x: T.Tensor) => {
    const a = T.slice(x, [0, 0], [3, 2]), b = T.slice(x, [0, 2], [3, 5]);
    return T.add(T.add(T.sum(T.mul(T.exp(a), 0.3)), T.sum(T.square(x))), T.sum(T.mul(T.sigmoid(b), T.sum(a))));
  };
  const x0 = rand64(7, [3, 5]);
  assert.ok(gradcheck(f, [x0]) < 1e-7, "first order");
  const h = (x: T.Tensor, cg: boolean) => T.sum(T.square(T.grad(f(x), [x], { createGraph: cg })[0]!));
  const { err, an } = gradcheck2(h, x0);
  assert.ok(err < 1e-6, `second order: ${err}`);
  assert.ok(an.some((v) => v !== 0));
  // the halves alone (no whole gradient between them): joined, and still right to second order
  const halves = (x: T.Tensor) => T.add(T.sum(T.mul(T.exp(T.slice(x, [0, 0], [3, 2])), 0.3)), T.sum(T.sigmoid(T.slice(x, [0, 2], [3, 5]))));
  assert.ok(gradcheck(halves, [x0]) < 1e-7, "first order, halves");
  const h2 = (x: T.Tensor, cg: boolean) => T.sum(T.square(T.grad(halves(x), [x], { createGraph: cg })[0]!));
  const r2 = gradcheck2(h2, x0);
  assert.ok(r2.err < 1e-6, `second order, halves: ${r2.err}`);
  assert.equal((({ pads, concats }) => ({ pads, concats }))(sliceGrads(halves, x0)), { pads: 0, concats: 1 });
});


// Without a recorded graph, the engine frees each intermediate gradient once nothing needs it
// (engine.ts EarlyRelease): its storage goes back to the backend during the pass, not at its end.
/**
 * Runs f on a copy of T.cpu whose every op's result is recorded and whose release is watched:
 * the most storages made during f that were still held at any op (made and not yet released).
 */
function mostHeld(f: () => void): { most: number; made: number } {
  const be = T.cpu as unknown as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  const held = new Set<unknown>();
  let most = 0, made = 0;
  for (const k of Object.getOwnPropertyNames(Object.getPrototypeOf(be)).concat(Object.keys(be))) {
    const fn = be[k];
    if (typeof fn !== "function" || k === "constructor" || saved.has(k)) continue;
    saved.set(k, Object.prototype.hasOwnProperty.call(be, k) ? fn : undefined);
    be[k] = k === "release" ? (s: unknown) => {
      held.delete(s);
      return (fn as (s: unknown) => void).call(be, s);
    } : (...a: unknown[]) => {
      most = Math.max(most, held.size);
      const r = (fn as (...a: unknown[]) => unknown).apply(be, a);
      if (r instanceof Float64Array || r instanceof Float32Array) {
        held.add(r);
        made++;
      }
      return r;
    };
  }
  try {
    f();
  } finally {
    for (const [k, own] of saved) {
      if (own === undefined) delete be[k];
      else be[k] = own;
    }
  }
  return { most, made };
}

S("a pass that records no graph frees each intermediate gradient once nothing needs it (a chain of 24 ops holds at most 3 gradients at once, where it held all of them), with the same gradients bit for bit as a pass that frees none (createGraph)", () => {
  const x = rand64(31, [40]).requireGrad();
  let h = x;
  for (let k = 0; k < 12; k++) h = T.exp(T.mulScalar(h, 0.1));
  const y = T.sum(h);
  let g: T.Tensor | null = null;
  const r = mostHeld(() => {
    g = T.grad(y, [x])[0];
  });
  assert.ok(r.made >= 24, `the backward made ${r.made} storages`);
  assert.ok(r.most <= 3, `at most ${r.most} of the pass's storages held at once`);
  const ref = T.grad(y, [x], { createGraph: true })[0]!;
  assert.equal([...g!.dataSync()], [...ref.dataSync()]);
  // a product's deferred input gradient (ProductGrad) and the ReLU that takes it
  const xi = rand64(32, [2, 3, 6, 6]).requireGrad(), w1 = rand64(33, [4, 3, 3, 3]).requireGrad(), w2 = rand64(34, [4, 4, 3, 3]).requireGrad();
  let z = T.conv2d(xi, w1, { padding: 1 });
  for (let k = 0; k < 6; k++) z = T.conv2d(T.relu(z), w2, { padding: 1 });
  const yc = T.sum(T.square(z));
  let gc: (T.Tensor | null)[] = [];
  const rc = mostHeld(() => {
    gc = T.grad(yc, [xi, w1, w2]);
  });
  const refc = T.grad(yc, [xi, w1, w2], { createGraph: true });
  gc.forEach((t, i) => assert.equal([...t!.dataSync()], [...refc[i]!.dataSync()], `convolutions: gradient ${i}`));
  assert.ok(rc.most <= 8, `convolutions: at most ${rc.most} of the pass's ${rc.made} storages held at once`);
});

S("freeing gradients early, where an activation takes a convolution's input gradient uncomputed (through views too): the same gradients bit for bit as a pass that frees none, on the CPU and on wasm (whose blocks are reused)", async () => {
  // CPU float64: the ReLU's node takes the product through two reshapes (passesProducts)
  const x = rand64(51, [2, 3, 5, 5]).requireGrad(), w = rand64(52, [3, 3, 3, 3]).requireGrad();
  const r = T.reshape(T.reshape(T.relu(T.conv2d(x, w, { padding: 1 })), [2, 75]), [2, 3, 5, 5]);
  const y = T.sum(T.square(T.conv2d(r, w, { padding: 1 })));
  const got = T.grad(y, [x, w]), ref = T.grad(y, [x, w], { createGraph: true });
  got.forEach((g, i) => assert.equal([...g!.dataSync()], [...ref[i]!.dataSync()], `CPU: gradient ${i}`));
  // wasm float32: conv2dBias with its ReLU, SiLU between reshapes, the fused input gradients
  const be = await createWasmBackend({ threads: 2 });
  try {
    const f32 = (seed: number, shape: number[]) => T.tensor(rand64(seed, shape).dataSync(), shape, { backend: be, requiresGrad: true });
    const xi = f32(53, [4, 3, 9, 9]), w1 = f32(54, [8, 3, 3, 3]), b1 = f32(55, [8]), w2 = f32(56, [8, 8, 3, 3]), b2 = f32(57, [8]), w3 = f32(58, [2, 8, 1, 1]);
    const net = () => {
      let z = T.conv2dBias(xi, w1, b1, { padding: 1, act: "relu" });
      z = T.conv2dBias(z, w2, b2, { padding: 1 });
      z = T.reshape(T.silu(T.reshape(z, [4, 8 * 81])), [4, 8, 9, 9]);
      z = T.conv2dBias(z, w2, b2, { padding: 1, act: "relu" });
      return T.sum(T.square(T.conv2d(z, w3)));
    };
    let fused = 0;
    const times = be.conv2dInputGradTimes!;
    be.conv2dInputGradTimes = (...a) => {
      fused++;
      return times.apply(be, a);
    };
    const ps = [xi, w1, b1, w2, b2, w3];
    const gw = T.grad(net(), ps);
    be.conv2dInputGradTimes = times;
    const gr = T.grad(net(), ps, { createGraph: true });
    assert.ok(fused >= 2, `the fused input gradient ran ${fused} times`);
    gw.forEach((g, i) => assert.equal([...g!.dataSync()], [...gr[i]!.dataSync()], `wasm: gradient ${i}`));
  } finally {
    be.close();
  }
});

S("freeing gradients early keeps every gradient someone still needs: one gradient object standing for several inputs, one a hook keeps for a later hook, a slice's box that is also the other half's", () => {
  // add's backward gives the same gradient object to both inputs; A also receives it again
  const A = rand64(41, [5]).requireGrad(), C = rand64(42, [5]).requireGrad();
  const [gA, gC] = T.grad(T.sum(T.exp(T.add(A, T.add(A, C)))), [A, C]);
  const e = T.exp(T.add(T.mulScalar(A, 2), C)).dataSync();
  assert.ok(maxRelErr(gA!.dataSync(), e.map((v) => 2 * v)) < 1e-14 && maxRelErr(gC!.dataSync(), e) < 1e-14);
  // a gradient one hook keeps and a later hook reads
  const x = rand64(43, [6]).requireGrad();
  const h = T.mulScalar(T.exp(x), 3);
  let seen: T.Tensor | null = null, later: number[] = [];
  const m = T.tanh(h);
  m.registerHook((g) => {
    seen = g;
  });
  h.registerHook(() => {
    later = [...seen!.dataSync()];
  });
  const seed = rand64(44, [6]);
  T.mul(m, 2).backward({ seed });
  assert.equal(later, [...T.mulScalar(seed, 2).dataSync()]);
  // a slice's gradient (a box) that is also the other half's
  const s = rand64(45, [4, 3]).requireGrad();
  const top = T.slice(s, [0, 0], [2, 3]), bottom = T.slice(s, [2, 0], [4, 3]);
  const [gs] = T.grad(T.sum(T.mul(T.add(top, bottom), T.exp(top))), [s]);
  const t0 = T.slice(s, [0, 0], [2, 3]).dataSync(), b0 = T.slice(s, [2, 0], [4, 3]).dataSync();
  const want = [...t0.map((v, i) => Math.exp(v) * (1 + v + b0[i])), ...t0.map((v) => Math.exp(v))];
  assert.ok(maxRelErr(gs!.dataSync(), Float64Array.from(want)) < 1e-14);
});

S.run();
