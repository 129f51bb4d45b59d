// CIFAR-10 binary format (data_batch_*.bin, test_batch.bin): records of 1 label byte and
// 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each row-major 32x32).
import { type ImageSet, makeSet } from "./dataset.ts";
import { readBytes } from "./files.ts";

const RECORD = 1 + 3 * 32 * 32;

export function parseCifar10(bytes: Uint8Array, file: string): ImageSet {
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    throw new Error(`CIFAR-10 file ${file}: ${bytes.length} bytes is not a whole number of ${RECORD}-byte records (truncated or not CIFAR-10 binary)`);
  }
  const n = bytes.length / RECORD;
  const images = new Uint8Array(n * 3072), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const l = bytes[i * RECORD];
    if (l > 9) throw new Error(`CIFAR-10 file ${file}: record ${i} has label ${l}, expected 0..9`);
    labels[i] = l;
    images.set(bytes.subarray(i * RECORD + 1, (i + 1) * RECORD), i * 3072);
  }
  return makeSet(`cifar10:${file}`, images, labels, 3, 32, 32);
}

/** Reads and concatenates the CIFAR-10 binary files a user points to. */
export function loadCifar10(files: string[]): ImageSet {
  const sets = files.map((f) => parseCifar10(readBytes(f, "CIFAR-10"), f));
  const images = new Uint8Array(sets.reduce((s, x) => s + x.images.length, 0));
  const labels = new Uint8Array(sets.reduce((s, x) => s + x.n, 0));
  let io = 0, lo = 0;
  for (const s of sets) {
    images.set(s.images, io);
    labels.set(s.labels, lo);
    io += s.images.length;
    lo += s.n;
  }
  return makeSet("cifar10", images, labels, 3, 32, 32);
}
