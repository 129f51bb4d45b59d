// Elementwise kernels: unary (with a scalar parameter), broadcasting binary, where, fill.
import { wgsl } from "wgsl-preprocessor";
import type { BinaryOp, UnaryOp } from "../src/kernels/ops.ts";
import { entry, PARAMS } from "./preamble.ts";

/** One WGSL expression per op, in x and p; stable forms mirror src/kernels/scalar_ops.ts. */
export const UNARY_WGSL: Record<UnaryOp, string> = {
  neg: "-x",
  exp: "exp(x)",
  log: "log(x)",
  sqrt: "sqrt(x)",
  abs: "abs(x)",
  relu: "max(x, 0.0)",
  step: "select(0.0, 1.0, x > 0.0)",
  sign: "sign(x)",
  sigmoid: "select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0)",
  softplus: "max(x, 0.0) + log(1.0 + exp(-abs(x)))",
  tanh: "sign(x) * (1.0 - exp(-2.0 * abs(x))) / (1.0 + exp(-2.0 * abs(x)))",
  square: "x * x",
  recip: "1.0 / x",
  powScalar: "powScalar(x, p)",
  mulScalar: "x * p",
  addScalar: "x + p",
  leakyRelu: "select(p * x, x, x > 0.0)",
  leakyStep: "select(p, 1.0, x > 0.0)",
};

export const BINARY_WGSL: Record<BinaryOp, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  maximum: "select(b, a, a >= b)",
  minimum: "select(b, a, a <= b)",
  gt: "select(0.0, 1.0, a > b)",
  ge: "select(0.0, 1.0, a >= b)",
  lt: "select(0.0, 1.0, a < b)",
  le: "select(0.0, 1.0, a <= b)",
  eq: "select(0.0, 1.0, a == b)",
  reluMask: "select(0.0, a, b > 0.0)",
};

// pow for negative bases with integer exponents, as Math.pow does.
const POW = /* wgsl */ `
fn powScalar(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (p == 1.0) { return x; }
  if (p == 2.0) { return x * x; }
  let m = pow(abs(x), p);
  if (x >= 0.0) { return m; }
  if (fract(p) != 0.0) { return bitcast<f32>(0x7fc00000u); }
  if (fract(p * 0.5) != 0.0) { return -m; }
  return m;
}`;

/** params: [n, p] */
export function unaryShader(op: UnaryOp): string {
  return wgsl`${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
#if ${op === "powScalar"}
${POW}
#endif
${entry()}
  if (idx >= P[0]) { return; }
  let x = X[idx];
  let p = pf(1u);
  Y[idx] = ${UNARY_WGSL[op]};
}`;
}

/**
 * Broadcast offsets from per-input strides. params: [n, rank, shape[8], strides of each input[8]...]
 * `same` variant: all shapes equal the output, no index arithmetic.
 */
// One walk over the (coalesced) output coordinates gives every input's offset: the divisions are
// shared by the inputs. The rank is baked in (one pipeline per rank): the unrolled walk ran 2-2.5x
// faster than a loop over a runtime rank on lavapipe ([2048,196] + [2048,1]: 3.4-3.8 -> 1.5 ms).
function offsets(inputs: 2 | 3, rank: number): string {
  const vec = `vec${inputs}<u32>`;
  const steps = [...Array(rank).keys()].reverse().map((k) => {
    const st = [10 + k, 18 + k, 26 + k].slice(0, inputs).map((i) => `P[${i}u]`).join(", ");
    const c = k === 0 ? "rem" : `rem - q${k} * P[${2 + k}u]`;
    return (k === 0 ? "" : `  let q${k} = rem / P[${2 + k}u];\n`) + `  off += (${c}) * ${vec}(${st});\n` + (k === 0 ? "" : `  rem = q${k};\n`);
  });
  return `
fn offsetsOf(idx: u32) -> ${vec} {
  var rem = idx;
  var off = ${vec}();
${steps.join("")}  return off;
}`;
}

/** `rank`: the coalesced rank of a broadcasting op (ignored when `same`). */
export function binaryShader(op: BinaryOp, same: boolean, rank = 0): string {
  return wgsl`${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#if ${!same}
${offsets(2, rank)}
#endif
${entry()}
  if (idx >= P[0]) { return; }
#if ${same}
  let a = A[idx];
  let b = B[idx];
#else
  let o = offsetsOf(idx);
  let a = A[o.x];
  let b = B[o.y];
#endif
  Y[idx] = ${BINARY_WGSL[op]};
}`;
}

export function whereShader(rank: number): string {
  return wgsl`${PARAMS}
@group(0) @binding(1) var<storage, read> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
${offsets(3, rank)}
${entry()}
  if (idx >= P[0]) { return; }
  let o = offsetsOf(idx);
  Y[idx] = select(B[o.z], A[o.y], C[o.x] != 0.0);
}`;
}

/** params: [n, value] */
export function fillShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= P[0]) { return; }
  Y[idx] = pf(1u);
}`;
}
