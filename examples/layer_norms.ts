import { featuresLoop, inputNoise, loadModelBytes, makeSet, selectBackend } from "../mod.ts";

const backend = await selectBackend(); // WebGPU on a GPU, else wasm SIMD, else the CPU
const { model } = await loadModelBytes(await Deno.readFile("weights/vae-fashion.safetensors"), backend);
const image = new Uint8Array(784).map((_, i) => (i % 28 > 8 && i % 28 < 20 ? 200 : 0)); // one 28x28 image
const set = makeSet("one", image, new Uint8Array([255]), 1, 28, 28);
const objective = model.objective(); // what is differentiated: here the NLL (the negative ELBO, one latent sample)
const f = await featuresLoop(model, objective, model.input(set, [0]), 1, inputNoise(model, objective, set, [0])); // the draw from the image's pixels
f.names.forEach((name, l) => console.log(name.padEnd(24), Math.log(f.sq[l]).toFixed(3))); // log f_l
console.log("NLL", f.value[0].toFixed(2), "nats");
