// The primitive ops' names, shared by the Backend contract (backend.ts), the CPU reference and
// the WGSL sources. A leaf module (it imports nothing), so shaders/ can import it without
// depending on the kernels that import the shaders.

/** Unary elementwise ops. `p` is the scalar parameter where one is used. */
export const UNARY_OPS = [
  "neg", "exp", "log", "sqrt", "abs", "relu", "step", "sign", "sigmoid", "softplus", "tanh",
  "square", "recip", "powScalar", "mulScalar", "addScalar", "leakyRelu", "leakyStep",
] as const;
export type UnaryOp = typeof UNARY_OPS[number];

export const BINARY_OPS = ["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "lt", "le", "eq", "reluMask"] as const;
export type BinaryOp = typeof BINARY_OPS[number];

/** sumsq: the sum of squares (one pass, no squared copy). */
export type ReduceOp = "sum" | "max" | "sumsq";
