// The wasm backend's strided copies (the contract's `strided`: slices, pads, flips, broadcasts,
// transposes, nearest upsampling): the spec reduced to a box of at most four dimensions that
// walk the input and the output with fixed strides, copied by one SIMD128 kernel (a JS loop per
// short row cost ~10 ns per element on a nearest upsampling, bench/README.md), once per index of
// the box's dimensions past four; the padding around the box filled first. Specs that map two
// output dimensions to one input dimension go to js_ops.ts's loop.
import type { StridedSpec } from "../backend.ts";
import { cut, KI, ranges, type Task, type WasmRuntime } from "./runtime.ts";

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

/**
 * The strided copy in wasm, or null where the box maps two output dimensions to one input
 * dimension (the reference's loop then). A box of at most four dimensions is one copy4d per
 * thread's range of its outermost dimension; one of more (a 6-d permutation such as the Glow's
 * squeeze, which a loop in js_ops.ts copied at ~5 ns an element) is one copy4d per index of its
 * dimensions past the inner four, in groups of indices for the threads.
 */
export function strided(rt: WasmRuntime, x: Float32Array, spec: StridedSpec): Float32Array | null {
  const total = spec.outShape.reduce((p, q) => p * q, 1);
  const box = stridedBox(spec, Infinity);
  const m = rt.mem;
  if (box === "empty") return m.fill(m.out(total), spec.padValue);
  if (!box) return null;
  return rt.op(() => {
    const out = m.out(total);
    const xo = m.addr(x), oo = m.dst(out);
    if (box.padded) m.fillAt(oo, total, spec.padValue);
    const lead = Math.max(0, box.ext.length - 4), pad = Math.max(0, 4 - box.ext.length);
    const D = [...Array(pad).fill(1), ...box.ext.slice(lead)];
    const si = [...Array(pad).fill(0), ...box.sIn.slice(lead)].map((s) => s * 4), so = [...Array(pad).fill(0), ...box.sOut.slice(lead)].map((s) => s * 4);
    const n = box.ext.reduce((p, q) => p * q, 1), parts = n >= PARALLEL_COPY ? rt.threads * 2 : 1;
    const src = xo + box.src * 4, dst = oo + box.dst * 4;
    if (lead > 0) {
      // the leading dimensions' indices in order (the last fastest), a copy4d each
      const count = box.ext.slice(0, lead).reduce((p, q) => p * q, 1);
      const jl = rt.list(), idx = new Array<number>(lead).fill(0);
      let s = src, d = dst;
      for (let q = 0, part = 1; q < count; q++) {
        for (; part < parts && q >= cut(part, count, parts); part++) jl.endJob();
        jl.task(KI.copy4d, s, si[0], si[1], si[2], si[3], d, so[0], so[1], so[2], so[3], D[0], D[1], D[2], D[3]);
        // next index: the last leading dimension steps, carrying into the ones before it
        for (let k = lead - 1; k >= 0; k--) {
          s += box.sIn[k] * 4;
          d += box.sOut[k] * 4;
          if (++idx[k] < box.ext[k]) break;
          s -= box.sIn[k] * 4 * box.ext[k];
          d -= box.sOut[k] * 4 * box.ext[k];
          idx[k] = 0;
        }
      }
      rt.pool.runList(jl, n >= PARALLEL_COPY);
      return m.land(out, oo);
    }
    // split the outermost dimension with more than one index among the threads
    const dd = Math.max(0, D.findIndex((e) => e > 1));
    const tasks: Task[] = ranges(D[dd], parts).map(([lo, hi]) => {
      const Dd = [...D];
      Dd[dd] = hi - lo;
      return [KI.copy4d, src + lo * si[dd], si[0], si[1], si[2], si[3], dst + lo * so[dd], so[0], so[1], so[2], so[3], Dd[0], Dd[1], Dd[2], Dd[3]];
    });
    rt.pool.run(tasks, n >= PARALLEL_COPY);
    return m.land(out, oo);
  });
}
