// Checkpoints in the safetensors format: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then raw
// little-endian data. float32 ("F32") only, which is what the engine trains in.
import * as T from "../autograd/index.ts";
import { readRegularFile, writeFileAtomic } from "./atomic.ts";

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

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Parses and validates a safetensors file; every error names the file and, where it applies, the
 * tensor. Refused: a header, entry or __metadata__ that is not an object, metadata values that are
 * not strings, data_offsets that are not exactly two integers, spans that overlap, leave gaps or do
 * not cover the data section exactly (sorted by start, they must run contiguously from 0 to its
 * end), and non-finite values.
 */
export function decodeSafetensors(bytes: Uint8Array, file: string): Decoded {
  const fail = (why: string) => new Error(`checkpoint ${file}: ${why}`);
  if (bytes.length < 8) throw fail(`truncated (${bytes.length} bytes, no header length)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(dv.getBigUint64(0, true));
  if (hlen > bytes.length - 8) throw fail(`header length ${hlen} exceeds file size ${bytes.length} (truncated or not safetensors)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) throw fail(`header is ${JSON.stringify(header)}, not a JSON object`);
  const dataStart = 8 + hlen, dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; shape: number[]; b: number; e: number }[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(v)) throw fail(`__metadata__ is ${JSON.stringify(v)}, not an object of strings`);
      for (const [k, mv] of Object.entries(v)) {
        if (typeof mv !== "string") throw fail(`__metadata__.${k} is ${JSON.stringify(mv)}, not a string`);
        metadata[k] = mv;
      }
      continue;
    }
    if (!isObject(v)) throw fail(`tensor '${name}' entry is ${JSON.stringify(v)}, not an object {dtype, shape, data_offsets}`);
    if (v.dtype !== "F32") throw fail(`tensor '${name}' has dtype ${JSON.stringify(v.dtype)}, only F32 is supported`);
    const shape = v.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    const off = v.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0) || off[1] < off[0]) {
      throw fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(off)} (allowed: two integers [begin, end], 0 <= begin <= end)`);
    }
    const n = (shape as number[]).reduce((a, c) => a * c, 1);
    if (off[1] - off[0] !== 4 * n) throw fail(`tensor '${name}' shape [${shape}] needs ${4 * n} bytes but data_offsets span ${off[1] - off[0]}`);
    if (off[1] > dataLen) throw fail(`tensor '${name}' ends at byte ${off[1]} of a ${dataLen}-byte data section (file truncated)`);
    entries.push({ name, shape: shape as number[], b: off[0], e: off[1] });
  }
  // Sorted by start, the spans must tile the data section: no overlap, no gap, nothing after.
  const sorted = [...entries].sort((x, y) => x.b - y.b || x.e - y.e);
  let at = 0, prev = "";
  for (const t of sorted) {
    if (t.b < at) throw fail(`tensor '${t.name}' (bytes ${t.b}-${t.e}) overlaps tensor '${prev}' (which ends at byte ${at})`);
    if (t.b > at) throw fail(`gap in the data section: bytes ${at}-${t.b} belong to no tensor (before tensor '${t.name}')`);
    at = t.e;
    prev = t.name;
  }
  if (at !== dataLen) throw fail(`data section has ${dataLen} bytes but the tensors cover ${at} (padded or truncated)`);
  const tensors = new Map<string, NamedTensor>();
  for (const t of entries) {
    const n = (t.e - t.b) / 4;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const x = dv.getFloat32(dataStart + t.b + 4 * i, true);
      if (!Number.isFinite(x)) throw fail(`tensor '${t.name}' holds a non-finite value (${x}) at index ${i}`);
      data[i] = x;
    }
    tensors.set(t.name, { name: t.name, shape: t.shape, data });
  }
  return { tensors, metadata };
}

export async function saveTensors(path: string, named: [string, T.Tensor][], metadata: Record<string, string> = {}): Promise<void> {
  const list: NamedTensor[] = [];
  for (const [name, t] of named) list.push({ name, shape: [...t.shape], data: Float32Array.from(await t.data()) });
  writeFileAtomic(path, encodeSafetensors(list, metadata)); // a crash mid-write never leaves a half checkpoint
}

/** The largest model or checkpoint file read (a model has at most 50M parameters: 200 MB, 600 MB with Adam's moments). */
export const MODEL_MAX_BYTES = 1024 * 2 ** 20;

/** A model file from disk: a regular file of at most MODEL_MAX_BYTES (readRegularFile), then decoded and checked. */
export function readCheckpoint(path: string): Decoded {
  const bytes = readRegularFile(path, MODEL_MAX_BYTES, "checkpoint", {
    // The header length first: a large file that is not safetensors is refused without reading it all.
    headBytes: 8,
    head: (first, size) => {
      if (first.length < 8) return;
      const hlen = Number(new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true));
      if (hlen > size - 8) throw new Error(`checkpoint ${path}: header length ${hlen} exceeds file size ${size} (truncated or not safetensors)`);
    },
  });
  return decodeSafetensors(bytes, path);
}

/**
 * Checks that the file holds exactly the expected tensors, each with its shape: a missing one, a
 * shape that differs and a tensor the model does not use are all refused (a tensor too many means
 * the file is not what its metadata says). The errors name the file and the tensor.
 */
export function checkTensors(d: Decoded, file: string, expected: [string, readonly number[]][]): void {
  checkPresent(d, file, expected);
  const known = new Set(expected.map(([n]) => n));
  const extra = [...d.tensors.keys()].filter((n) => !known.has(n));
  if (extra.length) throw new Error(`checkpoint ${file}: tensors the model does not use: ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? `, ... (${extra.length} in all)` : ""}`);
}

function checkPresent(d: Decoded, file: string, expected: [string, readonly number[]][]): void {
  for (const [name, shape] of expected) {
    const t = d.tensors.get(name);
    if (!t) throw new Error(`checkpoint ${file}: tensor '${name}' missing (the model expects shape [${shape}])`);
    if (t.shape.join() !== shape.join()) throw new Error(`checkpoint ${file}: tensor '${name}' has shape [${t.shape}], the model expects [${shape}]`);
  }
}

/**
 * Loads tensors into existing ones by name; each must be present with the same shape. What else
 * the file may hold is checkTensors' business (the caller checks the whole file first).
 */
export function loadInto(d: Decoded, file: string, targets: [string, T.Tensor][]): void {
  checkPresent(d, file, targets.map(([n, p]) => [n, p.shape]));
  for (const [name, p] of targets) {
    const src = T.tensor(d.tensors.get(name)!.data, p.shape, { backend: p.backend, dtype: p.dtype });
    p.assign(src);
    src.dispose();
  }
}
