// Image sets as exact 8-bit pixels, with transforms to model space and seeded batching.
import * as T from "../autograd/index.ts";
import type { Backend } from "../kernels/backend.ts";

export interface ImageSet {
  name: string;
  /** N x C x H x W unsigned bytes, 0..255, exact. */
  images: Uint8Array;
  /** Class labels, or 255 where there are none. */
  labels: Uint8Array;
  n: number;
  c: number;
  h: number;
  w: number;
}

export const dims = (s: ImageSet) => s.c * s.h * s.w;

export function makeSet(name: string, images: Uint8Array, labels: Uint8Array, c: number, h: number, w: number): ImageSet {
  const d = c * h * w;
  if (images.length % d !== 0) throw new Error(`${name}: ${images.length} bytes is not a whole number of ${c}x${h}x${w} images`);
  const n = images.length / d;
  if (labels.length !== n) throw new Error(`${name}: ${n} images but ${labels.length} labels`);
  return { name, images, labels, n, c, h, w };
}

/** The images at the given indices (a copy), as a new set. */
export function subset(s: ImageSet, idx: ArrayLike<number>, name = s.name): ImageSet {
  const d = dims(s);
  const images = new Uint8Array(idx.length * d), labels = new Uint8Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    if (!(j >= 0 && j < s.n)) throw new Error(`${s.name}: index ${j} out of range [0, ${s.n})`);
    images.set(s.images.subarray(j * d, (j + 1) * d), i * d);
    labels[i] = s.labels[j];
  }
  return { ...s, name, images, labels, n: idx.length };
}

export const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

export interface ToTensor {
  backend?: Backend;
  /** Uniform dequantisation noise u in [0,1) added to each pixel value (replaces `offset`). */
  dequantize?: T.Generator;
  /** Added to v when not dequantising (default 0.5: the centre of the bin [v, v+1)). */
  offset?: number;
  /** (v + u) / divisor * scale + shift; the defaults (256, 1, 0) give [0, 1). */
  divisor?: number;
  scale?: number;
  shift?: number;
}

/**
 * Images idx as a float tensor [B, C, H, W]: pixel v in 0..255 becomes
 * (v + u) / divisor * scale + shift with u the dequantisation noise or the fixed offset.
 */
export function toTensor(s: ImageSet, idx: ArrayLike<number>, o: ToTensor = {}): T.Tensor {
  const d = dims(s), scale = o.scale ?? 1, shift = o.shift ?? 0, div = o.divisor ?? 256, off = o.offset ?? 0.5;
  const out = new Float32Array(idx.length * d);
  for (let i = 0; i < idx.length; i++) {
    const base = idx[i] * d;
    for (let k = 0; k < d; k++) {
      const u = o.dequantize ? o.dequantize.uniform() : off;
      out[i * d + k] = ((s.images[base + k] + u) / div) * scale + shift;
    }
  }
  return T.tensor(out, [idx.length, s.c, s.h, s.w], { backend: o.backend });
}

/** Index batches of one epoch in a seeded random order (the last partial batch is dropped if dropLast). */
export function batches(n: number, batchSize: number, gen: T.Generator, dropLast = true): number[][] {
  const perm = gen.permutation(n);
  const out: number[][] = [];
  for (let i = 0; i + (dropLast ? batchSize : 1) <= n; i += batchSize) out.push([...perm.subarray(i, Math.min(n, i + batchSize))]);
  return out;
}
