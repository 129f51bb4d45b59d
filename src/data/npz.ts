// NumPy .npz archives (a zip of .npy entries, stored or deflated, as np.savez / np.savez_compressed
// write them) and the ImageNet32 validation set in that form (val_data.npz: data.npy uint8
// [50000, 3072], each row R(1024) G(1024) B(1024), each plane a row-major 32x32 image, so planar
// already; labels.npy, integer [50000]). The zip's central directory is read from the end of the
// file (zip64 records too), then the data entry is streamed into the output (fflate inflates it),
// its CRC-32 checked. ImageNet32's labels run 1..1000, more than a byte holds: the count is checked,
// the set carries no labels (255).
import { zipSync } from "fflate";
import { type ImageSet, makeSet } from "./dataset.ts";
import { readNpyHeader, UINT8_DESCRS } from "./npy.ts";
import { crc32, type Fail, FileSource, InflateSource, SpanSource } from "./stream.ts";

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const u64 = (b: Uint8Array, o: number) => u32(b, o) + u32(b, o + 4) * 2 ** 32;

/** The entries of a zip file, from its central directory. */
export function zipEntries(src: FileSource, fail: Fail): ZipEntry[] {
  if (src.size < 22) throw fail(`${src.size} bytes, too short for a zip archive (truncated or not an .npz)`);
  const tailLen = Math.min(src.size, 22 + 65535);
  src.seek(src.size - tailLen);
  const tail = src.read(tailLen);
  let e = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50 && i + 22 + u16(tail, i + 20) === tailLen) {
      e = i;
      break;
    }
  }
  if (e < 0) {
    const magic = tail.length === src.size ? tail.subarray(0, 4) : null;
    throw fail(magic && u32(magic, 0) === 0x04034b50 ? "no end-of-central-directory record (truncated zip)" : "not a zip archive (no end-of-central-directory record; truncated, or not an .npz)");
  }
  let count = u16(tail, e + 10), cdSize = u32(tail, e + 12), cdOffset = u32(tail, e + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = e - 20;
    if (loc < 0 || u32(tail, loc) !== 0x07064b50) throw fail("zip64 sizes without a zip64 locator (corrupt archive)");
    const at = u64(tail, loc + 8);
    src.seek(at);
    const rec = src.read(56);
    if (u32(rec, 0) !== 0x06064b50) throw fail("zip64 end-of-central-directory record missing (corrupt archive)");
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (cdOffset + cdSize > src.size) throw fail(`central directory at ${cdOffset} (+${cdSize} bytes) lies past the end of the ${src.size}-byte file (truncated)`);
  if (cdSize > 1 << 24) throw fail(`central directory of ${cdSize} bytes is implausibly large`);
  src.seek(cdOffset);
  const cd = src.read(cdSize);
  const out: ZipEntry[] = [];
  let o = 0;
  for (let k = 0; k < count; k++) {
    if (o + 46 > cd.length || u32(cd, o) !== 0x02014b50) throw fail(`central directory entry ${k} is malformed`);
    const nameLen = u16(cd, o + 28), extraLen = u16(cd, o + 30), commentLen = u16(cd, o + 32);
    const entry: ZipEntry = {
      name: new TextDecoder().decode(cd.subarray(o + 46, o + 46 + nameLen)),
      flags: u16(cd, o + 8), method: u16(cd, o + 10), crc: u32(cd, o + 16),
      compressedSize: u32(cd, o + 20), size: u32(cd, o + 24), localOffset: u32(cd, o + 42),
    };
    // zip64 extra field: the 64-bit values of whichever fields read 0xffffffff, in this order.
    let x = o + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = u16(cd, x), len = u16(cd, x + 2);
      if (id === 0x0001) {
        let p = x + 4;
        for (const f of ["size", "compressedSize", "localOffset"] as const) {
          if (entry[f] === 0xffffffff) {
            entry[f] = u64(cd, p);
            p += 8;
          }
        }
      }
      x += 4 + len;
    }
    out.push(entry);
    o += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Positions `src` at an entry's data and returns it as a source of its uncompressed bytes (CRC-32 running). */
export function openEntry(src: FileSource, entry: ZipEntry, fail: Fail): SpanSource | InflateSource {
  const what = `zip entry ${entry.name}`;
  if (entry.flags & 1) throw fail(`${what} is encrypted`);
  if (entry.method !== 0 && entry.method !== 8) throw fail(`${what} uses compression method ${entry.method} (allowed: 0 stored, 8 deflate)`);
  if (entry.localOffset + 30 > src.size) throw fail(`${what}: its local header lies past the end of the file (truncated)`);
  src.seek(entry.localOffset);
  const lh = src.read(30);
  if (u32(lh, 0) !== 0x04034b50) throw fail(`${what}: no local header at offset ${entry.localOffset} (corrupt archive)`);
  src.skip(u16(lh, 26) + u16(lh, 28));
  if (src.pos + entry.compressedSize > src.size) throw fail(`truncated: ${what} needs ${entry.compressedSize} bytes from offset ${src.pos}, the file has ${src.size - src.pos}`);
  const sum = { fn: crc32, init: 0 };
  return entry.method === 0 ? new SpanSource(src, entry.compressedSize, fail, what, sum) : new InflateSource(src, entry.compressedSize, fail, what, sum);
}

/** Checks that an entry was read to its end and matches its size and CRC-32. */
export function closeEntry(s: SpanSource | InflateSource, entry: ZipEntry, fail: Fail): void {
  if (s instanceof InflateSource) s.finish();
  else if (!s.atEnd()) throw fail(`zip entry ${entry.name} holds ${entry.size - s.pos} bytes after its .npy data`);
  if (s.pos !== entry.size) throw fail(`zip entry ${entry.name} decompresses to ${s.pos} bytes, its directory says ${entry.size}`);
  if (s.sum !== entry.crc) throw fail(`zip entry ${entry.name} fails its CRC-32 check (corrupt)`);
}

const IMAGE_BYTES = 3 * 32 * 32;
const INT_DESCRS = /^[<>|=]?[iu][1248]$/;

/** ImageNet32 (downsampled ImageNet, 32x32) as an .npz: data.npy uint8 [N, 3072], labels.npy integers [N]. */
export function readImagenet32(path: string, name = path): { set: ImageSet; ids: string[] } {
  const fail: Fail = (why) => new Error(`ImageNet32 file ${path}: ${why}`);
  const src = new FileSource(path, fail, "ImageNet32");
  try {
    const entries = zipEntries(src, fail);
    const find = (n: string) => entries.find((x) => x.name === n);
    const dataEntry = find("data.npy"), labelEntry = find("labels.npy");
    if (!dataEntry) throw fail(`no data.npy in the archive (it holds ${entries.map((x) => x.name).join(", ") || "nothing"}); expected ImageNet32's data and labels`);
    let s: SpanSource | InflateSource = openEntry(src, dataEntry, fail);
    const npyFail: Fail = (why) => fail(`data.npy: ${why}`);
    const h = readNpyHeader(s, npyFail);
    if (!UINT8_DESCRS.includes(h.descr)) throw npyFail(`dtype '${h.descr}', expected uint8 ('|u1'): pixels 0..255`);
    if (h.fortran) throw npyFail("fortran_order is True, expected False (C order rows)");
    if (h.shape.length !== 2 || h.shape[1] !== IMAGE_BYTES) throw npyFail(`shape (${h.shape.join(", ")}), expected (N, ${IMAGE_BYTES}): rows of 32x32 R, G and B planes`);
    const n = h.shape[0];
    if (n === 0) throw npyFail("holds no images (shape (0, 3072))");
    if (h.dataOffset + n * IMAGE_BYTES !== dataEntry.size) throw npyFail(`shape (${n}, ${IMAGE_BYTES}) needs ${n * IMAGE_BYTES} data bytes, the entry has ${dataEntry.size - h.dataOffset} (truncated or malformed)`);
    const images = new Uint8Array(n * IMAGE_BYTES);
    let o = 0;
    s.pipe(images.length, (piece) => {
      images.set(piece, o);
      o += piece.length;
    });
    closeEntry(s, dataEntry, fail);
    if (labelEntry) {
      const lf: Fail = (why) => fail(`labels.npy: ${why}`);
      s = openEntry(src, labelEntry, lf);
      const lh = readNpyHeader(s, lf);
      if (!INT_DESCRS.test(lh.descr)) throw lf(`dtype '${lh.descr}', expected integers`);
      if (lh.shape.length !== 1 || lh.shape[0] !== n) throw lf(`shape (${lh.shape.join(", ")}), expected (${n},): one label per image of data.npy`);
      s.skip(labelEntry.size - lh.dataOffset);
      closeEntry(s, labelEntry, fail);
    }
    return { set: makeSet(name, images, new Uint8Array(n).fill(255), 3, 32, 32), ids: Array.from({ length: n }, (_, i) => `${path}:${i}`) };
  } finally {
    src.close();
  }
}

/** An .npz holding the given .npy files, each stored (`deflate` false, as np.savez) or deflated (as np.savez_compressed). */
export function encodeNpz(files: Record<string, Uint8Array>, deflate: boolean): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, [v, { level: deflate ? 6 : 0 }]])));
}

