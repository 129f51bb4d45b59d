// The IDX format of the MNIST files: big-endian magic (0x0000, type 0x08 = ubyte, rank), dims, bytes.

export interface Idx {
  dims: number[];
  data: Uint8Array;
}

/** Parses an unsigned-byte IDX file of the expected rank; errors name the file and what was expected. */
export function parseIdx(bytes: Uint8Array, file: string, rank: number): Idx {
  const fail = (why: string) => new Error(`IDX file ${file}: ${why}`);
  if (bytes.length < 4 + 4 * rank) throw fail(`truncated header (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(0);
  const expected = 0x0800 | rank;
  if (magic !== expected) {
    throw fail(`wrong magic number 0x${magic.toString(16).padStart(8, "0")}, expected 0x${expected.toString(16).padStart(8, "0")} (unsigned bytes, rank ${rank})`);
  }
  const dims = [...Array(rank).keys()].map((i) => dv.getUint32(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const off = 4 + 4 * rank;
  if (bytes.length !== off + n) throw fail(`expected ${off + n} bytes for dims [${dims}], found ${bytes.length} (truncated or malformed)`);
  return { dims, data: bytes.subarray(off) };
}
