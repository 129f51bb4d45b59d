// Patch matrices kept from a conv forward for its weight gradient (conv_gemm.ts): the im2col of
// an input is built once instead of twice. Inputs are immutable storages, so a matrix stays valid
// for as long as its input lives; it is handed over when the weight gradient takes it and freed
// with the input otherwise. Kept matrices live from the forward to the backward, so their total
// is capped (past the cap the weight gradient unrolls again): large models trade this speed-up
// for memory.
import type { GpuStorage } from "./runtime.ts";

/** Default cap on the bytes of kept matrices at a time. */
export const KEPT_PATCHES_MAX_BYTES = 256 << 20;

export class KeptPatches {
  #byInput = new Map<GpuStorage, { key: string; col: GpuStorage }>();
  /** f32 elements held now. */
  #floats = 0;
  /** Cap on the bytes held at a time (tests lower it). */
  maxBytes = KEPT_PATCHES_MAX_BYTES;

  /** `free` returns a matrix's buffer to the pool. */
  constructor(private readonly free: (s: GpuStorage) => void) {}

  /** Keep col, the patch matrix of x for the conv described by key; false (the caller frees it) if x has one or the cap is reached. */
  keep(x: GpuStorage, key: string, col: GpuStorage): boolean {
    if (this.#byInput.has(x) || 4 * (this.#floats + col.n) > this.maxBytes) return false;
    this.#byInput.set(x, { key, col });
    this.#floats += col.n;
    return true;
  }

  /** The kept matrix of x for this conv, handed over (the caller frees it), or null. */
  take(x: GpuStorage, key: string): GpuStorage | null {
    const k = this.#byInput.get(x);
    if (!k || k.key !== key) return null;
    this.#drop(x, k.col);
    return k.col;
  }

  /** x is being freed: so is its kept matrix. */
  inputFreed(x: GpuStorage): void {
    const k = this.#byInput.get(x);
    if (!k) return;
    this.#drop(x, k.col);
    this.free(k.col);
  }

  #drop(x: GpuStorage, col: GpuStorage): void {
    this.#byInput.delete(x);
    this.#floats -= col.n;
  }

  /** Inputs holding a kept matrix now. */
  get count(): number {
    return this.#byInput.size;
  }

  /** f32 elements held by kept matrices now. */
  get floats(): number {
    return this.#floats;
  }
}
