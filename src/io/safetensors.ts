// Checkpoints in the safetensors format: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then raw
// little-endian data. float32 ("F32") only, which is what the engine trains in.
import * as T from "../autograd/index.ts";

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    if (t.name in header) throw new Error(`safetensors: duplicate tensor name '${t.name}'`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: tensor '${t.name}' has ${t.data.length} values for shape [${t.shape}]`);
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [off, off + 4 * n] };
    off += 4 * n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const t of tensors) {
    const bytes = new Uint8Array(t.data.length * 4);
    const tv = new DataView(bytes.buffer);
    for (let i = 0; i < t.data.length; i++) tv.setFloat32(i * 4, t.data[i], true);
    out.set(bytes, p);
    p += bytes.length;
  }
  return out;
}

export interface Decoded {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** Parses and validates a safetensors file; every error names the file and, where it applies, the tensor. */
export function decodeSafetensors(bytes: Uint8Array, file: string): Decoded {
  const fail = (why: string) => new Error(`checkpoint ${file}: ${why}`);
  if (bytes.length < 8) throw fail(`truncated (${bytes.length} bytes, no header length)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen > bytes.length - 8) throw fail(`header length ${hlen} exceeds file size ${bytes.length} (truncated or not safetensors)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw fail(`header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + hlen, dataLen = bytes.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  let covered = 0;
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (e.dtype !== "F32") throw fail(`tensor '${name}' has dtype ${e.dtype}, only F32 is supported`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw fail(`tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    const [b, en] = e.data_offsets ?? [NaN, NaN];
    const n = e.shape.reduce((a, c) => a * c, 1);
    if (!(Number.isInteger(b) && Number.isInteger(en) && b >= 0 && en >= b)) throw fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(e.data_offsets)}`);
    if (en - b !== 4 * n) throw fail(`tensor '${name}' shape [${e.shape}] needs ${4 * n} bytes but data_offsets span ${en - b}`);
    if (en > dataLen) throw fail(`tensor '${name}' ends at byte ${en} of a ${dataLen}-byte data section (file truncated)`);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = dv.getFloat32(dataStart + b + 4 * i, true);
    tensors.set(name, { name, shape: e.shape, data });
    covered += en - b;
  }
  if (covered !== dataLen) throw fail(`data section has ${dataLen} bytes but the tensors cover ${covered} (truncated, padded or overlapping)`);
  return { tensors, metadata };
}

export async function saveTensors(path: string, named: [string, T.Tensor][], metadata: Record<string, string> = {}): Promise<void> {
  const list: NamedTensor[] = [];
  for (const [name, t] of named) list.push({ name, shape: [...t.shape], data: Float32Array.from(await t.data()) });
  const tmp = `${path}.tmp`;
  Deno.writeFileSync(tmp, encodeSafetensors(list, metadata));
  Deno.renameSync(tmp, path); // a crash mid-write never leaves a half checkpoint
}

export function readCheckpoint(path: string): Decoded {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw new Error(`checkpoint ${path}: cannot read (${(e as Error).message})`);
  }
  return decodeSafetensors(bytes, path);
}

/**
 * Loads tensors into existing parameters by name. Every parameter must be present with the same
 * shape (names in `optional` may be missing); extra tensors are an error unless allowExtra.
 */
export function loadInto(d: Decoded, file: string, params: [string, T.Tensor][], opts: { allowExtra?: boolean } = {}): void {
  for (const [name, p] of params) {
    const t = d.tensors.get(name);
    if (!t) throw new Error(`checkpoint ${file}: tensor '${name}' missing (the model expects shape [${p.shape}])`);
    if (t.shape.join() !== p.shape.join()) throw new Error(`checkpoint ${file}: tensor '${name}' has shape [${t.shape}], the model expects [${p.shape}]`);
  }
  if (!opts.allowExtra) {
    const known = new Set(params.map(([n]) => n));
    const extra = [...d.tensors.keys()].filter((n) => !known.has(n));
    if (extra.length) throw new Error(`checkpoint ${file}: tensors not in the model: ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ", ..." : ""}`);
  }
  for (const [name, p] of params) {
    const src = T.tensor(d.tensors.get(name)!.data, p.shape, { backend: p.backend });
    p.assign(src);
    src.dispose();
  }
}
