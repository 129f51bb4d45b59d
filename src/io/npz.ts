// NumPy's .npy and .npz files, the subset fimscope writes and reads: little-endian float32,
// float64, int64 and uint8 arrays and fixed-width unicode strings ('<U'), C order, format 1.0,
// and .npz as a zip of .npy entries (stored, as numpy.savez writes them; deflated entries are read
// too). numpy.load reads them without pickle (allow_pickle=False). Zip through fflate.
import { unzipSync, zipSync } from "fflate";

export type NpyArray =
  | { dtype: "f4"; shape: number[]; data: Float32Array }
  | { dtype: "f8"; shape: number[]; data: Float64Array }
  | { dtype: "i8"; shape: number[]; data: BigInt64Array }
  | { dtype: "u1"; shape: number[]; data: Uint8Array }
  | { dtype: "U"; shape: number[]; data: string[] };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
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
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + body.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}

/** One .npy file's array; errors name `what` and the cause. */
export function decodeNpy(bytes: Uint8Array, what: string): NpyArray {
  const fail = (why: string) => new Error(`${what}: ${why}`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail("not a .npy array (no \\x93NUMPY magic)");
  const major = bytes[6];
  const hl = major === 1 ? bytes[8] | (bytes[9] << 8) : new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (major < 1 || major > 3 || start + hl > bytes.length) throw fail(`unsupported .npy version ${major} or truncated header`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + hl));
  const m = /'descr':\s*'([^']+)'.*'fortran_order':\s*(True|False).*'shape':\s*\(([^)]*)\)/s.exec(header);
  if (!m) throw fail(`unreadable .npy header ${JSON.stringify(header.trim())}`);
  if (m[2] === "True") throw fail("Fortran-ordered arrays are not read (save with C order)");
  const shape = m[3].split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw fail(`bad shape (${m[3]})`);
  const n = size(shape), body = bytes.slice(start + hl), descr = m[1];
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
