// Representation invariance: modelling logit-transformed pixels changes the likelihood by exactly
// the log-Jacobian, and leaves every layer's squared gradient norm unchanged. The other
// representation is only another function to differentiate (an objective passed to the feature
// functions): x = logit(y + 1/2), NLL_x(x) = NLL(sigmoid(x) - 1/2) - sum log T'(x).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { Glow } from "../src/models/glow.ts";
import { makeObjective } from "../src/models/objective.ts";
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
  // sum over pixels of log T'(x) = log sigmoid(x) + log sigmoid(-x), T(x) = sigmoid(x) - 1/2: [B].
  const logJacobian = (x: T.Tensor) => T.sum(T.reshape(T.add(T.logSigmoid(x), T.logSigmoid(T.neg(x))), [x.shape[0], -1]), 1);
  const logitNll = makeObjective({
    name: "nll-logit", dims: glow.dims, noiseShape: () => null,
    value: (x) => T.sub(glow.nll(T.sub(T.sigmoid(x), 0.5)), logJacobian(x)),
    measure: { kind: "nll", short: "NLL of logit(y + 1/2)", label: "the same model's NLL in the logit representation", unit: "bits/dim" },
  });
  const y = toF64(glow.input(data, idx));
  const x = T.sub(T.log(T.add(y, 0.5)), T.log(T.sub(0.5, y))); // logit(y + 1/2) in float64
  const nllY = glow.nll(y).dataSync(), nllX = logitNll.value(x).dataSync(), lj = logJacobian(x).dataSync();
  for (let i = 0; i < idx.length; i++) {
    assert.ok(Math.abs(nllX[i] - (nllY[i] - lj[i])) < 1e-9 * Math.abs(nllY[i]), `NLL ${nllX[i]} vs ${nllY[i]} - ${lj[i]}`);
    assert.ok(Math.abs(lj[i]) > 100, "the transform really changes the likelihood");
  }
  const fy = await featuresBatched(glow, glow.objective(), y, 1), fx = await featuresBatched(glow, logitNll, x, 1);
  assert.equal(fx.names, fy.names);
  for (let i = 0; i < fy.sq.length; i++) {
    assert.ok(Math.abs(fx.sq[i] - fy.sq[i]) <= 1e-9 * fy.sq[i], `${fy.names[i % fy.names.length]}: ${fx.sq[i]} vs ${fy.sq[i]}`);
  }
});

S.run();
