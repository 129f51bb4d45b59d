// safetensors checkpoints: bit-exact round trip, interop layout, and refusal of bad files.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as T from "../src/autograd/index.ts";
import { decodeSafetensors, encodeSafetensors, loadInto, readCheckpoint, saveTensors } from "../src/io/safetensors.ts";
import { VAE, VAE_DEFAULT } from "../src/models/vae.ts";
import { loadModel } from "../src/models/registry.ts";
import { metadataOf } from "../src/models/train.ts";

const S = suite("checkpoints");
const tmp = Deno.makeTempDirSync();

S("layout: 8-byte LE header length, JSON header with F32 offsets, raw little-endian floats", () => {
  const bytes = encodeSafetensors([{ name: "a", shape: [2], data: Float32Array.from([1.5, -2]) }], { k: "v" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.equal(header.a, { dtype: "F32", shape: [2], data_offsets: [0, 8] });
  assert.equal(header.__metadata__, { k: "v" });
  assert.is(new DataView(bytes.buffer).getFloat32(8 + n + 4, true), -2);
});

S("save then load reproduces the model's outputs bit for bit", async () => {
  const m = new VAE(VAE_DEFAULT, { backend: T.cpu, gen: new T.Generator(1) });
  const x = T.rand(new T.Generator(2), [2, 1, 28, 28], { backend: T.cpu, low: -1, high: 1 });
  const before = m.nll(x, { gen: new T.Generator(3) }).dataSync();
  const f = `${tmp}/vae.safetensors`;
  await saveTensors(f, m.namedState(), metadataOf(m, { note: "test" }));
  const m2 = await loadModel(f, T.cpu);
  const after = m2.nll(x, { gen: new T.Generator(3) }).dataSync();
  assert.equal([...after], [...before]);
  assert.is(readCheckpoint(f).metadata.note, "test");
});

S("truncated, corrupt or mismatched files are refused, naming the file and tensor", async () => {
  const m = new VAE(VAE_DEFAULT, { backend: T.cpu, gen: new T.Generator(1) });
  const f = `${tmp}/v.safetensors`;
  await saveTensors(f, m.namedState(), metadataOf(m, {}));
  const bytes = Deno.readFileSync(f);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, bytes.length - 10), "v.safetensors"), /checkpoint v.safetensors: tensor '[^']+' ends at byte \d+ of a \d+-byte data section \(file truncated\)/);
  assert.throws(() => decodeSafetensors(bytes.subarray(0, 4), "v.safetensors"), /truncated/);
  const garbled = bytes.slice();
  garbled[8] = 0x78; // 'x' where the header's opening brace was
  assert.throws(() => decodeSafetensors(garbled, "v.safetensors"), /header is not valid JSON/);
  const huge = bytes.slice();
  new DataView(huge.buffer).setBigUint64(0, 10n ** 9n, true);
  assert.throws(() => decodeSafetensors(huge, "v.safetensors"), /header length .* exceeds file size/);
  const other = new VAE({ ...VAE_DEFAULT, latent: 8 }, { backend: T.cpu, gen: new T.Generator(1) });
  assert.throws(() => loadInto(readCheckpoint(f), f, other.namedParameters()), /tensor 'encoder.out.weight' has shape \[1568,32\], the model expects \[1568,16\]/);
  const partial = encodeSafetensors([{ name: "encoder.conv1.weight", shape: [16, 1, 3, 3], data: new Float32Array(144) }]);
  assert.throws(() => loadInto(decodeSafetensors(partial, "p.st"), "p.st", m.namedParameters()), /checkpoint p.st: tensor 'encoder.conv1.bias' missing/);
  assert.throws(() => readCheckpoint(`${tmp}/nope.safetensors`), /checkpoint .*nope.safetensors: cannot read/);
});

S.after(() => Deno.removeSync(tmp, { recursive: true }));

S.run();
