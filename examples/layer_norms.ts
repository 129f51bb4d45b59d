import { featuresLoop, loadModelBytes, makeSet, noiseFor, selectBackend, T } from "../mod.ts";

const backend = await selectBackend(); // WebGPU on a GPU, else wasm SIMD, else the CPU
const { model } = await loadModelBytes(await Deno.readFile("weights/vae-fashion.safetensors"), backend);
const image = new Uint8Array(784).map((_, i) => (i % 28 > 8 && i % 28 < 20 ? 200 : 0)); // one 28x28 image
const x = model.input(makeSet("one", image, new Uint8Array([255]), 1, 28, 28), [0]);
const f = await featuresLoop(model, x, 1, noiseFor(model, 1, new T.Generator(0)));
f.names.forEach((name, l) => console.log(name.padEnd(24), Math.log(f.sq[l]).toFixed(3))); // log f_l
console.log("NLL", f.nll[0].toFixed(2), "nats");
