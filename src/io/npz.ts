// NumPy arrays beyond image bytes, and .npz: little-endian float32, float64, int64 and uint8 arrays
// and fixed-width unicode strings ('<U'), C order (headers: npy.ts), and .npz as a zip of .npy
// entries (stored, as numpy.savez writes them; deflated entries are read too). numpy.load reads
// them without pickle (allow_pickle=False). Zip through fflate. The features files use these.
import { unzipSync, zipSync } from "fflate";
import { npyHeader, parseNpyHeader } from "./npy.ts";

export type NpyArray =
  | { dtype: "f4"; shape: number[]; data: Float32Array }
  | { dtype: "f8"; shape: number[]; data: Float64Array }
  | { dtype: "i8"; shape: number[]; data: BigInt64Array }
  | { dtype: "u1"; shape: number[]; data: Uint8Array }
  | { dtype: "U"; shape: number[]; data: string[] };

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** One array as .npy bytes. */
export function encodeNpy(a: NpyArray): Uint8Array {
  if (a.data.length !== size(a.shape)) throw new Error(`npy: ${a.data.length} values for shape [${a.shape}]`);
  let descr: string, body: Uint8Array;
  if (a.dtype === "U") {
    const width = Math.max(1, ...a.data.map((s) => [...s].length));
    descr = `<U${width}`;
    const codes = new Uint32Array(a.data.length * width);
    a.data.forEach((s, i) => [...s].forEach((ch, k) => (codes[i * width + k] = ch.codePointAt(0)!)));
    body = new Uint8Array(codes.buffer);
  } else {
    descr = a.dtype === "u1" ? "|u1" : `<${a.dtype}`;
    body = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  }
  const head = npyHeader(descr, a.shape), out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** One .npy file's array; errors name `what` and the cause. */
export function decodeNpy(bytes: Uint8Array, what: string): NpyArray {
  const fail = (why: string) => new Error(`${what}: ${why}`);
  const h = parseNpyHeader(bytes, fail);
  if (h.fortran) throw fail("Fortran-ordered arrays are not read (save with C order)");
  const shape = h.shape, n = size(shape), body = bytes.slice(h.dataOffset), descr = h.descr;
  const need = (per: number) => {
    if (body.length !== n * per) throw fail(`${body.length} data bytes for shape [${shape}] of ${descr} (expected ${n * per}; truncated?)`);
  };
  if (descr === "<f4") return need(4), { dtype: "f4", shape, data: new Float32Array(body.buffer, 0, n) };
  if (descr === "<f8") return need(8), { dtype: "f8", shape, data: new Float64Array(body.buffer, 0, n) };
  if (descr === "<i8") return need(8), { dtype: "i8", shape, data: new BigInt64Array(body.buffer, 0, n) };
  if (descr === "|u1" || descr === "<u1") return need(1), { dtype: "u1", shape, data: body };
  const u = /^<U(\d+)$/.exec(descr);
  if (u) {
    const w = Number(u[1]);
    need(4 * w);
    const codes = new Uint32Array(body.buffer, 0, n * w);
    const data = Array.from({ length: n }, (_, i) => {
      let s = "";
      for (let k = 0; k < w && codes[i * w + k]; k++) s += String.fromCodePoint(codes[i * w + k]);
      return s;
    });
    return { dtype: "U", shape, data };
  }
  throw fail(`dtype ${descr} is not read here (float32, float64, int64, uint8 or unicode strings)`);
}

/** Named arrays as .npz bytes (a zip of NAME.npy entries, stored). */
export function encodeNpz(arrays: Record<string, NpyArray>): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(arrays).map(([k, a]) => [`${k}.npy`, [encodeNpy(a), { level: 0 }]])));
}

/** The arrays of an .npz file by name (without .npy); errors name `what`. */
export function decodeNpz(bytes: Uint8Array, what: string): Record<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new Error(`${what}: not a readable .npz (zip) file (${(e as Error).message})`);
  }
  const out: Record<string, NpyArray> = {};
  for (const [name, b] of Object.entries(files)) {
    if (!name.endsWith(".npy")) throw new Error(`${what}: entry ${name} is not a .npy array`);
    out[name.slice(0, -4)] = decodeNpy(b, `${what} (${name})`);
  }
  return out;
}
