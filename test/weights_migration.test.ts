// The stored constants (issue 19): Glow's 1x1 convolutions used to rebuild their permutation and
// signs from the init generator (seed 0) at load time; the files now hold them
// (scripts/migrate_weights.ts added them to every shipped file). Checked here: each shipped Glow
// file is its pre-migration file (recorded SHA-256) plus exactly the constants, and the migration
// reproduces it byte for byte; and for every shipped model, the per-image NLLs of 100 test images
// computed with the stored constants equal, bit for bit, those of the old rebuild-from-seed path.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import * as T from "../src/autograd/index.ts";
import { subset } from "../src/data/dataset.ts";
import { loadDataset } from "../src/data/mnist.ts";
import { encodeSafetensors, loadInto, readCheckpoint, saveTensors } from "../src/io/safetensors.ts";
import { metadataOf } from "../src/models/train.ts";
import { selectBackend } from "../src/kernels/select.ts";
import type { GenerativeModel } from "../src/models/model.ts";
import { checkModelFile, createModel, loadModel } from "../src/models/registry.ts";
import { withConstants } from "../scripts/migrate_weights.ts";

const S = suite("weights migration");
const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const W = `${ROOT}/weights`;
const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const isConstant = (name: string) => /\.invconv\.(perm|sign)$/.test(name);

/** SHA-256 of each shipped Glow file before the migration (git 909e2c4). */
const BEFORE: Record<string, string> = {
  "glow-fashion-large.safetensors": "2dc25e6131bb33bd96e2f604473cb82208b56a54321dcf44e2a64e88fe85fd02",
  "glow-fashion.safetensors": "9eb2cccae3cb3943711df7ed48945cb9114e478d542392dba9bfaa9aefe33996",
  "glow-mnist-large.safetensors": "be38c89983c4f181cd1ad8d33e4cc2864319cbc5a7aac6b76c4c07376b47acbb",
  "glow-mnist.safetensors": "6448460efe0d0fb13b8a24d4239071cb194236bf6d322464cdc35c92c3713968",
  "checkpoints/glow-fashion-k8h64-step7000.ckpt.safetensors": "684a5dc50e7c8ea1734887fb356f56283ea2c536027c11d6f362da062dfeea78",
  "checkpoints/glow-fashion-k8h64-step7000.safetensors": "f770b28396cd7374c5f02c8591c11cc9a97bf436c130eb84dbc5f56109306067",
  "checkpoints/glow-fashion-large-step9500.ckpt.safetensors": "29fe6375ce760c471edbd3594b2c02580837ab846ed0c8ad51f1e3a3faab4c5e",
  "checkpoints/glow-fashion-step10000.ckpt.safetensors": "010acf59f791c5a1f22aa19166bc83e4f619eeb549498bcfd226f3d82607a224",
  "checkpoints/glow-fashion-step3000.ckpt.safetensors": "b048f6b64c29892f00fde34cc91519702df081f31f56f3e087f1d99345e75c38",
  "checkpoints/glow-fashion-step6000.ckpt.safetensors": "6d27d44d288187de32fd563fa71e874de3e80d31a8e6489188060086aa0c2149",
  "checkpoints/glow-mnist-large-step2000.ckpt.safetensors": "61901fbd1f9c310b7429375ee6c3b2bc5a560a066ee95255ffb01ae75ef09610",
  "checkpoints/glow-mnist-large-step4000.ckpt.safetensors": "50cdd30167b3cabf9f18935da09217454112b0af9034e9c0b9812a83d7f5fc10",
  "checkpoints/glow-mnist-step1500.ckpt.safetensors": "f8696917bb31f84d40288f8aa1f761b55bdbf13b9f2744b337a7af2251151009",
};

S("every shipped Glow file is its pre-migration file plus the constants, and the migration rebuilds it byte for byte", async () => {
  const glows = [...Deno.readDirSync(W)].map((e) => e.name).concat([...Deno.readDirSync(`${W}/checkpoints`)].map((e) => `checkpoints/${e.name}`)).filter((f) => /(^|\/)glow-.*\.safetensors$/.test(f)).sort();
  assert.equal(glows, Object.keys(BEFORE).sort(), "the list of shipped Glow files changed: record their pre-migration hashes");
  for (const f of glows) {
    const d = readCheckpoint(`${W}/${f}`);
    const constants = [...d.tensors.keys()].filter(isConstant);
    const probe = await checkModelFile(`${W}/${f}`);
    assert.equal(constants.sort(), probe.buffers.map(([n]) => n).sort(), `${f}: the stored constants`);
    const stripped = [...d.tensors.values()].filter((t) => !isConstant(t.name));
    const old = encodeSafetensors(stripped, d.metadata);
    assert.is(hex(old), BEFORE[f], `${f}: without its constants it is not the pre-migration file`);
    const m = await withConstants({ tensors: new Map(stripped.map((t) => [t.name, t])), metadata: d.metadata }, f);
    assert.ok(m, `${f}: the migration found nothing to add`);
    assert.is(hex(encodeSafetensors(m!.tensors, d.metadata)), hex(Deno.readFileSync(`${W}/${f}`)), `${f}: the migration does not reproduce the shipped file`);
    assert.is(await withConstants(d, f), null, `${f}: a migrated file is migrated again`);
  }
});

/** The old load path: the model rebuilt with init seed 0 (its permutations drawn from it), then only the parameters loaded. */
async function rebuiltFromSeed(path: string, backend: T.Tensor["backend"]): Promise<GenerativeModel> {
  const f = await checkModelFile(path);
  const m = await createModel(f.kind, f.config, backend, 0);
  loadInto(f.decoded, path, m.namedParameters());
  (m as { markInitialized?: () => void }).markInitialized?.();
  return m.eval();
}

/** Per-image values on 100 seeded-random test images: the NLL with fixed noise (diffusion: its eps-loss with fixed noise and steps). */
async function perImage(m: GenerativeModel, data: string): Promise<Float32Array> {
  const test = loadDataset(data, "test");
  const set = subset(test, new T.Generator(19).permutation(test.n).subarray(0, 100));
  const out = new Float32Array(100);
  for (let i = 0; i < 100; i += 25) {
    const idx = Array.from({ length: 25 }, (_, k) => i + k);
    const v = T.tidy(() => T.noGrad(() => {
      const x = m.input(set, idx, new T.Generator(100 + i));
      return m.kind === "diffusion" ? m.trainingLoss!(x, new T.Generator(200 + i)) : m.nll(x, { gen: new T.Generator(200 + i) });
    }));
    out.set(await v.data(), i);
    v.dispose();
  }
  return out;
}

S("a Glow built from init seed 3 keeps its permutations through save and load (the old load rebuilt them from seed 0)", async () => {
  const m = await createModel("glow", { levels: 2, steps: 2, hidden: 4, image: [1, 8, 8] }, T.cpu, 3);
  m.namedParameters().forEach(([, p], i) => p.assign(T.add(p, T.randn(new T.Generator(50 + i), [...p.shape], { std: 0.05 }))));
  const x = T.rand(new T.Generator(7), [3, 1, 8, 8], { low: -0.5, high: 0.5 });
  const f = `${Deno.makeTempDirSync({ prefix: "fimscope-glow-seed-" })}/g.safetensors`;
  await saveTensors(f, m.namedState(), metadataOf(m, { seed: 3 }));
  const back = await loadModel(f, T.cpu);
  assert.equal([...back.nll(x).dataSync()], [...m.eval().nll(x).dataSync()]);
  Deno.removeSync(f.replace(/\/g\.safetensors$/, ""), { recursive: true });
});

const shipped = [...Deno.readDirSync(W)].map((e) => e.name).filter((n) => n.endsWith(".safetensors")).sort();
for (const name of shipped) {
  S(`${name}: per-image NLLs of 100 test images with the stored constants equal the old rebuild from seed 0, bit for bit`, async () => {
    const backend = await selectBackend("wasm", { makeDefault: false });
    const path = `${W}/${name}`;
    const stored = await loadModel(path, backend), old = await rebuiltFromSeed(path, backend);
    const data = readCheckpoint(path).metadata.data;
    const a = await perImage(stored, data), b = await perImage(old, data);
    assert.ok(a.every(Number.isFinite));
    assert.equal([...a], [...b]);
    if (stored.kind === "glow") {
      // The comparison can fail: other permutations (seed 1's) give other NLLs.
      const other = await createModel("glow", stored.config, backend, 1);
      loadInto(readCheckpoint(path), path, other.namedParameters());
      (other as { markInitialized?: () => void }).markInitialized?.();
      const c = await perImage(other.eval(), data);
      assert.ok(c.some((v, i) => v !== a[i]), "the permutations do not change the NLL: the test could not fail");
    }
  });
}

S.run();
