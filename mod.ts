// fimscope's public entry point: the autodiff engine, its backends, the generative models and the
// gradient-based OOD method. Runs in Deno (WebGPU through navigator.gpu, or the CPU backend) and,
// bundled (`npm run build`), in a browser page.

// The engine: Tensor, ops, backward/grad (with createGraph for grad-of-grad), tidy/keep.
export * as T from "./src/autograd/index.ts";
export { backward, grad, keep, noGrad, Tensor, tidy } from "./src/autograd/index.ts";

// Backends.
export type { Backend, DType } from "./src/kernels/backend.ts";
export { CpuBackend } from "./src/kernels/cpu.ts";
export { type BackendChoice, selectBackend } from "./src/kernels/select.ts";
export { createWebGPUBackend } from "./src/kernels/webgpu/backend.ts";
export { createWasmBackend } from "./src/kernels/wasm/backend.ts";
export {
  createGpujsBackend, GPUJS_OPS, GpujsBackend, type GpujsOp, type GpujsOptions, gpujsFromSource, gpujsPolicy, isSoftwareRenderer, webgl2Renderer,
} from "./src/kernels/gpujs.ts";

// Models.
export type { GenerativeModel } from "./src/models/model.ts";
export { LN2 } from "./src/models/model.ts";
export { VAE, VAE_DEFAULT, type VaeConfig } from "./src/models/vae.ts";
export { Glow, GLOW_DEFAULT, type GlowConfig } from "./src/models/glow.ts";
export { createModel } from "./src/models/registry.ts";
export { type LoadedModel, loadModelBytes } from "./src/models/from_bytes.ts";
export { decodeSafetensors, encodeSafetensors } from "./src/io/safetensors.ts";

// Data.
export { type ImageSet, makeSet, subset, toTensor } from "./src/data/dataset.ts";

// The method.
export { featuresBatched, featuresLoop, type GradFeatures, noiseFor } from "./src/ood/features.ts";
export { DiagonalGaussian, FullGaussian, type Scorer } from "./src/ood/density.ts";
export { allMetrics, auroc, fprAtTpr, type Metrics, rocCurve } from "./src/ood/metrics.ts";
export {
  checkDetector, type DiagonalDetector, diagonalDetector, type Inspection, inspectImage, inspectInput, type InspectOptions, nllMeasure, type NllMeasure, type SaliencyTarget, scoreRow, useDetectorScore, zScores,
} from "./src/ood/inspect.ts";
export { histogramsSvg, rocSvg } from "./src/ood/plots.ts";
