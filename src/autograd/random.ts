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

/**
 * A 32-bit hash of bytes and a seed (MurmurHash3's x86_32 mixing): the seed of an input's own
 * random draws, so they follow its pixels, not its position in a set (src/ood/loop.ts).
 */
export function hashBytes(bytes: Uint8Array, seed = 0): number {
  const c1 = 0xcc9e2d51, c2 = 0x1b873593, n = bytes.length, words = n >>> 2;
  let h = seed >>> 0;
  for (let i = 0; i < words; i++) {
    const j = i << 2;
    let k = bytes[j] | (bytes[j + 1] << 8) | (bytes[j + 2] << 16) | (bytes[j + 3] << 24);
    k = Math.imul(k, c1);
    k = Math.imul((k << 15) | (k >>> 17), c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let j = n - 1; j >= words << 2; j--) k = (k << 8) | bytes[j];
  if (n & 3) {
    k = Math.imul(k, c1);
    h ^= Math.imul((k << 15) | (k >>> 17), c2);
  }
  h ^= n;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
