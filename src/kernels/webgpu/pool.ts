// GPU buffer pool: released buffers return to a free list by size class and are reused,
// so a training loop allocates nothing after its first step.
/// <reference types="@webgpu/types" />

export interface PoolStats {
  created: number;
  createdBytes: number;
  inUse: number;
  free: number;
  freeBytes: number;
}

/** Round up to a size class: multiples of 256 B, then 8 classes per power of two (<= 12.5% waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(4, bytes);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();
  #size = new WeakMap<GPUBuffer, number>();
  #stats = { created: 0, createdBytes: 0, inUse: 0 };

  constructor(private device: GPUDevice, private usage: number) {}

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    let buf = list?.pop();
    if (!buf) {
      buf = this.device.createBuffer({ size, usage: this.usage });
      this.#size.set(buf, size);
      this.#stats.created++;
      this.#stats.createdBytes += size;
    }
    this.#stats.inUse++;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = this.#size.get(buf);
    if (size === undefined) throw new Error("BufferPool.release: buffer not from this pool");
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(buf);
    this.#stats.inUse--;
  }

  stats(): PoolStats {
    let free = 0, freeBytes = 0;
    for (const [size, l] of this.#free) {
      free += l.length;
      freeBytes += size * l.length;
    }
    return { ...this.#stats, free, freeBytes };
  }
}
