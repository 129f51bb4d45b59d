// Features as a file, so a set too large for one machine splits into shards that run anywhere and
// merge exactly. `npm run features` writes, `fit`, `score` and `ood` read.
//
// .npz (numpy.load(f) reads it; no pickle): features float32 [N, L] (log f_l, -inf where a norm
// is exactly 0), layers [L] (parameter tensor names), sizes int64 [L] (their parameter counts),
// nll float64 [N] (the objective's value per group, its unit), ids [N] (a file name, `file:index`
// or `set-split:index`; a group of B: its first and last member joined by ".."), and meta, a JSON
// string: the model's path and SHA-256, kind, image shape, objective, measure, group size B, seed,
// the set, its size and the shard.
// .csv (pandas.read_csv(f, comment="#")): the meta as one leading "# fimscope-features {json}"
// line, then a header `id,nll,<layer>...` and a row per group; numbers to 9 significant digits
// (float32 exact), so a CSV reads back to the same float32 features.
//
// Shards: `--shard k/n` takes a contiguous run of the set's batches (the pass size in inputs,
// src/ood/loop.ts passSize), batches [floor(k nb / n), floor((k + 1) nb / n)) of nb; each batch is
// then computed exactly as in one run, so the merged shards (k = 0..n-1, concatenated) hold the
// one run's rows bit for bit, and a fit on them equals the one run's.
import { decodeNpz, encodeNpz } from "../io/npz.ts";
import type { Measure } from "../models/objective.ts";
import type { SetFeatures } from "./loop.ts";

export const FEATURES_FORMAT = "fimscope-features";
export const FEATURES_VERSION = 1;

export interface FeatureMeta {
  format: typeof FEATURES_FORMAT;
  version: typeof FEATURES_VERSION;
  model: { path: string; sha256: string; kind: string; image: [number, number, number] };
  objective: string;
  measure: Measure;
  groupSize: number;
  seed: number;
  /** The set as named on the command line, its inputs, and the pass size the shards were cut at. */
  set: { spec: string; n: number; batch: number };
  /** This file's shard: k of n, input positions [from, to) of the set. */
  shard: { k: number; n: number; from: number; to: number };
}

export interface FeatureFile {
  meta: FeatureMeta;
  layers: string[];
  sizes: number[];
  /** Rows of log f_l (float32 values, as computed). */
  logf: Float64Array[];
  nll: Float64Array;
  ids: string[];
}

/** Input positions [from, to) of shard k of n over a set of n inputs cut in passes of `per` inputs (whole groups). */
export function shardRange(nInputs: number, per: number, k: number, n: number): [number, number] {
  const nb = Math.ceil(nInputs / per);
  return [Math.min(nInputs, Math.floor((k * nb) / n) * per), Math.min(nInputs, Math.floor(((k + 1) * nb) / n) * per)];
}

/** A feature file from a set's features and ids (one per input; grouped ids are joined). */
export function featureFile(meta: FeatureMeta, f: SetFeatures, sizes: number[], inputIds: string[]): FeatureFile {
  const B = meta.groupSize;
  const ids = f.logf.map((_, g) => (B === 1 ? inputIds[g] : `${inputIds[g * B]}..${inputIds[g * B + B - 1]}`));
  return { meta, layers: [...f.names], sizes: [...sizes], logf: f.logf, nll: Float64Array.from(f.nll), ids };
}

export function encodeFeatureNpz(f: FeatureFile): Uint8Array {
  const N = f.logf.length, L = f.layers.length, feats = new Float32Array(N * L);
  f.logf.forEach((r, i) => feats.set(r, i * L));
  return encodeNpz({
    features: { dtype: "f4", shape: [N, L], data: feats },
    layers: { dtype: "U", shape: [L], data: f.layers },
    sizes: { dtype: "i8", shape: [L], data: BigInt64Array.from(f.sizes, BigInt) },
    nll: { dtype: "f8", shape: [N], data: f.nll },
    ids: { dtype: "U", shape: [N], data: f.ids },
    meta: { dtype: "U", shape: [], data: [JSON.stringify(f.meta)] },
  });
}

const csvCell = (s: string) => (/[",\n#]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
/** The shortest decimal that reads back to the same float32 (at most 9 significant digits). */
function num9(v: number): string {
  if (!Number.isFinite(v)) return v === -Infinity ? "-inf" : v === Infinity ? "inf" : "nan";
  const f = Math.fround(v);
  for (let p = 1; p < 9; p++) {
    const t = f.toPrecision(p);
    if (Math.fround(Number(t)) === f) return String(Number(t));
  }
  return String(Number(f.toPrecision(9)));
}

export function encodeFeatureCsv(f: FeatureFile): string {
  const lines = [`# ${FEATURES_FORMAT} ${JSON.stringify({ ...f.meta, sizes: f.sizes })}`, ["id", "nll", ...f.layers].map(csvCell).join(",")];
  f.logf.forEach((r, i) => lines.push([csvCell(f.ids[i]), String(f.nll[i]), ...Array.from(r, num9)].join(",")));
  return lines.join("\n") + "\n";
}

/** Splits one CSV line (quotes as the writer makes them). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = "", q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ",") out.push(cur), (cur = "");
    else cur += c;
  }
  out.push(cur);
  return out;
}

function checkMeta(m: unknown, file: string): FeatureMeta {
  const fail = (why: string) => new Error(`features file ${file}: ${why}`);
  const x = m as FeatureMeta;
  if (!x || typeof x !== "object" || x.format !== FEATURES_FORMAT) throw fail(`not a fimscope features file (no "format": "${FEATURES_FORMAT}" in its meta)`);
  if (x.version !== FEATURES_VERSION) throw fail(`it is version ${JSON.stringify(x.version)}; this fimscope reads version ${FEATURES_VERSION}`);
  const mo = x.model;
  if (!mo || typeof mo.path !== "string" || !/^[0-9a-f]{64}$/.test(mo.sha256 ?? "") || typeof mo.kind !== "string" || !Array.isArray(mo.image) || mo.image.length !== 3) throw fail("meta.model must hold path, sha256, kind and image");
  if (typeof x.objective !== "string" || !x.measure || typeof x.measure.short !== "string") throw fail("meta must hold objective and measure");
  if (!(Number.isInteger(x.groupSize) && x.groupSize >= 1) || !(Number.isInteger(x.seed) && x.seed >= 0)) throw fail("meta.groupSize and meta.seed must be a positive and a non-negative integer");
  const s = x.set, sh = x.shard;
  if (!s || typeof s.spec !== "string" || !(Number.isInteger(s.n) && s.n >= 0) || !(Number.isInteger(s.batch) && s.batch >= 1)) throw fail("meta.set must hold spec, n and batch");
  if (!sh || !(Number.isInteger(sh.n) && sh.n >= 1) || !(Number.isInteger(sh.k) && sh.k >= 0 && sh.k < sh.n) || !(Number.isInteger(sh.from) && Number.isInteger(sh.to) && 0 <= sh.from && sh.from <= sh.to && sh.to <= s.n)) {
    throw fail("meta.shard must be { k < n, from <= to <= set.n }");
  }
  return x;
}

function checkBody(f: FeatureFile, file: string): FeatureFile {
  const fail = (why: string) => new Error(`features file ${file}: ${why}`);
  const L = f.layers.length, N = f.logf.length, B = f.meta.groupSize;
  if (!L || new Set(f.layers).size !== L) throw fail("layers must be a non-empty list of distinct names");
  if (f.sizes.length !== L || !f.sizes.every((s) => Number.isInteger(s) && s >= 1)) throw fail(`sizes must be ${L} positive integers`);
  if (f.nll.length !== N || f.ids.length !== N) throw fail(`${N} feature rows, ${f.nll.length} nll values and ${f.ids.length} ids (one each per group)`);
  const want = Math.floor((f.meta.shard.to - f.meta.shard.from) / B);
  if (N !== want) throw fail(`${N} rows, but its shard [${f.meta.shard.from}, ${f.meta.shard.to}) holds ${want} groups of B = ${B}`);
  f.logf.forEach((r, i) => {
    if (r.length !== L) throw fail(`row ${i} has ${r.length} features, expected ${L}`);
    const bad = r.findIndex((v) => Number.isNaN(v) || v === Infinity);
    if (bad >= 0) throw fail(`row ${i} (${f.ids[i]}) has log f = ${r[bad]} for ${f.layers[bad]}`);
    if (!Number.isFinite(f.nll[i])) throw fail(`row ${i} (${f.ids[i]}) has nll ${f.nll[i]}`);
  });
  return f;
}

/** Reads a features file (.npz or .csv, by extension), checked for meaning. */
export function parseFeatureFile(bytes: Uint8Array, file: string): FeatureFile {
  if (/\.npz$/i.test(file)) {
    const a = decodeNpz(bytes, `features file ${file}`);
    for (const k of ["features", "layers", "sizes", "nll", "ids", "meta"]) if (!a[k]) throw new Error(`features file ${file}: no '${k}' array (a fimscope features file holds features, layers, sizes, nll, ids, meta)`);
    if (a.meta.dtype !== "U" || a.layers.dtype !== "U" || a.ids.dtype !== "U" || a.features.dtype !== "f4" || a.nll.dtype !== "f8" || a.sizes.dtype !== "i8") {
      throw new Error(`features file ${file}: array types must be features float32, nll float64, sizes int64, layers/ids/meta strings`);
    }
    let meta: unknown;
    try {
      meta = JSON.parse(a.meta.data[0]);
    } catch {
      throw new Error(`features file ${file}: meta is not JSON`);
    }
    const [N, L] = a.features.shape;
    if (a.features.shape.length !== 2 || L !== a.layers.data.length) throw new Error(`features file ${file}: features has shape [${a.features.shape}], expected [N, ${a.layers.data.length}]`);
    const d = a.features.data as Float32Array;
    return checkBody({
      meta: checkMeta(meta, file), layers: a.layers.data as string[], sizes: Array.from(a.sizes.data as BigInt64Array, Number),
      logf: Array.from({ length: N }, (_, i) => Float64Array.from(d.subarray(i * L, (i + 1) * L))), nll: Float64Array.from(a.nll.data as Float64Array), ids: a.ids.data as string[],
    }, file);
  }
  if (/\.csv$/i.test(file)) {
    const text = new TextDecoder().decode(bytes), lines = text.split("\n").filter((l) => l !== "");
    const head = `# ${FEATURES_FORMAT} `;
    if (!lines[0]?.startsWith(head)) throw new Error(`features file ${file}: no leading "${head}{...}" line (not a fimscope features CSV)`);
    let meta: FeatureMeta & { sizes?: number[] };
    try {
      meta = JSON.parse(lines[0].slice(head.length));
    } catch {
      throw new Error(`features file ${file}: its meta line is not JSON`);
    }
    const cols = csvFields(lines[1] ?? "");
    if (cols[0] !== "id" || cols[1] !== "nll") throw new Error(`features file ${file}: the header must start with id,nll`);
    const layers = cols.slice(2), L = layers.length;
    const parse = (s: string, i: number) => {
      const v = s === "-inf" ? -Infinity : s === "inf" ? Infinity : s === "nan" ? NaN : s.trim() === "" ? NaN : Number(s);
      if (Number.isNaN(v) && s !== "nan") throw new Error(`features file ${file}: line ${i + 3}: '${s}' is not a number`);
      return v;
    };
    const rows = lines.slice(2).map((l, i) => {
      const f = csvFields(l);
      if (f.length !== L + 2) throw new Error(`features file ${file}: line ${i + 3} has ${f.length} fields, expected ${L + 2}`);
      return { id: f[0], nll: parse(f[1], i), logf: Float64Array.from(f.slice(2), (s) => Math.fround(parse(s, i))) };
    });
    const { sizes, ...m } = meta;
    return checkBody({ meta: checkMeta(m, file), layers, sizes: sizes ?? [], logf: rows.map((r) => r.logf), nll: Float64Array.from(rows, (r) => r.nll), ids: rows.map((r) => r.id) }, file);
  }
  throw new Error(`features file ${file}: expected a name ending in .npz or .csv`);
}

/**
 * Merges shards into the one run's file: every shard k of n once, all else equal (model, objective,
 * group size, seed, set, pass size, layers), concatenated in k order. One file is returned as it is.
 */
export function mergeFeatureFiles(files: { file: string; f: FeatureFile }[]): FeatureFile {
  if (files.length === 1 && files[0].f.meta.shard.n === 1) return files[0].f;
  const sorted = [...files].sort((a, b) => a.f.meta.shard.k - b.f.meta.shard.k);
  const first = sorted[0].f.meta, n = first.shard.n;
  const same = (a: FeatureMeta, b: FeatureMeta) =>
    a.model.sha256 === b.model.sha256 && a.objective === b.objective && a.groupSize === b.groupSize && a.seed === b.seed &&
    a.set.spec === b.set.spec && a.set.n === b.set.n && a.set.batch === b.set.batch && a.shard.n === b.shard.n;
  for (const { file, f } of sorted) {
    if (!same(first, f.meta)) throw new Error(`features file ${file}: not a shard of the same run as ${sorted[0].file} (model, objective, B, seed, set, pass size and shard count must all agree)`);
    if (f.layers.join() !== sorted[0].f.layers.join()) throw new Error(`features file ${file}: its layers differ from ${sorted[0].file}'s`);
  }
  const ks = sorted.map((x) => x.f.meta.shard.k);
  if (sorted.length !== n || ks.some((k, i) => k !== i)) throw new Error(`features files: shards ${ks.join(", ")} of ${n} given; a merge needs every shard 0..${n - 1} once`);
  sorted.forEach(({ file, f }, i) => {
    if (i && f.meta.shard.from !== sorted[i - 1].f.meta.shard.to) throw new Error(`features file ${file}: its inputs start at ${f.meta.shard.from}, but shard ${i - 1} ends at ${sorted[i - 1].f.meta.shard.to}`);
  });
  return {
    meta: { ...first, shard: { k: 0, n: 1, from: 0, to: sorted[n - 1].f.meta.shard.to } },
    layers: sorted[0].f.layers, sizes: sorted[0].f.sizes,
    logf: sorted.flatMap((x) => x.f.logf), nll: Float64Array.from(sorted.flatMap((x) => Array.from(x.f.nll))), ids: sorted.flatMap((x) => x.f.ids),
  };
}

/** A features file's rows as SetFeatures (what the scores and evaluations read). */
export function asSetFeatures(f: FeatureFile, name: string): SetFeatures {
  return { name, names: f.layers, logf: f.logf, nll: f.nll, measure: f.meta.measure, objective: f.meta.objective };
}

/** A features file by its name: .npz or .csv, not a reader's FORMAT:PATH (imagenet32:val_data.npz is images). */
export const isFeatureFile = (path: string) => /\.(npz|csv)$/i.test(path) && !/^[a-z][a-z0-9-]*:/.test(path);
