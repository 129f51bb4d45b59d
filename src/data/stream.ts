// Reading large data files in bounded memory: a file read in chunks, a DEFLATE stream over a span
// of another source (fflate's streaming Inflate), a bounded span of a source, and the checksums the
// formats carry (CRC-32 of zip entries, Adler-32 of zlib streams). A reader pulls what it needs; at
// most one chunk of the file (plus, when inflating, what one 64 KiB compressed piece expands to) is
// held besides the reader's output.
import { Inflate } from "fflate";

/** Bytes pulled in order from a file or a decompressed stream. Errors come from the reader's `fail`, so they name its file. */
export interface ByteSource {
  /** The next n bytes as a new array (for headers: n small). */
  read(n: number): Uint8Array;
  /** Hands the next n bytes to `fn` in pieces, in order. */
  pipe(n: number, fn: (piece: Uint8Array) => void): void;
  /** Up to `max` next bytes (at least 1 unless at the end), as a view valid until the next call on this source. */
  next(max: number): Uint8Array;
  skip(n: number): void;
  /** Bytes consumed so far. */
  readonly pos: number;
  atEnd(): boolean;
}

export type Fail = (why: string) => Error;

/** A running checksum over the bytes a source hands out. */
export interface Checksum {
  fn: (b: Uint8Array, prev: number) => number;
  init: number;
}

/** pipe, read and skip on top of a source's `next`. */
abstract class PullSource implements ByteSource {
  pos = 0;
  constructor(protected fail: Fail) {}
  abstract next(max: number): Uint8Array;
  abstract atEnd(): boolean;
  /** The error for running out with `left` bytes still wanted. */
  protected abstract short(left: number): Error;

  pipe(n: number, fn: (piece: Uint8Array) => void): void {
    let left = n;
    while (left > 0) {
      const v = this.next(left);
      if (!v.length) throw this.short(left);
      fn(v);
      left -= v.length;
    }
  }

  read(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    this.pipe(n, (v) => {
      out.set(v, o);
      o += v.length;
    });
    return out;
  }

  skip(n: number): void {
    this.pipe(n, () => {});
  }
}

/** How much of a file is read at a time. */
export const CHUNK = 1 << 20;

/** A file read CHUNK bytes at a time into one reused buffer (so the garbage collector has nothing to catch up with). */
export class FileSource extends PullSource {
  readonly size: number;
  #file: Deno.FsFile;
  #store = new Uint8Array(CHUNK);
  #buf = new Uint8Array(0);
  #off = 0;
  #filePos = 0;

  constructor(readonly path: string, fail: Fail, what: string) {
    super(fail);
    try {
      this.#file = Deno.openSync(path, { read: true });
      this.size = this.#file.statSync().size;
    } catch (e) {
      throw new Error(`data: cannot read ${what} file ${path}: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.#file.close();
  }

  /** Moves to an absolute file offset (drops the buffered chunk). */
  seek(at: number): void {
    if (at > this.size) throw this.fail(`truncated: offset ${at} is past the end of the ${this.size}-byte file`);
    this.#file.seekSync(at, Deno.SeekMode.Start);
    this.#filePos = this.pos = at;
    this.#buf = new Uint8Array(0);
    this.#off = 0;
  }

  #fill(): boolean {
    if (this.#off < this.#buf.length) return true;
    const want = Math.min(CHUNK, this.size - this.#filePos);
    if (want <= 0) return false;
    const b = this.#store.subarray(0, want);
    let got = 0;
    while (got < want) {
      const k = this.#file.readSync(b.subarray(got));
      if (k === null || k === 0) break;
      got += k;
    }
    if (got === 0) return false;
    this.#buf = b.subarray(0, got);
    this.#off = 0;
    this.#filePos += got;
    return true;
  }

  next(max: number): Uint8Array {
    if (!this.#fill()) return new Uint8Array(0);
    const k = Math.min(max, this.#buf.length - this.#off);
    const v = this.#buf.subarray(this.#off, this.#off + k);
    this.#off += k;
    this.pos += k;
    return v;
  }

  protected short(left: number): Error {
    return this.fail(`truncated: ${left} more bytes expected at offset ${this.pos} of the ${this.size}-byte file`);
  }

  override skip(n: number): void {
    if (this.pos + n > this.size) throw this.fail(`truncated: ${n} bytes to skip at offset ${this.pos}, but the file has ${this.size}`);
    if (n <= this.#buf.length - this.#off) {
      this.#off += n;
      this.pos += n;
    } else this.seek(this.pos + n);
  }

  atEnd(): boolean {
    return this.pos >= this.size;
  }
}

/**
 * The raw DEFLATE stream held in the next `compressed` bytes of `src`, decompressed as it is read.
 * With `checksum`, `sum` follows the decompressed bytes (the caller compares it with the format's).
 */
export class InflateSource extends PullSource {
  #left: number;
  #queue: Uint8Array[] = [];
  #head = 0;
  #done = false;
  #inflate: Inflate;
  sum: number;

  constructor(private src: ByteSource, compressed: number, fail: Fail, private what: string, private checksum?: Checksum) {
    super(fail);
    this.sum = checksum?.init ?? 0;
    this.#left = compressed;
    this.#inflate = new Inflate((chunk) => {
      if (chunk.length) this.#queue.push(chunk);
    });
  }

  #pull(): boolean {
    for (;;) {
      if (this.#queue.length && this.#head < this.#queue[0].length) return true;
      if (this.#queue.length) {
        this.#queue.shift();
        this.#head = 0;
        continue;
      }
      if (this.#done) return false;
      const piece = this.#left > 0 ? this.src.next(Math.min(this.#left, 1 << 16)) : new Uint8Array(0);
      if (this.#left > 0 && !piece.length) throw this.fail(`truncated: the ${this.what} ends inside its compressed data`);
      this.#left -= piece.length;
      const final = this.#left === 0;
      try {
        this.#inflate.push(piece, final); // fflate keeps only a copy of unread input, so `piece` may be reused after
      } catch (e) {
        throw this.fail(`the ${this.what} does not decompress (${(e as Error).message}; truncated or corrupt)`);
      }
      if (final) this.#done = true;
    }
  }

  next(max: number): Uint8Array {
    if (!this.#pull()) return new Uint8Array(0);
    const q = this.#queue[0];
    const k = Math.min(max, q.length - this.#head);
    const v = q.subarray(this.#head, this.#head + k);
    this.#head += k;
    this.pos += k;
    if (this.checksum) this.sum = this.checksum.fn(v, this.sum);
    return v;
  }

  protected short(left: number): Error {
    return this.fail(`truncated: the ${this.what} decompresses to ${this.pos} bytes, ${left} more expected`);
  }

  atEnd(): boolean {
    return !this.#pull();
  }

  /** Throws unless the stream has been read to its end. */
  finish(): void {
    if (!this.atEnd()) throw this.fail(`the ${this.what} holds data after its end (more than the ${this.pos} bytes read)`);
  }
}

/** The next `length` bytes of another source as a source of their own, with an optional running checksum. */
export class SpanSource extends PullSource {
  sum: number;

  constructor(private src: ByteSource, private length: number, fail: Fail, private what: string, private checksum?: Checksum) {
    super(fail);
    this.sum = checksum?.init ?? 0;
  }

  next(max: number): Uint8Array {
    const v = this.src.next(Math.min(max, this.length - this.pos));
    this.pos += v.length;
    if (this.checksum) this.sum = this.checksum.fn(v, this.sum);
    return v;
  }

  protected short(left: number): Error {
    return this.pos >= this.length
      ? this.fail(`the ${this.what} has ${this.length} bytes, ${left} too few`)
      : this.fail(`truncated: the ${this.what} ends early (${left} more bytes expected)`);
  }

  atEnd(): boolean {
    return this.pos >= this.length;
  }
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE, as zip uses) of `b`, continuing from `crc`. */
export function crc32(b: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Adler-32 (zlib's trailer) of `b`, continuing from `adler`. */
export function adler32(b: Uint8Array, adler = 1): number {
  let a = adler & 0xffff, s = adler >>> 16;
  for (let i = 0; i < b.length;) {
    const end = Math.min(b.length, i + 3800); // keeps the sums below 2^31 between reductions
    for (; i < end; i++) {
      a += b[i];
      s += a;
    }
    a %= 65521;
    s %= 65521;
  }
  return ((s << 16) | a) >>> 0;
}
