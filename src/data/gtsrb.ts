// The GTSRB final test set (German Traffic Sign Recognition Benchmark): a folder of 12,630 binary
// PPM images (P6, maxval 255) and GT-final_test.csv (semicolon-separated: Filename;Width;Height;
// Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId), or the unlabelled GT-final_test.test.csv without ClassId.
// Images in the CSV's order, each resized to 32x32 as the authors did: torchvision's
// Resize((32, 32)) on the ToTensor'd image (resize.ts: resizeTorchBilinear), the WHOLE image
// (data/datasets.py's GTSRBWrapper in SamD770/Generative-Models-Knowledge applies no crop).
// `roi: true` first crops to the CSV's region of interest, X2/Y2 inclusive (the sign itself, without
// the 10% border). Ids are the CSV's file names; labels its ClassId (0..42), or none.
import { type ImageSet, makeSet } from "./dataset.ts";
import { readBytes } from "./files.ts";
import { cropPlanar, planarRgb, resizeTorchBilinear } from "./resize.ts";

export const GTSRB_CSVS = ["GT-final_test.csv", "GT-final_test.test.csv"];
const COLUMNS = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"];
const SIDE = 32;
/** Larger PPMs are refused before their pixels are read (GTSRB's are at most about 250x250). */
export const PPM_MAX_SIDE = 4096;

export interface GtsrbRow {
  file: string;
  width: number;
  height: number;
  roi: [number, number, number, number];
  label: number;
}

/** Parses the GT CSV; every row is checked (a plain file name, integers, the region inside the image). */
export function parseGtsrbCsv(text: string, file: string): GtsrbRow[] {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === "") lines.pop();
  const head = (lines.shift() ?? "").split(";").map((s) => s.trim());
  const labelled = head.length === 8;
  if (head.join(";") !== COLUMNS.slice(0, head.length).join(";") || head.length < 7) {
    throw new Error(`GTSRB file ${file}: header '${head.join(";")}', expected '${COLUMNS.join(";")}' (or without ;ClassId)`);
  }
  const seen = new Set<string>();
  return lines.map((line, i) => {
    const f = line.split(";").map((s) => s.trim());
    const where = `GTSRB file ${file}: line ${i + 2}`;
    if (f.length !== head.length) throw new Error(`${where} has ${f.length} fields, expected ${head.length}`);
    if (!/^[^/\\]+\.ppm$/i.test(f[0])) throw new Error(`${where}: file name '${f[0]}' is not a .ppm in the same folder`);
    if (seen.has(f[0])) throw new Error(`${where}: ${f[0]} is listed twice`);
    seen.add(f[0]);
    const v = f.slice(1).map((s, k) => {
      if (!/^\d+$/.test(s)) throw new Error(`${where}: ${head[k + 1]} '${s}' is not a non-negative integer`);
      return Number(s);
    });
    const [width, height, x1, y1, x2, y2, label = 255] = v;
    if (width < 1 || height < 1 || width > PPM_MAX_SIDE || height > PPM_MAX_SIDE) throw new Error(`${where}: size ${width}x${height} (allowed: 1 to ${PPM_MAX_SIDE} per side)`);
    if (!(x1 <= x2 && x2 < width && y1 <= y2 && y2 < height)) throw new Error(`${where}: region (${x1}, ${y1})-(${x2}, ${y2}) (inclusive) is not inside the ${width}x${height} image`);
    if (labelled && label > 42) throw new Error(`${where}: ClassId ${label}, expected 0..42`);
    return { file: f[0], width, height, roi: [x1, y1, x2, y2], label };
  });
}

/** A binary PPM (P6, maxval 255) as planar RGB bytes [3, h, w]. */
export function decodePpm(bytes: Uint8Array, file: string): { h: number; w: number; data: Uint8Array } {
  const fail = (why: string) => new Error(`PPM file ${file}: ${why}`);
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (magic === "P3") throw fail("an ASCII PPM (P3); expected binary P6 with maxval 255");
  if (/^P[1245]$/.test(magic)) throw fail(`a ${magic} (bitmap or greymap) file; expected binary colour P6 with maxval 255`);
  if (magic !== "P6") throw fail("not a PPM (no P6 magic)");
  // Header: magic, then width, height, maxval separated by whitespace (# comments to end of line), one whitespace byte, raster.
  const vals: number[] = [];
  let i = 2;
  const ws = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
  while (vals.length < 3) {
    if (i >= bytes.length || i > 1024) throw fail("truncated or malformed header");
    const c = bytes[i];
    if (ws(c)) i++;
    else if (c === 0x23) while (i < bytes.length && bytes[i] !== 0x0a) i++;
    else {
      const start = i;
      while (i < bytes.length && bytes[i] >= 0x30 && bytes[i] <= 0x39) i++;
      if (i === start) throw fail(`malformed header (byte ${c} where a number belongs)`);
      vals.push(Number(new TextDecoder().decode(bytes.subarray(start, i))));
    }
  }
  if (i >= bytes.length || !ws(bytes[i])) throw fail("truncated or malformed header (no whitespace after maxval)");
  i++;
  const [w, h, maxval] = vals;
  if (maxval !== 255) throw fail(`maxval ${maxval}; expected 255 (8 bits per channel${maxval > 255 ? "; 16-bit PPMs are not supported" : ""})`);
  if (w < 1 || h < 1 || w > PPM_MAX_SIDE || h > PPM_MAX_SIDE) throw fail(`size ${w}x${h} (allowed: 1 to ${PPM_MAX_SIDE} per side)`);
  const need = w * h * 3;
  if (bytes.length - i < need) throw fail(`truncated: ${w}x${h} needs ${need} pixel bytes, found ${bytes.length - i}`);
  if (bytes.length - i > need) throw fail(`${bytes.length - i - need} bytes after the ${w}x${h} image (more than one image, or malformed)`);
  return { h, w, data: planarRgb(bytes.subarray(i), h, w, 3) };
}

/** Planar RGB [3, h, w] bytes as a binary PPM. */
export function encodePpm(planar: Uint8Array, h: number, w: number): Uint8Array {
  const head = new TextEncoder().encode(`P6\n${w} ${h}\n255\n`);
  const out = new Uint8Array(head.length + 3 * h * w);
  out.set(head);
  const n = h * w;
  for (let p = 0; p < n; p++) for (let k = 0; k < 3; k++) out[head.length + 3 * p + k] = planar[k * n + p];
  return out;
}

/** The folder's CSV (the labelled one if both are there). */
export function gtsrbCsv(dir: string): string {
  for (const name of GTSRB_CSVS) {
    const p = `${dir.replace(/\/+$/, "")}/${name}`;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* try the next */ }
  }
  throw new Error(`GTSRB folder ${dir}: holds neither ${GTSRB_CSVS.join(" nor ")} (expected the final test set's Images folder with its CSV)`);
}

/** The GTSRB final test set of a folder, 3x32x32 per image (whole image, or its region of interest with `roi`). */
export function readGtsrb(dir: string, roi: boolean, name = dir): { set: ImageSet; ids: string[] } {
  const csv = gtsrbCsv(dir);
  const rows = parseGtsrbCsv(new TextDecoder().decode(readBytes(csv, "GTSRB CSV")), csv);
  if (!rows.length) throw new Error(`GTSRB file ${csv}: lists no images`);
  const d = 3 * SIDE * SIDE, images = new Uint8Array(rows.length * d);
  rows.forEach((r, k) => {
    const path = `${dir.replace(/\/+$/, "")}/${r.file}`;
    const im = decodePpm(readBytes(path, "PPM"), path);
    if (im.w !== r.width || im.h !== r.height) throw new Error(`PPM file ${path}: ${im.w}x${im.h}, but ${csv} says ${r.width}x${r.height}`);
    const [x1, y1, x2, y2] = r.roi;
    const src = roi ? cropPlanar(im.data, 3, im.h, im.w, x1, y1, x2 - x1 + 1, y2 - y1 + 1) : im.data;
    const [sh, sw] = roi ? [y2 - y1 + 1, x2 - x1 + 1] : [im.h, im.w];
    images.set(resizeTorchBilinear(src, 3, sh, sw, SIDE, SIDE), k * d);
  });
  return { set: makeSet(name, images, Uint8Array.from(rows, (r) => r.label), 3, SIDE, SIDE), ids: rows.map((r) => r.file) };
}
