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

// Models, and what their gradients are taken of (objectives).
export type { GenerativeModel } from "./src/models/model.ts";
export { LN2 } from "./src/models/model.ts";
export { makeObjective, type Measure, type Objective } from "./src/models/objective.ts";
export { discretizedLogisticLogProb, VAE, VAE_DEFAULT, type VaeConfig } from "./src/models/vae.ts";
export { Glow, GLOW_DEFAULT, type GlowConfig } from "./src/models/glow.ts";
export { createModel } from "./src/models/registry.ts";
export { type LoadedModel, loadModelBytes } from "./src/models/from_bytes.ts";
export { decodeSafetensors, encodeSafetensors } from "./src/io/safetensors.ts";
export { Conv2d, Linear, Module } from "./src/nn/module.ts";
export { Adam } from "./src/nn/optim.ts";

// Data.
export { type ImageSet, makeSet, subset, toTensor } from "./src/data/dataset.ts";

// The method: the one loop over a set (each input's draws from its pixels), per-batch features and
// gradients, the score registry, detectors, one input end to end.
export { type Batch, forEachBatch, forEachGradientBatch, inputNoise, type LoopOptions, passSize, type SetFeatures, setFeatures, setGradients } from "./src/ood/loop.ts";
export { featuresBatched, featuresLoop, type GradFeatures, groupGradients, groupGradientsLoop } from "./src/ood/features.ts";
export { DiagonalGaussian, FeatureSpace, FullGaussian, type Scorer } from "./src/ood/density.ts";
export { FEATURE_SCORES, type FeatureScore, featureScoreNames, FittedScores, GRADIENT_SCORES } from "./src/ood/scores.ts";
export { Detector, type DetectorFile, detectorText, fitDetector, type InputScore, parseDetector, readDetectorText } from "./src/ood/detector.ts";
export { evaluateSets, type Evaluation } from "./src/ood/pipeline.ts";
export { WoodburyFim } from "./src/ood/woodbury.ts";
export { allMetrics, auroc, fprAtTpr, type Metrics, rocCurve } from "./src/ood/metrics.ts";
export { detectorObjective, type Inspection, inspectImage, inspectInput, type InspectOptions, type SaliencyTarget } from "./src/ood/inspect.ts";
export { histogramsSvg, rocSvg } from "./src/ood/plots.ts";
