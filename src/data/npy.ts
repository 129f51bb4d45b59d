// NumPy .npy arrays of image bytes: the header (src/io/npy.ts) and uint8 [N,H,W] or [N,C,H,W]
// data, read whole (image_files) or streamed (an .npz's entries, npz.ts).
import type { ByteSource } from "./stream.ts";
import { NPY_MAGIC, type NpyHeader, npyHeader, parseNpyHeader, UINT8_DESCRS } from "../io/npy.ts";

export { NPY_MAGIC, type NpyHeader, npyHeader, parseNpyHeader, parseNpyHeaderText, UINT8_DESCRS } from "../io/npy.ts";

/** Reads an .npy header from a stream (leaves the stream at the first data byte). */
export function readNpyHeader(src: ByteSource, fail: (why: string) => Error): NpyHeader {
  const pre = src.read(10);
  if (NPY_MAGIC.some((b, i) => pre[i] !== b)) throw fail("not an .npy file (no \\x93NUMPY magic)");
  const major = pre[6];
  if (major < 1 || major > 3) throw fail(`unsupported .npy version ${major}.${pre[7]}`);
  const extra = major === 1 ? new Uint8Array(0) : src.read(2);
  const head = new Uint8Array(10 + extra.length);
  head.set(pre);
  head.set(extra, 10);
  const dv = new DataView(head.buffer);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (hlen > 1 << 20) throw fail(`header length ${hlen} is implausible (at most 1 MiB)`);
  const all = new Uint8Array(head.length + hlen);
  all.set(head);
  all.set(src.read(hlen), head.length);
  return parseNpyHeader(all, fail);
}

/** Parses an .npy file holding uint8 [N,H,W] or [N,C,H,W] (C order). */
export function parseNpy(bytes: Uint8Array, file: string): { shape: number[]; data: Uint8Array } {
  const fail = (why: string) => new Error(`npy file ${file}: ${why}`);
  const h = parseNpyHeader(bytes, fail);
  if (!UINT8_DESCRS.includes(h.descr)) throw fail(`dtype '${h.descr}', expected uint8 ('|u1'): pixels 0..255`);
  if (h.fortran) throw fail("Fortran order is not supported (save with C order)");
  const shape = h.shape;
  if (shape.length !== 3 && shape.length !== 4) throw fail(`shape (${shape.join(", ")}), expected [N,H,W] or [N,C,H,W]`);
  const n = shape.reduce((a, b) => a * b, 1), off = h.dataOffset;
  if (bytes.length !== off + n) throw fail(`shape (${shape.join(", ")}) needs ${n} data bytes, found ${bytes.length - off} (truncated or malformed)`);
  return { shape, data: bytes.subarray(off) };
}

/** An .npy (version 1.0) of `data` with the given shape (dtype uint8 unless given: then `data` holds its raw little-endian bytes). */
export function encodeNpy(data: Uint8Array, shape: number[], descr = "|u1"): Uint8Array {
  const head = npyHeader(descr, shape);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}
