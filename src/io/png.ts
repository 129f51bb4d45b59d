// A grid of 8-bit images as a PNG (fast-png encodes).
import { encode } from "fast-png";

/** images: n * c * h * w bytes (c = 1 or 3, planar); laid out in rows of `cols` with a 2-pixel gap. */
export function imageGridPng(images: Uint8Array, n: number, c: number, h: number, w: number, cols = 8, gap = 2): Uint8Array {
  const rows = Math.ceil(n / cols);
  const W = cols * (w + gap) + gap, H = rows * (h + gap) + gap;
  const data = new Uint8Array(W * H * c).fill(255);
  for (let i = 0; i < n; i++) {
    const ox = gap + (i % cols) * (w + gap), oy = gap + Math.floor(i / cols) * (h + gap);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
      data[((oy + y) * W + ox + x) * c + ch] = images[((i * c + ch) * h + y) * w + x];
    }
  }
  return encode({ width: W, height: H, data, channels: c, depth: 8 });
}
