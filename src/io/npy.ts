// NumPy's .npy format: the magic \x93NUMPY, a version, a header (a Python dict literal with exactly
// 'descr', 'fortran_order' and 'shape'), then the data. The header parsed strictly and written as
// numpy writes it (version 1.0, the data 64-byte aligned). The image reader (src/data/npy.ts) and
// the features files (npz.ts) both use it.

export const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface NpyHeader {
  descr: string;
  fortran: boolean;
  shape: number[];
  /** Bytes before the data (magic, version, length, header). */
  dataOffset: number;
}

/** The dtypes that mean unsigned bytes. */
export const UINT8_DESCRS = ["|u1", "<u1", ">u1", "u1", "=u1", "|B", "B"];

/** Splits a dict literal's body at top-level commas (the shape tuple holds commas). */
function topLevelItems(body: string): string[] {
  const items: string[] = [];
  let depth = 0, start = 0, quote = "";
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (quote) {
      if (ch === quote) quote = "";
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      items.push(body.slice(start, i));
      start = i + 1;
    }
  }
  items.push(body.slice(start));
  return items.map((s) => s.trim()).filter((s) => s.length);
}

/** Parses the header dict; `fail` makes the error (naming the file). */
export function parseNpyHeaderText(text: string, fail: (why: string) => Error): Omit<NpyHeader, "dataOffset"> {
  const m = /^\s*\{(.*)\}\s*$/s.exec(text);
  if (!m) throw fail(`malformed header ${JSON.stringify(text.trim())} (not a dict)`);
  const seen = new Map<string, string>();
  for (const item of topLevelItems(m[1])) {
    const kv = /^(['"])([A-Za-z_]+)\1\s*:\s*(.*)$/s.exec(item);
    if (!kv) throw fail(`malformed header item ${JSON.stringify(item)}`);
    if (seen.has(kv[2])) throw fail(`header key '${kv[2]}' given twice`);
    seen.set(kv[2], kv[3].trim());
  }
  const extra = [...seen.keys()].filter((k) => !["descr", "fortran_order", "shape"].includes(k));
  if (extra.length) throw fail(`unknown header key '${extra[0]}' (allowed: descr, fortran_order, shape)`);
  const descrRaw = seen.get("descr"), fortranRaw = seen.get("fortran_order"), shapeRaw = seen.get("shape");
  if (descrRaw === undefined || fortranRaw === undefined || shapeRaw === undefined) {
    throw fail(`header ${JSON.stringify(text.trim())} lacks ${["descr", "fortran_order", "shape"].filter((k) => !seen.has(k)).join(", ")}`);
  }
  const descr = /^(['"])([^'"]*)\1$/.exec(descrRaw)?.[2];
  if (descr === undefined) throw fail(`descr ${descrRaw} is not a simple dtype string (structured dtypes are not supported)`);
  if (fortranRaw !== "True" && fortranRaw !== "False") throw fail(`fortran_order ${fortranRaw} is not True or False`);
  const sm = /^\((.*)\)$/s.exec(shapeRaw);
  if (!sm) throw fail(`shape ${shapeRaw} is not a tuple`);
  const parts = sm[1].trim() === "" ? [] : sm[1].split(",").map((s) => s.trim());
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop(); // (5,)
  const shape = parts.map((s) => {
    if (!/^\d+$/.test(s)) throw fail(`shape ${shapeRaw} holds '${s}', not a non-negative integer`);
    return Number(s);
  });
  return { descr, fortran: fortranRaw === "True", shape };
}

/** The header at the start of `bytes` (which must hold at least the whole header). */
export function parseNpyHeader(bytes: Uint8Array, fail: (why: string) => Error): NpyHeader {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) throw fail("not an .npy file (no \\x93NUMPY magic)");
  const major = bytes[6];
  if (major < 1 || major > 3) throw fail(`unsupported .npy version ${major}.${bytes[7]}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start) throw fail("truncated header");
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (start + hlen > bytes.length) throw fail(`truncated header (${hlen} header bytes announced, ${bytes.length - start} present)`);
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(start, start + hlen));
  return { ...parseNpyHeaderText(text, fail), dataOffset: start + hlen };
}

/** The header of an .npy (version 1.0) with the given dtype and shape. */
export function npyHeader(descr: string, shape: number[]): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length);
  out.set(NPY_MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  return out;
}

