// Synthetic out-of-distribution sets derived from, or shaped like, an in-distribution set.
import type { Generator } from "../autograd/random.ts";
import { dims, type ImageSet } from "./dataset.ts";

/** Independent uniform pixels 0..255. */
export function uniformNoise(like: ImageSet, n: number, gen: Generator): ImageSet {
  const images = new Uint8Array(n * dims(like));
  for (let i = 0; i < images.length; i++) images[i] = gen.int(256);
  return { ...like, name: "noise", images, labels: new Uint8Array(n).fill(255), n };
}

/** Images of one constant value each, the value uniform in 0..255. */
export function constantImages(like: ImageSet, n: number, gen: Generator): ImageSet {
  const d = dims(like);
  const images = new Uint8Array(n * d);
  for (let i = 0; i < n; i++) images.fill(gen.int(256), i * d, (i + 1) * d);
  return { ...like, name: "constant", images, labels: new Uint8Array(n).fill(255), n };
}

/** Each image upside down (rows reversed). */
export function flipVertical(s: ImageSet): ImageSet {
  const images = new Uint8Array(s.images.length);
  const plane = s.h * s.w;
  for (let i = 0; i < s.n * s.c; i++) {
    for (let y = 0; y < s.h; y++) {
      const src = i * plane + y * s.w, dst = i * plane + (s.h - 1 - y) * s.w;
      images.set(s.images.subarray(src, src + s.w), dst);
    }
  }
  return { ...s, name: `${s.name}-vflip`, images };
}

/** 255 - x. */
export function invert(s: ImageSet): ImageSet {
  return { ...s, name: `${s.name}-inverted`, images: s.images.map((v) => 255 - v) };
}
