// Elementwise kernels: unary (with a scalar parameter), broadcasting binary, where, fill.
import { wgsl } from "wgsl-preprocessor";
import type { BinaryOp, UnaryOp } from "../src/kernels/ops.ts";
import { entry, Layout, MAX_RANK, nonFinite, PARAMS } from "./preamble.ts";

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
  silu: "x * sigmoidf(x)",
  siluGrad: "siluGradf(x)",
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

// pow for negative bases with integer exponents, as Math.pow does; its NaN made at run time from p
// (preamble.ts nonFinite).
const POW = /* wgsl */ `
fn powScalar(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (p == 1.0) { return x; }
  if (p == 2.0) { return x * x; }
  let m = pow(abs(x), p);
  if (x >= 0.0) { return m; }
  if (fract(p) != 0.0) { return ${nonFinite(0x7fc00000, "bitcast<u32>(p)")}; }
  if (fract(p * 0.5) != 0.0) { return -m; }
  return m;
}`;

// The stable sigmoid of UNARY_WGSL.sigmoid, for the ops built on it; siluGrad's 1 - s is
// sigmoid(-x), the other branch of the same form (a subtraction would cancel for large x).
const SIGMOID = /* wgsl */ `
fn sigmoidf(x: f32) -> f32 { return select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0); }
fn siluGradf(x: f32) -> f32 {
  let e = exp(-abs(x));
  let q = 1.0 / (1.0 + e);
  let s = select(e * q, q, x >= 0.0);
  let c = select(q, e * q, x >= 0.0);
  return s * (1.0 + x * c);
}`;

/** Params of unary ops (n elements, the op's scalar p as f32) and of fill (the value as f32). */
export const UNARY = new Layout({ n: 1, p: 1 });
export const FILL = new Layout({ n: 1, value: 1 });

/**
 * Params of the broadcasting ops: the output's (coalesced) shape, then each input's element
 * strides over it (0 on broadcast dims), MAX_RANK words per field. `same` binaries use only n.
 */
export const BROADCAST = new Layout({ n: 1, rank: 1, shape: MAX_RANK, in0: MAX_RANK, in1: MAX_RANK, in2: MAX_RANK });
/** Params of a binary op whose inputs have the output's shape. */
export const SAME = new Layout({ n: 1 });
const INPUTS = ["in0", "in1", "in2"] as const;

export function unaryShader(op: UnaryOp): string {
  return wgsl`${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
#if ${op === "powScalar"}
${POW}
#endif
#if ${op === "silu" || op === "siluGrad"}
${SIGMOID}
#endif
${entry()}
  if (idx >= ${UNARY.u("n")}) { return; }
  let x = X[idx];
  let p = ${UNARY.f("p")};
  Y[idx] = ${UNARY_WGSL[op]};
}`;
}

// One walk over the (coalesced) output coordinates gives every input's offset: the divisions are
// shared by the inputs. The rank is baked in (one pipeline per rank): the unrolled walk ran 2-2.5x
// faster than a loop over a runtime rank on lavapipe ([2048,196] + [2048,1]: 3.4-3.8 -> 1.5 ms).
function offsets(inputs: 2 | 3, rank: number): string {
  const vec = `vec${inputs}<u32>`;
  const steps = [...Array(rank).keys()].reverse().map((k) => {
    const st = INPUTS.slice(0, inputs).map((f) => BROADCAST.u(f, k)).join(", ");
    const c = k === 0 ? "rem" : `rem - q${k} * ${BROADCAST.u("shape", k)}`;
    return (k === 0 ? "" : `  let q${k} = rem / ${BROADCAST.u("shape", k)};\n`) + `  off += (${c}) * ${vec}(${st});\n` + (k === 0 ? "" : `  rem = q${k};\n`);
  });
  return `
fn offsetsOf(idx: u32) -> ${vec} {
  var rem = idx;
  var off = ${vec}();
${steps.join("")}  return off;
}`;
}

/** `rank`: the coalesced rank of a broadcasting op (ignored when `same`: all shapes equal the output, no index arithmetic). */
export function binaryShader(op: BinaryOp, same: boolean, rank = 0): string {
  return wgsl`${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
#if ${!same}
${offsets(2, rank)}
#endif
${entry()}
#if ${same}
  if (idx >= ${SAME.u("n")}) { return; }
  let a = A[idx];
  let b = B[idx];
#else
  if (idx >= ${BROADCAST.u("n")}) { return; }
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
  if (idx >= ${BROADCAST.u("n")}) { return; }
  let o = offsetsOf(idx);
  Y[idx] = select(B[o.z], A[o.y], C[o.x] != 0.0);
}`;
}

export function fillShader(): string {
  return `${PARAMS}
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
${entry()}
  if (idx >= ${FILL.u("n")}) { return; }
  Y[idx] = ${FILL.f("value")};
}`;
}
