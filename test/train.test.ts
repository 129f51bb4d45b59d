// The training loop: a few steps lower the loss (VAE and Glow), resuming from a checkpoint is exact,
// and a NaN loss stops training with a clear error.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { loadMnist } from "../src/data/mnist.ts";
import { subset, range } from "../src/data/dataset.ts";
import { createModel } from "../src/models/registry.ts";
import { evaluate, train, type TrainOptions } from "../src/models/train.ts";

const S = suite("training");
const tmp = Deno.makeTempDirSync();
const data = subset(loadMnist("train"), range(0, 256));
const base = (over: Partial<TrainOptions>): TrainOptions => ({
  steps: 30, batch: 16, lr: 3e-3, seed: 1, optimizer: "adam", clip: 100, warmup: 1,
  checkpointEvery: 1000, checkpointPath: `${tmp}/c.safetensors`, data: "mnist", ...over,
});
const tinyVae = { latent: 4, channels: [4, 8], outChannels: 4 };
const tinyGlow = { levels: 2, steps: 1, hidden: 8, image: [1, 28, 28] };

S("a few training steps lower the loss (VAE and Glow, cpu backend)", async () => {
  for (const [kind, cfg] of [["vae", tinyVae], ["glow", tinyGlow]] as const) {
    const m = await createModel(kind, cfg, T.cpu, 1);
    if (m.initialize) m.initialize(m.input(data, range(0, 64), new T.Generator(1)));
    const before = await evaluate(m, data, 64, { batch: 64 });
    await train(m, data, base({ steps: 25, optimizer: kind === "glow" ? "adamax" : "adam" }));
    const after = await evaluate(m, data, 64, { batch: 64 });
    assert.ok(after < before - 0.05, `${kind}: ${before.toFixed(3)} -> ${after.toFixed(3)} bits/dim`);
  }
});

S("resuming from a checkpoint reproduces the uninterrupted run exactly", async () => {
  const straight = await createModel("vae", tinyVae, T.cpu, 2);
  await train(straight, data, base({ steps: 10, seed: 5, checkpointPath: `${tmp}/a.safetensors` }));
  const first = await createModel("vae", tinyVae, T.cpu, 2);
  await train(first, data, base({ steps: 6, seed: 5, checkpointEvery: 6, checkpointPath: `${tmp}/b.safetensors` }));
  const resumed = await createModel("vae", tinyVae, T.cpu, 99); // different init: all state comes from the file
  await train(resumed, data, base({ steps: 10, seed: 5, resume: `${tmp}/b.safetensors`, checkpointPath: `${tmp}/b2.safetensors` }));
  const a = straight.parameters(), b = resumed.parameters();
  a.forEach((p, i) => assert.equal([...b[i].dataSync()], [...p.dataSync()], `parameter ${p.name} differs`));
});

S("a NaN loss stops training with the step and model named", async () => {
  const m = await createModel("vae", tinyVae, T.cpu, 3);
  m.parameters()[0].assign(T.full([...m.parameters()[0].shape], NaN, { backend: T.cpu }));
  let err = "";
  try {
    await train(m, data, base({ steps: 3 }));
  } catch (e) {
    err = (e as Error).message;
  }
  assert.match(err, /train: loss is NaN at step 0 \(model vae/);
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));

S.run();
