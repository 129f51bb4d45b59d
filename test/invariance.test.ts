// Representation invariance: modelling logit-transformed pixels changes the likelihood by exactly
// the log-Jacobian, and leaves every layer's squared gradient norm unchanged.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Glow } from "../src/models/glow.ts";
import { LogitRepresentation } from "../src/models/transformed.ts";
import { featuresBatched } from "../src/ood/features.ts";
import { loadMnist } from "../src/data/mnist.ts";

const S = suite("representation invariance");

S("logit representation: NLL shifts by the log-Jacobian, every f_l stays the same", async () => {
  const f64 = { backend: T.cpu, dtype: "float64" as const };
  const glow = new Glow({ levels: 2, steps: 2, hidden: 8, image: [1, 28, 28] }, { ...f64, gen: new T.Generator(1) });
  const data = loadMnist("test");
  const idx = [0, 1, 2, 3];
  const toF64 = (t: T.Tensor) => T.tensor(t.dataSync(), t.shape, f64);
  glow.initialize(toF64(glow.input(data, idx)));
  glow.parameters().forEach((p, i) => p.assign(T.add(p, T.randn(new T.Generator(5 + i), [...p.shape], { ...f64, std: 0.02 }))));
  glow.eval();
  const wrapped = new LogitRepresentation(glow);
  const y = toF64(glow.input(data, idx));
  const x = T.sub(T.log(T.add(y, 0.5)), T.log(T.sub(0.5, y))); // logit(y + 1/2) in float64
  const nllY = glow.nll(y).dataSync(), nllX = wrapped.nll(x).dataSync(), lj = wrapped.logJacobian(x).dataSync();
  for (let i = 0; i < idx.length; i++) {
    assert.ok(Math.abs(nllX[i] - (nllY[i] - lj[i])) < 1e-9 * Math.abs(nllY[i]), `NLL ${nllX[i]} vs ${nllY[i]} - ${lj[i]}`);
    assert.ok(Math.abs(lj[i]) > 100, "the transform really changes the likelihood");
  }
  const fy = await featuresBatched(glow, y, 1), fx = await featuresBatched(wrapped, x, 1);
  assert.equal(fx.names, fy.names);
  for (let i = 0; i < fy.sq.length; i++) {
    assert.ok(Math.abs(fx.sq[i] - fy.sq[i]) <= 1e-9 * fy.sq[i], `${fy.names[i % fy.names.length]}: ${fx.sq[i]} vs ${fy.sq[i]}`);
  }
});

S.run();
