// Scalar definitions of the elementwise ops: the CPU backend's kernels and the
// reference the WGSL versions are tested against. Numerically stable forms.
import type { BinaryOp, UnaryOp } from "./ops.ts";

export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export const UNARY: Record<UnaryOp, (x: number, p: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  abs: Math.abs,
  relu: (x) => (x > 0 ? x : 0),
  step: (x) => (x > 0 ? 1 : 0),
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  sigmoid,
  softplus,
  tanh: Math.tanh,
  square: (x) => x * x,
  recip: (x) => 1 / x,
  powScalar: (x, p) => Math.pow(x, p),
  mulScalar: (x, p) => x * p,
  addScalar: (x, p) => x + p,
  leakyRelu: (x, p) => (x > 0 ? x : p * x),
  leakyStep: (x, p) => (x > 0 ? 1 : p),
  silu: (x) => x * sigmoid(x),
  siluGrad: (x) => {
    const s = sigmoid(x);
    return s * (1 + x * (1 - s));
  },
};

export const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => (a >= b ? a : b),
  minimum: (a, b) => (a <= b ? a : b),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
  reluMask: (a, b) => (b > 0 ? a : 0),
};
