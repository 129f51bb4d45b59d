// MATLAB 5 (v5) MAT-files, as SVHN ships its cropped digits (test_32x32.mat): a 128-byte header
// (text, version 0x0100, endian indicator "IM" for little-endian files, "MI" for big-endian), then
// data elements: an 8-byte tag (type, byte count; or the "small element" form with both in 4 bytes
// and the data in the next 4), data padded to 8 bytes. miCOMPRESSED elements hold one zlib-compressed
// element. A variable is an miMATRIX: array flags (class), dimensions, name, real part.
//
// readSvhn streams the file: X uint8 [32,32,3,N] in MATLAB's column-major order (row fastest, then
// column, channel, image) goes straight into planar [N,3,32,32] bytes; y [N,1] (double or any
// integer class) holds 1..10, 10 meaning the digit 0. Other variables are skipped unread.
import { zlibSync } from "fflate";
import { type ImageSet, makeSet } from "./dataset.ts";
import { concatBytes } from "./files.ts";
import { adler32, type ByteSource, type Fail, FileSource, InflateSource } from "./stream.ts";

const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15 } as const;
const MX = { CELL: 1, STRUCT: 2, OBJECT: 3, CHAR: 4, SPARSE: 5, DOUBLE: 6, SINGLE: 7, INT8: 8, UINT8: 9, INT16: 10, UINT16: 11, INT32: 12, UINT32: 13, INT64: 14, UINT64: 15 } as const;
const MX_NAME: Record<number, string> = Object.fromEntries(Object.entries(MX).map(([k, v]) => [v, k.toLowerCase()]));
/** Bytes per element of the numeric data types. */
const MI_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };
/** At most this many bytes of image data (V8's typed arrays stop near 2^32). */
const MAX_BYTES = 2 ** 31;

interface Tag {
  type: number;
  size: number;
  /** Small-element form: the data are these 4 bytes (already read). */
  small: Uint8Array | null;
}

const pad8 = (n: number) => (8 - (n % 8)) % 8;

function readTag(src: ByteSource, le: boolean): Tag {
  const b = src.read(8);
  const dv = new DataView(b.buffer);
  const first = dv.getUint32(0, le);
  if (first >>> 16 !== 0) return { type: first & 0xffff, size: first >>> 16, small: b.subarray(4, 8) };
  return { type: first, size: dv.getUint32(4, le), small: null };
}

/** The data of a (short) sub-element, with its padding consumed. */
function readSub(src: ByteSource, le: boolean, fail: Fail, what: string, max = 1 << 16): { type: number; data: Uint8Array } {
  const t = readTag(src, le);
  if (t.small) {
    if (t.size > 4) throw fail(`${what}: small data element of ${t.size} bytes (at most 4)`);
    return { type: t.type, data: t.small.subarray(0, t.size) };
  }
  if (t.size > max) throw fail(`${what}: ${t.size} bytes (at most ${max} expected)`);
  const data = src.read(t.size);
  src.skip(pad8(t.size));
  return { type: t.type, data };
}

/** Reads numeric data of any MAT type as numbers. */
function numbers(type: number, data: Uint8Array, le: boolean): number[] {
  const size = MI_SIZE[type];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: number[] = [];
  for (let o = 0; o + size <= data.length; o += size) {
    switch (type) {
      case MI.INT8: out.push(dv.getInt8(o)); break;
      case MI.UINT8: out.push(dv.getUint8(o)); break;
      case MI.INT16: out.push(dv.getInt16(o, le)); break;
      case MI.UINT16: out.push(dv.getUint16(o, le)); break;
      case MI.INT32: out.push(dv.getInt32(o, le)); break;
      case MI.UINT32: out.push(dv.getUint32(o, le)); break;
      case MI.SINGLE: out.push(dv.getFloat32(o, le)); break;
      case MI.DOUBLE: out.push(dv.getFloat64(o, le)); break;
      case MI.INT64: out.push(Number(dv.getBigInt64(o, le))); break;
      case MI.UINT64: out.push(Number(dv.getBigUint64(o, le))); break;
    }
  }
  return out;
}

interface Found {
  images?: Uint8Array;
  n?: number;
  labels?: Uint8Array;
}

/**
 * One miMATRIX of `size` bytes (its tag already read): X and y are taken, others skipped.
 * `src` is positioned at the array flags sub-element.
 */
function readMatrix(src: ByteSource, size: number, le: boolean, fail: Fail, found: Found): void {
  const end = src.pos + size;
  const flagsEl = readSub(src, le, fail, "array flags", 8);
  if (flagsEl.type !== MI.UINT32 || flagsEl.data.length !== 8) throw fail(`array flags sub-element has type ${flagsEl.type} and ${flagsEl.data.length} bytes (expected miUINT32, 8 bytes)`);
  const flags = new DataView(flagsEl.data.buffer, flagsEl.data.byteOffset, 8).getUint32(0, le);
  const cls = flags & 0xff, complex = (flags & 0x800) !== 0;
  if (cls < MX.DOUBLE || cls > MX.UINT64) { // cells, structs, objects, chars, sparse: not ours
    src.skip(end - src.pos);
    return;
  }
  const dimsEl = readSub(src, le, fail, "dimensions", 4 * 32);
  if (dimsEl.type !== MI.INT32 || dimsEl.data.length % 4 !== 0 || dimsEl.data.length < 8) throw fail(`dimensions sub-element has type ${dimsEl.type} and ${dimsEl.data.length} bytes (expected miINT32, at least 2 dimensions)`);
  const dims = numbers(MI.INT32, dimsEl.data, le);
  if (dims.some((d) => d < 0)) throw fail(`negative dimension in [${dims}]`);
  const nameEl = readSub(src, le, fail, "array name", 64);
  if (nameEl.type !== MI.INT8 && nameEl.type !== MI.UINT8) throw fail(`array name sub-element has type ${nameEl.type} (expected miINT8)`);
  const name = new TextDecoder().decode(nameEl.data);
  if (name !== "X" && name !== "y") {
    src.skip(end - src.pos);
    return;
  }
  if (found[name === "X" ? "images" : "labels"]) throw fail(`variable '${name}' appears twice`);
  if (complex) throw fail(`variable '${name}' is complex (expected real ${name === "X" ? "uint8 pixels" : "labels"})`);
  const count = dims.reduce((a, b) => a * b, 1);
  const real = readTag(src, le);
  const dataBytes = real.size;
  if (name === "X") {
    if (cls !== MX.UINT8) throw fail(`variable 'X' is ${MX_NAME[cls]}, expected uint8 pixels (class mxUINT8) as in the official file`);
    if (real.type !== MI.UINT8) throw fail(`variable 'X' stores its data as type ${real.type}, expected miUINT8 (2)`);
    if (dims.length !== 4 || dims[0] !== 32 || dims[1] !== 32 || dims[2] !== 3) throw fail(`variable 'X' has dimensions [${dims.join(",")}], expected [32,32,3,N] (32x32 RGB images, N of them)`);
    const n = dims[3];
    if (n === 0) throw fail("variable 'X' holds no images (dimensions [32,32,3,0])");
    if (dataBytes !== count) throw fail(`variable 'X' has ${dataBytes} data bytes for dimensions [${dims.join(",")}] (${count} expected)`);
    if (count > MAX_BYTES) throw fail(`variable 'X' has ${count} bytes, more than the ${MAX_BYTES} this reader holds`);
    const out = new Uint8Array(count);
    if (real.small) out.set(real.small.subarray(0, count));
    else {
      // Column-major [row, col, ch, n] -> planar [n, ch, row, col]: within each 32x32 plane, transpose.
      let k = 0;
      src.pipe(count, (piece) => {
        for (let i = 0; i < piece.length; i++, k++) {
          const plane = k & ~1023, p = k & 1023; // (n, ch) plane start; p = col * 32 + row
          out[plane + ((p & 31) << 5) + (p >> 5)] = piece[i];
        }
      });
      src.skip(pad8(count));
    }
    found.images = out;
    found.n = n;
  } else {
    if (!(dims.length === 2 && (dims[1] === 1 || dims[0] === 1))) throw fail(`variable 'y' has dimensions [${dims.join(",")}], expected [N,1] labels`);
    const size = MI_SIZE[real.type];
    if (!size) throw fail(`variable 'y' stores its data as type ${real.type}, not a numeric type`);
    if (dataBytes !== count * size) throw fail(`variable 'y' has ${dataBytes} data bytes for ${count} labels of ${size} bytes`);
    if (count * size > 1 << 28) throw fail(`variable 'y' has ${count} labels, implausibly many`);
    const data = real.small ? real.small.subarray(0, dataBytes) : src.read(dataBytes);
    if (!real.small) src.skip(pad8(dataBytes));
    const labels = new Uint8Array(count);
    numbers(real.type, data, le).forEach((v, i) => {
      if (!(Number.isInteger(v) && v >= 1 && v <= 10)) throw fail(`variable 'y' holds ${v} at index ${i}; SVHN labels are 1..10 (10 is the digit 0)`);
      labels[i] = v % 10;
    });
    found.labels = labels;
  }
  if (src.pos > end) throw fail(`variable '${name}' overruns its element (${src.pos - end} bytes past its end)`);
  src.skip(end - src.pos); // an imaginary part or trailing padding
}

/** Reads X and y of an SVHN MAT-file (test_32x32.mat, train_32x32.mat, extra_32x32.mat) as a 3x32x32 set. */
export function readSvhn(path: string, name = path): { set: ImageSet; ids: string[] } {
  const fail: Fail = (why) => new Error(`SVHN file ${path}: ${why}`);
  const src = new FileSource(path, fail, "SVHN");
  try {
    if (src.size < 128) throw fail(`${src.size} bytes, shorter than the 128-byte MAT-file header (truncated or not a MAT-file)`);
    const head = src.read(128);
    const text = new TextDecoder("latin1").decode(head.subarray(0, 116));
    const endian = String.fromCharCode(head[126], head[127]);
    if (endian !== "IM" && endian !== "MI") {
      if (/^MATLAB 7\.3/.test(text) || head.subarray(0, 8).every((b, i) => b === [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a][i])) throw fail("a MATLAB v7.3 (HDF5) MAT-file; save it as v5/v7 (save -v7) to read it here");
      throw fail(`not a MAT-file version 5: endian indicator ${JSON.stringify(endian)} at byte 126 (expected "IM" or "MI")`);
    }
    const le = endian === "IM";
    const version = new DataView(head.buffer).getUint16(124, le);
    if (!text.startsWith("MATLAB 5.0 MAT-file")) throw fail(`header text ${JSON.stringify(text.slice(0, 40))} does not begin "MATLAB 5.0 MAT-file"`);
    if (version !== 0x0100) throw fail(`header version 0x${version.toString(16)} with endian indicator ${endian}: expected 0x0100 (a byte-order mix-up or not a v5 MAT-file)`);
    const found: Found = {};
    while (!src.atEnd()) {
      if (src.size - src.pos < 8) throw fail(`truncated: ${src.size - src.pos} stray bytes after the last element`);
      const at = src.pos;
      const tag = readTag(src, le);
      if (tag.small) throw fail(`a small data element at top level (offset ${at}), expected miMATRIX or miCOMPRESSED`);
      if (tag.type === MI.COMPRESSED) {
        if (tag.size < 6) throw fail(`compressed element at offset ${at} has ${tag.size} bytes (too short for zlib)`);
        if (src.pos + tag.size > src.size) throw fail(`truncated: the compressed element at offset ${at} announces ${tag.size} bytes, the file ends ${src.size - src.pos} bytes later`);
        const zhead = src.read(2);
        if ((zhead[0] & 0x0f) !== 8 || ((zhead[0] << 8) | zhead[1]) % 31 !== 0 || zhead[1] & 0x20) throw fail(`compressed element at offset ${at} is not a zlib stream (header ${zhead[0].toString(16)} ${zhead[1].toString(16)})`);
        const z = new InflateSource(src, tag.size - 6, fail, `compressed element at offset ${at}`, { fn: adler32, init: 1 });
        const inner = readTag(z, le);
        if (inner.small || inner.type !== MI.MATRIX) throw fail(`compressed element at offset ${at} holds type ${inner.type}, expected miMATRIX (14)`);
        readMatrix(z, inner.size, le, fail, found);
        z.finish();
        const want = new DataView(src.read(4).buffer).getUint32(0, false);
        if (want !== z.sum) throw fail(`compressed element at offset ${at} fails its Adler-32 checksum (corrupt)`);
      } else if (tag.type === MI.MATRIX) {
        if (src.pos + tag.size > src.size) throw fail(`truncated: the element at offset ${at} announces ${tag.size} bytes, the file ends ${src.size - src.pos} bytes later`);
        readMatrix(src, tag.size, le, fail, found);
        src.skip(Math.min(pad8(tag.size), src.size - src.pos));
      } else {
        src.skip(tag.size);
        src.skip(Math.min(pad8(tag.size), src.size - src.pos));
      }
    }
    if (!found.images) throw fail("no variable 'X' (the images; SVHN's cropped-digit files hold X and y)");
    if (!found.labels) throw fail("no variable 'y' (the labels; SVHN's cropped-digit files hold X and y)");
    if (found.labels.length !== found.n) throw fail(`'X' holds ${found.n} images but 'y' ${found.labels.length} labels`);
    return { set: makeSet(name, found.images, found.labels, 3, 32, 32), ids: Array.from({ length: found.n! }, (_, i) => `${path}:${i}`) };
  } finally {
    src.close();
  }
}

// ---- writer (tests, synthetic files) ----

export interface MatVariable {
  name: string;
  /** MATLAB class: "uint8" or "double". */
  cls: "uint8" | "double";
  dims: number[];
  /** Column-major values. */
  values: ArrayLike<number>;
}

function element(type: number, data: Uint8Array, le: boolean, small = true): Uint8Array {
  if (small && data.length <= 4) {
    const out = new Uint8Array(8);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, ((data.length << 16) | type) >>> 0, le);
    out.set(data, 4);
    return out;
  }
  const out = new Uint8Array(8 + data.length + pad8(data.length));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type, le);
  dv.setUint32(4, data.length, le);
  out.set(data, 8);
  return out;
}

/** A v5 MAT-file of the given variables; each compressed into its own miCOMPRESSED element if `compress`. */
export function encodeMat(vars: MatVariable[], opts: { compress?: boolean; bigEndian?: boolean } = {}): Uint8Array {
  const le = !opts.bigEndian;
  const head = new Uint8Array(128).fill(0x20);
  head.set(new TextEncoder().encode("MATLAB 5.0 MAT-file, written by fimscope"));
  head.fill(0, 116, 124);
  const hv = new DataView(head.buffer);
  hv.setUint16(124, 0x0100, le);
  head[126] = le ? 0x49 : 0x4d; // "IM" little-endian, "MI" big-endian
  head[127] = le ? 0x4d : 0x49;
  const parts: Uint8Array[] = [head];
  for (const v of vars) {
    const flags = new Uint8Array(8);
    new DataView(flags.buffer).setUint32(0, v.cls === "uint8" ? MX.UINT8 : MX.DOUBLE, le);
    const dims = new Uint8Array(4 * v.dims.length);
    v.dims.forEach((d, i) => new DataView(dims.buffer).setInt32(4 * i, d, le));
    let data: Uint8Array;
    if (v.cls === "uint8") data = Uint8Array.from(v.values);
    else {
      data = new Uint8Array(8 * v.values.length);
      const dv = new DataView(data.buffer);
      for (let i = 0; i < v.values.length; i++) dv.setFloat64(8 * i, v.values[i], le);
    }
    const body = concatBytes([
      element(MI.UINT32, flags, le, false),
      element(MI.INT32, dims, le, false),
      element(MI.INT8, new TextEncoder().encode(v.name), le),
      element(v.cls === "uint8" ? MI.UINT8 : MI.DOUBLE, data, le, false),
    ]);
    const matrix = element(MI.MATRIX, body, le, false);
    if (!opts.compress) parts.push(matrix);
    else {
      const z = zlibSync(matrix);
      const tag = new Uint8Array(8);
      new DataView(tag.buffer).setUint32(0, MI.COMPRESSED, le);
      new DataView(tag.buffer).setUint32(4, z.length, le);
      parts.push(tag, z);
    }
  }
  return concatBytes(parts);
}

/** Planar [N,3,32,32] bytes as MATLAB's column-major [32,32,3,N] values (SVHN's X). */
export function svhnColumnMajor(planar: Uint8Array): Uint8Array {
  const out = new Uint8Array(planar.length);
  for (let k = 0; k < planar.length; k++) {
    const plane = k & ~1023, p = k & 1023;
    out[k] = planar[plane + ((p & 31) << 5) + (p >> 5)];
  }
  return out;
}
