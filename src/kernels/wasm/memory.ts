// The wasm backend's storage: blocks of one WebAssembly.Memory, pooled by size class (sizeClass:
// four per octave above 1 KiB, so a block wastes at most a fifth of itself; at the memory's
// maximum, pooled blocks are split or merged into other classes, #reclaim),
// handed out as Float32Array views (storages) or as scratch
// addresses that live for one op. A storage is a Float32Array or Float64Array: a view of this
// memory (what the backend writes, returned by release), or an ordinary array (float64 results,
// data made elsewhere, and every storage when the memory cannot be shared), copied in when a
// kernel needs it.
import type { Data } from "../backend.ts";

const PAGE = 65536;
/**
 * The size class of a request: powers of two up to 1 KiB, then 2^k x {1, 1.25, 1.5, 1.75} (all
 * multiples of 256 bytes, so blocks stay 256-aligned). A tensor of 2^k floats plus its slack takes
 * 1.25 x its size, where power-of-two classes took 2x.
 */
export function sizeClass(bytes: number): number {
  if (bytes <= 1024) return Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
  const p = 2 ** Math.floor(Math.log2(bytes));
  for (const m of [1, 1.25, 1.5, 1.75]) if (p * m >= bytes) return p * m;
  return 2 * p;
}
/** The largest size class of at most `bytes` (a multiple of 256, at least 256). */
function largestClassAtMost(bytes: number): number {
  const p = 2 ** Math.floor(Math.log2(bytes));
  if (p < 1024) return p;
  for (const m of [1.75, 1.5, 1.25]) if (p * m <= bytes) return p * m;
  return p;
}
/**
 * Bytes past every storage and scratch block, zeroed: a kernel reading a storage in place may run
 * up to a vector past its end, and what it reads there must be finite (a weight gradient
 * multiplies it by a zero).
 */
const SLACK = 64;
const NAN_BITS = 0x7fc00000;
const F32_BITS = new Float32Array(1), I32_OF = new Int32Array(F32_BITS.buffer);
/** A float's bits as an i32. */
export function f32Bits(v: number): number {
  F32_BITS[0] = v;
  return I32_OF[0];
}
/** fill32(address, words, bits): the module's fill kernel on this thread. */
export type Fill32 = (at: number, n: number, bits: number) => void;

export class WasmMemory {
  readonly mem: WebAssembly.Memory;
  /**
   * Whether storages live in the wasm memory. A shared memory grows in place (views made before
   * stay valid); a non-shared one detaches its old buffer when it grows, so there storages are
   * ordinary arrays and the kernels' results are copied out of scratch blocks (dst, land).
   */
  readonly resident: boolean;
  /** NaN in every fresh output and scratch block (the parity tests: an unwritten element shows). */
  poison = false;
  readonly #buffers = new WeakSet<ArrayBufferLike>();
  readonly #free = new Map<number, number[]>();
  /** Blocks handed out larger than their request's class (a pooled block reused whole), by address: their size. */
  readonly #larger = new Map<number, number>();
  #top = 1024; // offset 0 stays unused, so no storage sits at address 0
  #f32: Float32Array;
  /** Scratch blocks of the op in progress, freed by endOp. */
  #scratch: [number, number][] = [];

  readonly #fill32: Fill32;

  constructor(mem: WebAssembly.Memory, fill32: Fill32) {
    this.mem = mem;
    this.#fill32 = fill32;
    this.resident = typeof SharedArrayBuffer !== "undefined" && mem.buffer instanceof SharedArrayBuffer;
    this.#f32 = this.#view();
  }

  /** The whole memory as floats (re-made when the memory grows). */
  get f32(): Float32Array {
    return this.#f32;
  }
  /** Bytes of wasm memory handed out so far (pooled blocks are reused, so a steady loop keeps this flat). */
  get bytes(): number {
    return this.#top;
  }

  #view(): Float32Array {
    const buf = this.mem.buffer;
    this.#buffers.add(buf);
    return new Float32Array(buf);
  }
  /**
   * A block of at least `bytes` (its size class cls, 256-byte aligned); its address: a pooled one
   * of that class; else the smallest pooled one of a larger class up to twice cls (the reuse power-of-two classes gave, so a run whose sizes drift does not
   * grow the memory for each new class): whole while the memory can grow, and once it could not,
   * cls cut from its start and the rest pooled; else new memory at the top; at the maximum, #reclaim.
   */
  #alloc(bytes: number): number {
    const cls = sizeClass(bytes);
    const list = this.#free.get(cls);
    if (list?.length) return list.pop()!;
    const near = this.#smallestPooledAbove(cls, 2 * cls);
    if (near !== null) {
      const at = this.#free.get(near)!.pop()!;
      if (this.#atMax) this.#cutRest(at + cls, near - cls);
      else this.#larger.set(at, near);
      return at;
    }
    const need = Math.ceil((this.#top + cls) / PAGE) - this.mem.buffer.byteLength / PAGE;
    if (need > 0) {
      try {
        this.mem.grow(need);
      } catch (e) {
        // At the memory's maximum: serve the request from pooled blocks of other classes.
        this.#atMax = true;
        const at = this.#reclaim(cls);
        if (at !== null) return at;
        throw new Error(`wasm backend: out of memory: a block of ${cls} bytes does not fit in ${this.mem.buffer.byteLength} bytes (${this.#pooledBytes()} of them pooled in blocks too small even when merged): ${(e as Error).message}`);
      }
      this.#f32 = this.#view();
    }
    const at = this.#top;
    this.#top += cls;
    return at;
  }
  /** Whether the memory has failed to grow (its maximum reached): pooled blocks are then split to fit. */
  #atMax = false;
  /** The smallest class above cls (and at most `most`) with a pooled block, or null. */
  #smallestPooledAbove(cls: number, most = Infinity): number | null {
    let best: number | null = null;
    for (const [c, l] of this.#free) if (c > cls && c <= most && l.length && (best === null || c < best)) best = c;
    return best;
  }
  #pooledBytes(): number {
    let b = 0;
    for (const [cls, list] of this.#free) b += cls * list.length;
    return b;
  }
  /**
   * A block of class cls carved out of the pool when the memory cannot grow (a long run whose
   * block sizes shift, e.g. batched feature passes followed by one input's double backprop, holds
   * its memory in classes the new work does not ask for): first the smallest larger free block,
   * cls cut from its start and the rest returned to the pool in the largest classes it holds;
   * failing that, the free blocks merged into contiguous spans and re-cut into the largest
   * classes, then the same split. Null if nothing is large enough.
   */
  #reclaim(cls: number): number | null {
    const split = (): number | null => {
      const c = this.#smallestPooledAbove(cls);
      if (c === null) return null;
      const at = this.#free.get(c)!.pop()!;
      this.#cutRest(at + cls, c - cls);
      return at;
    };
    const at = split();
    if (at !== null) return at;
    const blocks: [number, number][] = [];
    for (const [c, list] of this.#free) for (const a of list) blocks.push([a, c]);
    blocks.sort((p, q) => p[0] - q[0]);
    this.#free.clear();
    const spans: [number, number][] = [];
    for (const [a, c] of blocks) {
      const last = spans[spans.length - 1];
      if (last && last[0] + last[1] === a) last[1] += c;
      else spans.push([a, c]);
    }
    for (const [a, len] of spans) {
      if (a + len === this.#top) { // a span at the top goes back to the unallocated memory
        this.#top = a;
        continue;
      }
      this.#cutRest(a, len);
    }
    if (this.#top + cls <= this.mem.buffer.byteLength) {
      const top = this.#top;
      this.#top += cls;
      return top;
    }
    return this.#free.get(cls)?.pop() ?? split();
  }
  /** Pools the free span [at, at + len) (len a multiple of 256) as blocks of the largest classes it holds. */
  #cutRest(at: number, len: number): void {
    while (len >= 256) {
      const c = largestClassAtMost(len);
      this.#freeBlock(at, c);
      at += c;
      len -= c;
    }
  }
  #freeBlock(at: number, bytes: number): void {
    // A block goes back at the size it has (a pooled block reused whole is larger than the request's class).
    const cls = this.#larger.get(at) ?? sizeClass(bytes);
    this.#larger.delete(at);
    let list = this.#free.get(cls);
    if (!list) this.#free.set(cls, list = []);
    list.push(at);
  }

  /** A scratch block of `floats` for the current op (freed by endOp); its address. */
  tmp(floats: number): number {
    const at = this.#alloc(floats * 4 + SLACK); // slack: vector loads may run past the last element
    this.#scratch.push([at, floats * 4 + SLACK]);
    if (this.poison) this.#fill32(at, floats, NAN_BITS);
    this.#fill32(at + floats * 4, SLACK / 4, 0);
    return at;
  }
  /** A zeroed scratch block of `floats`; its address. */
  tmpZero(floats: number): number {
    const at = this.tmp(floats);
    this.zero(at, floats);
    return at;
  }
  /** Frees the current op's scratch blocks. */
  endOp(): void {
    for (const [at, b] of this.#scratch) this.#freeBlock(at, b);
    this.#scratch = [];
  }
  /** Copies an int32 table into a scratch block; its address. */
  table(tab: Int32Array): number {
    const at = this.tmp(tab.length);
    new Int32Array(this.mem.buffer, at, tab.length).set(tab);
    return at;
  }
  zero(at: number, floats: number): void {
    this.#fill32(at, floats, 0);
  }
  /** Sets `floats` floats at address `at` to v. */
  fillAt(at: number, floats: number, v: number): void {
    this.#fill32(at, floats, f32Bits(v));
  }
  /** Sets every element of a storage to v (by the kernel where it lives in this memory). */
  fill(s: Float32Array, v: number): Float32Array {
    if (this.inMem(s)) this.#fill32(s.byteOffset, s.length, f32Bits(v));
    else s.fill(v);
    return s;
  }

  /** A new float32 storage of n elements (in wasm memory where it is resident; poisoned when `poison` is on). */
  out(n: number): Float32Array {
    if (!this.resident) {
      const v = new Float32Array(n);
      return this.poison ? v.fill(NaN) : v;
    }
    const at = this.#alloc(n * 4 + SLACK);
    this.#fill32(at + n * 4, SLACK / 4, 0);
    if (this.poison) this.#fill32(at, n, NAN_BITS);
    return new Float32Array(this.mem.buffer, at, n);
  }
  /** Returns a storage's block to the pool (storages that live elsewhere are left to the GC). */
  release(s: Data): void {
    if (this.inMem(s)) this.#freeBlock(s.byteOffset, s.byteLength + SLACK);
  }
  inMem(d: Data): boolean {
    return d instanceof Float32Array && this.#buffers.has(d.buffer);
  }
  /** The address of d's data in wasm memory (copied into a scratch block if it lives elsewhere). */
  addr(d: Data): number {
    if (this.inMem(d)) return d.byteOffset;
    const at = this.tmp(d.length);
    this.#f32.set(d, at / 4);
    return at;
  }
  /** Where a kernel writes the result `out`: out itself when it lives in wasm memory, else a scratch block (land copies it). */
  dst(out: Float32Array): number {
    return this.inMem(out) ? out.byteOffset : this.tmp(out.length);
  }
  /** The finished result: copied from its scratch block when out is an ordinary array. */
  land(out: Float32Array, at: number): Float32Array {
    if (!this.inMem(out)) {
      out.set(this.#f32.subarray(at / 4, at / 4 + out.length));
      return out;
    }
    // A view made before the memory grew still works (shared memory); re-made on the current buffer for uniformity.
    return out.buffer === this.mem.buffer ? out : new Float32Array(this.mem.buffer, out.byteOffset, out.length);
  }
}
