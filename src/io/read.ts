// Reading an input file whose path came from the user or from another file (a detector's
// model.path): it must be a regular file of at most a stated size, checked before a byte is read,
// so /dev/zero is refused instead of growing the process to gigabytes and a FIFO instead of
// blocking forever; every error names the file. Text files are UTF-8, a leading byte-order mark
// accepted (and dropped: JSON.parse would otherwise fail on an invisible character).

/** The largest model file (weights or training checkpoint) a command reads: 1 GiB (50M parameters with both Adam moments is 600 MB). */
export const MODEL_FILE_MAX_BYTES = 2 ** 30;
/** The largest detector file: 64 MiB (a full covariance of a few hundred features is a few MB). */
export const DETECTOR_FILE_MAX_BYTES = 64 * 2 ** 20;

const size = (n: number) => n >= 2 ** 30 ? `${+(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${+(n / 2 ** 20).toFixed(2)} MiB` : `${n} bytes`;

function kindOf(st: Deno.FileInfo): string {
  if (st.isDirectory) return "a folder";
  if (st.isFifo) return "a pipe (FIFO)";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  if (st.isSocket) return "a socket";
  return "not a regular file";
}

/**
 * The bytes of a regular file of at most maxBytes (links followed), or an error `<what> <path>: why`.
 * `head` sees the first bytes (up to headBytes) and the size before the rest is read, to refuse a
 * large file of the wrong kind without reading it all.
 */
export function readRegularFile(path: string, maxBytes: number, what: string, o: { headBytes?: number; head?: (first: Uint8Array, size: number) => void } = {}): Uint8Array<ArrayBuffer> {
  const fail = (why: string) => new Error(`${what} ${path}: ${why}`);
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    throw fail(e instanceof Deno.errors.NotFound ? "cannot read (no such file)" : `cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  if (!st.isFile) throw fail(`${kindOf(st)}, not a regular file (allowed: a regular file of at most ${size(maxBytes)})`);
  if (st.size > maxBytes) throw fail(`${st.size} bytes, more than the ${size(maxBytes)} a ${what} file may have`);
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(path, { read: true });
  } catch (e) {
    throw fail(`cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  try {
    const fst = f.statSync(); // the file opened, which a rename may have swapped since the check
    if (!fst.isFile || fst.size > maxBytes) throw fail(`changed while being opened (now ${fst.isFile ? size(fst.size) : kindOf(fst)})`);
    const out = new Uint8Array(fst.size);
    let got = 0;
    const hb = Math.min(o.headBytes ?? 0, fst.size);
    while (got < hb) {
      const r = f.readSync(out.subarray(got, hb));
      if (r === null) break;
      got += r;
    }
    o.head?.(out.subarray(0, got), fst.size);
    while (got < out.length) {
      const r = f.readSync(out.subarray(got));
      if (r === null) break;
      got += r;
    }
    if (got < out.length) throw fail(`shrank while being read (${got} of ${fst.size} bytes)`);
    return out;
  } catch (e) {
    if ((e as Error).message.startsWith(`${what} ${path}:`)) throw e;
    throw fail(`cannot read (${(e as Error).message.split("\n")[0]})`);
  } finally {
    f.close();
  }
}

/** Drops a leading UTF-8 byte-order mark (U+FEFF), which some editors write and JSON.parse refuses. */
export const withoutBom = (text: string) => text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;

/** A regular UTF-8 text file of at most maxBytes (see readRegularFile), a leading byte-order mark dropped. */
export function readTextFile(path: string, maxBytes: number, what: string): string {
  const bytes = readRegularFile(path, maxBytes, what);
  try {
    return withoutBom(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new Error(`${what} ${path}: not UTF-8 text`);
  }
}
