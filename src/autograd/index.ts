// Public API of the engine.
import "./methods.ts";
export { type GramSite, keep, noGrad, Tensor, tidy, isGradEnabled } from "./tensor.ts";
export { batch, groupCopy, unbatch } from "./batched.ts";
export { backward, grad, type GradOptions } from "./engine.ts";
export * from "./ops/elementwise.ts";
export * from "./ops/reduce.ts";
export * from "./ops/movement.ts";
export * from "./ops/linalg.ts";
export * from "./ops/conv.ts";
export * from "./ops/coupling.ts";
export * from "./ops/channel_affine.ts";
export * from "./ops/nn.ts";
export * from "./ops/groupnorm.ts";
export * from "./ops/optim.ts";
export { Generator, hashBytes, rand, randn } from "./random.ts";
export { cpu, defaultBackend, onBackend, setDefaultBackend } from "./device.ts";
export { fmt, sizeOf, type Shape } from "./shape.ts";
