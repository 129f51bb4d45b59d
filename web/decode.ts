// A user's image file to the model's 28x28 grey input, refusing what cannot be one before decoding
// it: an empty file, a file that is not an image, one too large (bytes or pixels); and saying what
// was done to the rest: resized (aspect ratio kept, centred on black), transparent pixels, inverted.
// Every message names the file.

export const MAX_BYTES = 20 * 1024 * 1024;
export const MAX_SIDE = 4096;

export class InputError extends Error {}

export interface Header {
  type: "PNG" | "JPEG" | "GIF" | "BMP" | "WebP";
  width: number;
  height: number;
}

const u16be = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
const u16le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
const u24le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const ascii = (b: Uint8Array, i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n));

/**
 * The image type and size from a file's first bytes, without decoding it; null where the bytes do
 * not start like a PNG, JPEG, GIF, BMP or WebP file; "truncated" where they do but end too soon.
 */
export function sniff(b: Uint8Array): Header | null | "truncated" {
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 3) === "PNG") {
    if (b.length < 24 || ascii(b, 12, 4) !== "IHDR") return "truncated";
    return { type: "PNG", width: u32be(b, 16), height: u32be(b, 20) };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return "truncated";
      const m = b[i + 1];
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return { type: "JPEG", height: u16be(b, i + 5), width: u16be(b, i + 7) };
      i += 2 + u16be(b, i + 2);
    }
    return "truncated";
  }
  if (b.length >= 6 && (ascii(b, 0, 6) === "GIF87a" || ascii(b, 0, 6) === "GIF89a")) {
    return b.length < 10 ? "truncated" : { type: "GIF", width: u16le(b, 6), height: u16le(b, 8) };
  }
  if (b.length >= 2 && ascii(b, 0, 2) === "BM") {
    if (b.length < 26) return "truncated";
    const dv = new DataView(b.buffer, b.byteOffset);
    return { type: "BMP", width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)) };
  }
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") {
    if (b.length < 30) return "truncated";
    const chunk = ascii(b, 12, 4);
    if (chunk === "VP8X") return { type: "WebP", width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
    if (chunk === "VP8L") {
      const v = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return { type: "WebP", width: (v & 0x3fff) + 1, height: ((v >>> 14) & 0x3fff) + 1 };
    }
    return { type: "WebP", width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  }
  return null;
}

export interface Decoded {
  image: Uint8Array;
  /** What was done to the file's pixels, in sentences naming the file. */
  notes: string[];
  width: number;
  height: number;
}

/** Checks a file's bytes before any decoding: one InputError naming the file and what is allowed. */
export function checkImageBytes(name: string, b: Uint8Array): Header {
  if (b.length === 0) throw new InputError(`${name}: the file is empty (0 bytes)`);
  if (b.length > MAX_BYTES) throw new InputError(`${name}: ${(b.length / 2 ** 20).toFixed(1)} MB is too large (the limit is ${MAX_BYTES / 2 ** 20} MB)`);
  const h = sniff(b);
  if (h === null) throw new InputError(`${name}: not an image (it does not start like a PNG, JPEG, GIF, BMP or WebP file)`);
  if (h === "truncated") throw new InputError(`${name}: the image ends before its size is given (a truncated file)`);
  if (!(h.width >= 1 && h.height >= 1)) throw new InputError(`${name}: a ${h.type} of ${h.width}x${h.height} pixels has no pixels`);
  if (h.width > MAX_SIDE || h.height > MAX_SIDE) throw new InputError(`${name}: ${h.width}x${h.height} pixels is too large (the limit is ${MAX_SIDE}x${MAX_SIDE})`);
  return h;
}

/**
 * Decodes a checked file and draws it at 28x28 grey: scaled with its aspect ratio kept and centred
 * on black; where it has transparent pixels, the alpha channel carries the shape (a dark shape on a
 * transparent background becomes a white shape on black, as in the training images); `invert` makes
 * dark-on-light images light-on-dark.
 */
export async function decodeImage(name: string, bytes: Uint8Array, invert: boolean, S = 28): Promise<Decoded> {
  const h = checkImageBytes(name, bytes);
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(new Blob([bytes as BlobPart]));
  } catch {
    throw new InputError(`${name}: the browser could not decode this ${h.type} (${h.width}x${h.height}): the file is truncated or corrupt`);
  }
  const { width, height } = bmp;
  const scale = S / Math.max(width, height), dw = Math.max(1, Math.round(width * scale)), dh = Math.max(1, Math.round(height * scale));
  const dx = Math.floor((S - dw) / 2), dy = Math.floor((S - dh) / 2);
  const c = new OffscreenCanvas(S, S), ctx = c.getContext("2d", { willReadFrequently: true })!;
  ctx.clearRect(0, 0, S, S);
  ctx.imageSmoothingEnabled = dw !== width || dh !== height;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bmp, dx, dy, dw, dh);
  bmp.close();
  const d = ctx.getImageData(0, 0, S, S).data;
  const notes: string[] = [];
  if (dw !== width || dh !== height) {
    notes.push(`${name} is ${width}x${height}: scaled to ${dw}x${dh}` + (dw !== dh ? " (aspect ratio kept) and centred on black" : "") + ` to make the model's ${S}x${S} input`);
  }
  // Transparency inside the drawn rectangle (outside it is the letterbox).
  let transparent = false, inkSum = 0, alphaSum = 0;
  for (let y = dy; y < dy + dh; y++) {
    for (let x = dx; x < dx + dw; x++) {
      const k = 4 * (y * S + x), a = d[k + 3];
      if (a < 255) transparent = true;
      inkSum += a * (0.299 * d[k] + 0.587 * d[k + 1] + 0.114 * d[k + 2]);
      alphaSum += a;
    }
  }
  const dark = alphaSum > 0 && inkSum / alphaSum < 128;
  const out = new Uint8Array(S * S);
  for (let i = 0; i < S * S; i++) {
    const a = d[4 * i + 3] / 255, g = 0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2];
    // Opaque pixels keep their grey; with transparency the shape is its alpha, dark or light alike.
    let v = transparent ? a * (dark ? 255 - g : g) : a * g;
    if (invert) v = 255 - v;
    out[i] = Math.round(Math.min(255, Math.max(0, v)));
  }
  if (transparent) {
    notes.push(`${name} has transparent pixels: its ${dark ? "dark" : "light"} shape is drawn white on black from its alpha channel` +
      (invert ? ", then inverted as asked (black on white, unlike the training images)" : ""));
  } else if (invert) notes.push(`${name}: inverted (dark on light to light on dark)`);
  return { image: out, notes, width, height };
}
