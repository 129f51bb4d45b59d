// The primitive ops' names, shared by the Backend contract (backend.ts), the CPU reference and
// the WGSL sources. A leaf module (it imports nothing), so shaders/ can import it without
// depending on the kernels that import the shaders.

/**
 * Unary elementwise ops. `p` is the scalar parameter where one is used. silu = x sigmoid(x) and
 * siluGrad = its derivative s (1 + x (1 - s)), s = sigmoid(x): one kernel each where x * sigmoid(x)
 * took two forward and five backward (the U-Net's activation).
 */
export const UNARY_OPS = [
  "neg", "exp", "log", "sqrt", "abs", "relu", "step", "sign", "sigmoid", "softplus", "tanh",
  "square", "recip", "powScalar", "mulScalar", "addScalar", "leakyRelu", "leakyStep", "silu", "siluGrad",
] as const;
export type UnaryOp = typeof UNARY_OPS[number];

export const BINARY_OPS = ["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "lt", "le", "eq", "reluMask"] as const;
export type BinaryOp = typeof BINARY_OPS[number];

/** sumsq: the sum of squares (one pass, no squared copy). */
export type ReduceOp = "sum" | "max" | "sumsq";
