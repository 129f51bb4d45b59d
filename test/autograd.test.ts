// Autograd semantics: accumulation, zeroing, hooks, intermediates, noGrad, errors, grad-of-grad.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { maxRelErr, rand64 } from "./helpers.ts";

const S = suite("autograd");
const f64 = { dtype: "float64" as const, backend: T.cpu };

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

S("storages are released exactly once: by tidy() for what a scope owns, by dispose(), and by the finalizer for a tensor dropped without either (outside any scope, a scope's result, kept, made in a scope that threw or returned a Promise)", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", new URL("./fixtures/finalizer_child.ts", import.meta.url).pathname], stdout: "piped", stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.ok(r.success, err);
  const at = JSON.parse(new TextDecoder().decode(r.stdout));
  assert.equal(at["after scopes"], { scoped: 2, "inner-result": 1 });
  assert.equal(at["before gc"], { scoped: 2, "inner-result": 1, disposed: 1 });
  assert.equal(at["after gc"], { scoped: 2, "inner-result": 1, disposed: 1, unscoped: 1, escaped: 1, kept: 1, thrown: 1, "thrown-nested": 1, promised: 1 });
});

S.run();
