// Seeded random tensors. Numbers are drawn on the host (xoshiro128**) so every backend
// sees the same values for the same seed.
import type { Backend, DType } from "../kernels/backend.ts";
import type { Shape } from "./shape.ts";
import { sizeOf } from "./shape.ts";
import { tensor } from "./ops/elementwise.ts";
import type { Tensor } from "./tensor.ts";

export class Generator {
  #s = new Uint32Array(4);

  constructor(seed = 0) {
    // splitmix32 expands the seed into the 128-bit state.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  nextU32(): number {
    const s = this.#s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    return (this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53;
  }

  normal(): number {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    const u = 1 - this.uniform(), v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface RandOptions {
  backend?: Backend;
  dtype?: DType;
  requiresGrad?: boolean;
}

export function randn(gen: Generator, shape: Shape, o: RandOptions & { mean?: number; std?: number } = {}): Tensor {
  const n = sizeOf(shape), d = new Float64Array(n);
  const m = o.mean ?? 0, s = o.std ?? 1;
  for (let i = 0; i < n; i++) d[i] = m + s * gen.normal();
  return tensor(d, shape, o);
}

export function rand(gen: Generator, shape: Shape, o: RandOptions & { low?: number; high?: number } = {}): Tensor {
  const n = sizeOf(shape), d = new Float64Array(n);
  const lo = o.low ?? 0, hi = o.high ?? 1;
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * gen.uniform();
  return tensor(d, shape, o);
}
