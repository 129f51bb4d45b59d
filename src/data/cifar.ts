// CIFAR-10 binary format (data_batch_*.bin, test_batch.bin): records of 1 label byte and
// 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each row-major 32x32). Files are streamed:
// their sizes are checked first, the output allocated once, then each file read a chunk at a time.
import { type ImageSet, makeSet } from "./dataset.ts";
import { listFiles } from "./files.ts";
import { FileSource } from "./stream.ts";

const RECORD = 1 + 3 * 32 * 32;

const sizeError = (file: string, size: number) =>
  new Error(`CIFAR-10 file ${file}: ${size} bytes is not a whole number of ${RECORD}-byte records (truncated or not CIFAR-10 binary)`);
const labelError = (file: string, i: number, l: number) => new Error(`CIFAR-10 file ${file}: record ${i} has label ${l}, expected 0..9`);

/** Records held in memory (tests, small files). */
export function parseCifar10(bytes: Uint8Array, file: string): ImageSet {
  if (bytes.length === 0 || bytes.length % RECORD !== 0) throw sizeError(file, bytes.length);
  const n = bytes.length / RECORD;
  const images = new Uint8Array(n * 3072), labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const l = bytes[i * RECORD];
    if (l > 9) throw labelError(file, i, l);
    labels[i] = l;
    images.set(bytes.subarray(i * RECORD + 1, (i + 1) * RECORD), i * 3072);
  }
  return makeSet(`cifar10:${file}`, images, labels, 3, 32, 32);
}

/** Reads and concatenates the CIFAR-10 binary files a user points to (streamed; sizes checked before any pixel is read). */
export function loadCifar10(files: string[], name = "cifar10"): ImageSet {
  const sources = files.map((f) => new FileSource(f, (why) => new Error(`CIFAR-10 file ${f}: ${why}`), "CIFAR-10"));
  try {
    for (const s of sources) if (s.size === 0 || s.size % RECORD !== 0) throw sizeError(s.path, s.size);
    const n = sources.reduce((t, s) => t + s.size / RECORD, 0);
    const images = new Uint8Array(n * 3072), labels = new Uint8Array(n);
    let rec = 0;
    for (const s of sources) {
      const first = rec;
      let at = 0; // position inside the current record
      s.pipe(s.size, (piece) => {
        for (let i = 0; i < piece.length;) {
          if (at === 0) {
            const l = piece[i++];
            if (l > 9) throw labelError(s.path, rec - first, l);
            labels[rec] = l;
            at = 1;
            continue;
          }
          const k = Math.min(RECORD - at, piece.length - i);
          images.set(piece.subarray(i, i + k), rec * 3072 + at - 1);
          i += k;
          at += k;
          if (at === RECORD) {
            at = 0;
            rec++;
          }
        }
      });
    }
    return makeSet(name, images, labels, 3, 32, 32);
  } finally {
    for (const s of sources) s.close();
  }
}

/** A CIFAR-10 .bin file, or every *.bin of a folder in name order, with ids `file:index`. */
export function readCifar10(path: string, name = path): { set: ImageSet; ids: string[] } {
  let files = [path];
  let isDir = false;
  try {
    isDir = Deno.statSync(path).isDirectory;
  } catch { /* FileSource names the file */ }
  if (isDir) {
    const root = path.replace(/\/+$/, "");
    files = listFiles(root, (n) => /\.bin$/i.test(n)).map((f) => `${root}/${f}`);
    if (!files.length) throw new Error(`CIFAR-10 folder ${path}: holds no .bin files`);
  }
  const set = loadCifar10(files, name);
  const ids: string[] = [];
  for (const f of files) {
    const n = Deno.statSync(f).size / RECORD;
    for (let i = 0; i < n; i++) ids.push(`${f}:${i}`);
  }
  return { set, ids };
}
