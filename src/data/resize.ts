// The two resamplings the paper's data pipelines used, reproduced so our bytes match theirs:
//
// - `resizeTorchBilinear`: torchvision 0.13's transforms.Resize on a float tensor (the authors
//   applied ToTensor first for GTSRB and Omniglot), i.e. torch.nn.functional.interpolate(mode=
//   "bilinear", align_corners=False, antialias=False): output pixel i samples the source at
//   (i + 0.5) * in/out - 0.5 (clamped at 0) between its two neighbours. No antialiasing, so a
//   large downscale skips pixels. The authors kept the float result; we round it to the nearest
//   byte (at most 0.5/255 of the pixel range away).
// - `resizePillowBilinear`: Pillow's Image.resize(BILINEAR) on an 8-bit image (torchvision's Resize
//   on a PIL image, as the authors' CelebA pipeline does): a triangle filter widened by the
//   downscale factor (antialiased), coefficients normalised and rounded to 22-bit fixed point, a
//   horizontal pass rounded to bytes, then a vertical pass (Pillow's Resample.c, PRECISION_BITS 22).
//   Bit-exact with Pillow 9.4 on the cases in docs/datasets.md.
//
// Both take and return planar bytes [C, H, W].

/** Nearest byte of a non-negative value (half up), clamped to 0..255. */
const toByte = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.floor(v + 0.5));

/** torch's source positions for one axis: lower index, upper index, weight of the upper one. */
function torchAxis(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; l1: Float64Array } {
  const scale = inSize / outSize;
  const i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), l1 = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(0, scale * (o + 0.5) - 0.5);
    const lo = Math.floor(src);
    i0[o] = lo;
    i1[o] = lo < inSize - 1 ? lo + 1 : lo;
    l1[o] = src - lo;
  }
  return { i0, i1, l1 };
}

/** torch.nn.functional.interpolate(bilinear, align_corners=False, antialias=False) of planar bytes, rounded to bytes. */
export function resizeTorchBilinear(src: Uint8Array, c: number, h: number, w: number, oh: number, ow: number): Uint8Array {
  const ys = torchAxis(h, oh), xs = torchAxis(w, ow);
  const out = new Uint8Array(c * oh * ow);
  for (let k = 0; k < c; k++) {
    const plane = k * h * w;
    for (let y = 0; y < oh; y++) {
      const r0 = plane + ys.i0[y] * w, r1 = plane + ys.i1[y] * w, b = ys.l1[y], a = 1 - b;
      for (let x = 0; x < ow; x++) {
        const c0 = xs.i0[x], c1 = xs.i1[x], q = xs.l1[x], p = 1 - q;
        const v = a * (p * src[r0 + c0] + q * src[r0 + c1]) + b * (p * src[r1 + c0] + q * src[r1 + c1]);
        out[(k * oh + y) * ow + x] = toByte(v);
      }
    }
  }
  return out;
}

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS, HALF = 2 ** (PRECISION_BITS - 1);

/** Pillow's precompute_coeffs (bilinear filter, support 1) then normalize_coeffs_8bpc, for one axis. */
function pillowAxis(inSize: number, outSize: number): { min: Int32Array; n: Int32Array; k: Int32Array[] } {
  const scale = inSize / outSize, filterscale = Math.max(1, scale), support = filterscale; // bilinear support 1.0
  const min = new Int32Array(outSize), n = new Int32Array(outSize), k: Int32Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale, ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const w = new Float64Array(Math.max(0, xmax));
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x];
    }
    const fixed = new Int32Array(w.length);
    for (let x = 0; x < w.length; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      fixed[x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    min[o] = xmin;
    n[o] = w.length;
    k.push(fixed);
  }
  return { min, n, k };
}

const clip8 = (ss: number) => {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** Pillow's Image.resize(size, Image.BILINEAR) of a planar 8-bit image (all channels alike), horizontal pass first. */
export function resizePillowBilinear(src: Uint8Array, c: number, h: number, w: number, oh: number, ow: number): Uint8Array {
  let cur = src, cw = w;
  if (ow !== w) {
    const ax = pillowAxis(w, ow), tmp = new Uint8Array(c * h * ow);
    for (let p = 0; p < c * h; p++) {
      const row = p * w;
      for (let x = 0; x < ow; x++) {
        const k = ax.k[x], m = ax.min[x];
        let ss = HALF;
        for (let i = 0; i < ax.n[x]; i++) ss += cur[row + m + i] * k[i];
        tmp[p * ow + x] = clip8(ss);
      }
    }
    cur = tmp;
    cw = ow;
  }
  if (oh !== h) {
    const ay = pillowAxis(h, oh), tmp = new Uint8Array(c * oh * cw);
    for (let k0 = 0; k0 < c; k0++) {
      const plane = k0 * h * cw;
      for (let y = 0; y < oh; y++) {
        const k = ay.k[y], m = ay.min[y];
        for (let x = 0; x < cw; x++) {
          let ss = HALF;
          for (let i = 0; i < ay.n[y]; i++) ss += cur[plane + (m + i) * cw + x] * k[i];
          tmp[(k0 * oh + y) * cw + x] = clip8(ss);
        }
      }
    }
    cur = tmp;
  }
  return cur === src ? src.slice() : cur;
}

/** The planar bytes of the box [x0, x0 + cw) x [y0, y0 + ch) of a planar [c, h, w] image. */
export function cropPlanar(src: Uint8Array, c: number, h: number, w: number, x0: number, y0: number, cw: number, ch: number): Uint8Array {
  if (x0 < 0 || y0 < 0 || x0 + cw > w || y0 + ch > h) throw new Error(`crop ${cw}x${ch} at (${x0}, ${y0}) is outside a ${w}x${h} image`);
  const out = new Uint8Array(c * ch * cw);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < ch; y++) out.set(src.subarray(k * h * w + (y0 + y) * w + x0, k * h * w + (y0 + y) * w + x0 + cw), (k * ch + y) * cw);
  }
  return out;
}

/** Interleaved pixels (RGBRGB... or RGBARGBA..., `stride` bytes each) as planar [3, h, w] bytes; 1- or 2-byte pixels as grey repeated. */
export function planarRgb(data: ArrayLike<number>, h: number, w: number, stride: number): Uint8Array {
  const n = h * w, out = new Uint8Array(3 * n);
  const grey = stride < 3;
  for (let i = 0; i < n; i++) {
    const s = i * stride;
    out[i] = data[s];
    out[n + i] = data[grey ? s : s + 1];
    out[2 * n + i] = data[grey ? s : s + 2];
  }
  return out;
}
