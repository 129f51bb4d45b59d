// The wasm backend's strided copies (the contract's `strided`: slices, pads, flips, broadcasts,
// transposes, nearest upsampling): the spec reduced to a box of at most four dimensions that
// walk the input and the output with fixed strides, copied by one SIMD128 kernel (a JS loop per
// short row cost ~10 ns per element on a nearest upsampling, bench/README.md); the padding
// around the box filled first. Specs that need more dimensions go to js_ops.ts's loop.
import type { StridedSpec } from "../backend.ts";
import { KI, ranges, type Task, type WasmRuntime } from "./runtime.ts";

/** The box of a strided spec: input elements copied into the output, as up to `maxDims` dimensions. */
export interface StridedBox {
  /** Element offsets of the box's first element in the input and the output. */
  src: number;
  dst: number;
  /** Per dimension (outermost first): extent, input and output element strides. */
  ext: number[];
  sIn: number[];
  sOut: number[];
  /** Whether elements outside the box exist (they take the spec's padValue). */
  padded: boolean;
}

/** The output indices [a, b) of dimension d whose input index lies inside the input. */
function interval(spec: StridedSpec, d: number): [number, number] {
  const size = spec.inShape[spec.map[d]], s0 = spec.start[d], sp = spec.step[d], n = spec.outShape[d];
  let a = 0, b = n;
  if (sp > 0) { a = Math.max(0, Math.ceil(-s0 / sp)); b = Math.min(b, Math.ceil((size - s0) / sp)); }
  else if (sp < 0) { a = Math.max(0, Math.ceil((s0 - size + 1) / -sp)); b = Math.min(b, Math.floor(s0 / -sp) + 1); }
  else if (s0 < 0 || s0 >= size) b = 0;
  return [a, Math.max(a, b)];
}

/**
 * The spec as a box: the output indices whose input index lies inside the input, per dimension
 * an interval, with dimensions of one index dropped and neighbours that walk both sides linearly
 * merged. "empty" when no output element reads the input (all padding); null when the box needs
 * more than maxDims dimensions, or the spec maps two output dimensions to one input dimension.
 */
export function stridedBox(spec: StridedSpec, maxDims = 4): StridedBox | "empty" | null {
  const { inShape, outShape, map, start, step } = spec;
  // Two output dimensions on one input dimension: each in range alone does not keep their sum in
  // range (the reference then reads past the input), so such specs stay with the reference's loop.
  if (new Set(map).size !== map.length) return null;
  const r = outShape.length;
  const inSt = new Array<number>(inShape.length);
  for (let d = inShape.length - 1, s = 1; d >= 0; d--) { inSt[d] = s; s *= inShape[d]; }
  const box: StridedBox = { src: 0, dst: 0, ext: [], sIn: [], sOut: [], padded: false };
  let outSt = 1;
  const dims: { e: number; si: number; so: number; full: boolean }[] = [];
  for (let d = r - 1; d >= 0; d--) {
    const m = map[d], s0 = start[d], sp = step[d], n = outShape[d];
    const [a, b] = interval(spec, d);
    if (b <= a) return "empty";
    if (a > 0 || b < n) box.padded = true;
    box.src += (s0 + a * sp) * inSt[m];
    box.dst += a * outSt;
    dims.unshift({ e: b - a, si: sp * inSt[m], so: outSt, full: a === 0 && b === n });
    outSt *= n;
  }
  // merge from the inside out: an outer dimension folds into the one inside it when that one is
  // full and the outer's strides are the inner's times its extent
  const kept: typeof dims = [];
  for (let d = dims.length - 1; d >= 0; d--) {
    const o = dims[d];
    if (o.e === 1) continue;
    const inner = kept[0];
    if (inner && inner.full && o.si === inner.si * inner.e && o.so === inner.so * inner.e) {
      inner.e *= o.e;
      inner.full = o.full;
    } else kept.unshift({ ...o });
  }
  if (!kept.length) kept.push({ e: 1, si: 0, so: 1, full: true });
  if (kept.length > maxDims) return null;
  for (const k of kept) {
    box.ext.push(k.e);
    box.sIn.push(k.si);
    box.sOut.push(k.so);
  }
  return box;
}

/** Elements at least this many run on all threads. */
const PARALLEL_COPY = 1 << 16;

/** The strided copy in wasm, or null where the box needs more than four dimensions. */
export function strided(rt: WasmRuntime, x: Float32Array, spec: StridedSpec): Float32Array | null {
  const total = spec.outShape.reduce((p, q) => p * q, 1);
  const box = stridedBox(spec);
  const m = rt.mem;
  if (box === "empty") return m.fill(m.out(total), spec.padValue);
  if (!box) return null;
  return rt.op(() => {
    const out = m.out(total);
    const xo = m.addr(x), oo = m.dst(out);
    if (box.padded) m.fillAt(oo, total, spec.padValue);
    const pad = 4 - box.ext.length;
    const D = [...Array(pad).fill(1), ...box.ext];
    const si = [...Array(pad).fill(0), ...box.sIn].map((s) => s * 4), so = [...Array(pad).fill(0), ...box.sOut].map((s) => s * 4);
    const n = box.ext.reduce((p, q) => p * q, 1);
    // split the outermost dimension with more than one index among the threads
    const d = D.findIndex((e) => e > 1);
    const dd = d < 0 ? 0 : d;
    const parts = n >= PARALLEL_COPY ? rt.threads * 2 : 1;
    const tasks: Task[] = ranges(D[dd], parts).map(([lo, hi]) => {
      const Dd = [...D];
      Dd[dd] = hi - lo;
      return [KI.copy4d, xo + box.src * 4 + lo * si[dd], si[0], si[1], si[2], si[3], oo + box.dst * 4 + lo * so[dd], so[0], so[1], so[2], so[3], Dd[0], Dd[1], Dd[2], Dd[3]];
    });
    rt.pool.run(tasks, n >= PARALLEL_COPY);
    return m.land(out, oo);
  });
}
