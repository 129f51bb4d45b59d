// Ships a novelty record: a copy of the run's record, gzip-compressed, with its header's weights
// path pointed at the shipped weights (the rows are not touched; the copy is read back and checked).
//   deno run -A scripts/dynamics/ship_record.ts RECORD.csv OUT.csv.gz SHIPPED_WEIGHTS.safetensors
import { writeFileAtomic } from "../../src/io/atomic.ts";
import { noveltyText, readNoveltyRecord } from "../../src/models/novelty.ts";

const [src, dst, weights] = Deno.args;
if (!src || !dst?.endsWith(".gz") || !weights) throw new Error("usage: ship_record.ts RECORD.csv OUT.csv.gz SHIPPED_WEIGHTS.safetensors");
const rec = await readNoveltyRecord(src);
rec.header.weights = weights;
const gz = new Uint8Array(await new Response(new Blob([new TextEncoder().encode(noveltyText(rec))]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
writeFileAtomic(dst, gz);
const back = await readNoveltyRecord(dst);
if (back.rows.length !== rec.rows.length || noveltyText(back) !== noveltyText(rec)) throw new Error(`${dst}: the copy does not read back as written`);
console.log(`${dst}: ${rec.rows.length} rows, ${gz.length} bytes; weights ${weights}`);
