// Each model's loss gradient on the WebGPU backend (float32) against float64 central differences
// on the CPU backend (test/model_grads.ts), every fresh output poisoned with NaN.
import { suite } from "uvu";
import type { WebGPUBackend } from "../src/kernels/webgpu/backend.ts";
import { gpuTest, webgpu } from "./helpers.ts";
import { modelGradients } from "./model_grads.ts";

const gpu = await webgpu();
const S = suite("webgpu model gradients vs float64 central differences");
const G = gpuTest(S, gpu);
modelGradients((name, fn) => G(name, (g: WebGPUBackend) => fn(g)), "webgpu");
S.before(() => { if (gpu) gpu.rt.poison = true; });
S.after(() => { if (gpu) gpu.rt.poison = false; });

S.run();
