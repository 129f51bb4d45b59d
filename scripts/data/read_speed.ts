// Read speed and peak memory of each dataset reader on the files of scripts/data/make_synthetic.ts:
// each spec is read by loadImageFiles in a fresh process; the child reports the seconds, the
// images, the bytes read from disk and the process's resident memory before the read and at its
// peak (VmHWM). Prints a markdown table (docs/datasets.md).
//
//   deno run -A scripts/data/read_speed.ts [--dir /tmp/fimscope-synthetic] [--runs 1]
import { loadImageFiles, specPath } from "../../src/data/image_files.ts";
import { int, parseOptions, text } from "../../src/io/options.ts";

/** Bytes of a file, or of every file below a folder. */
function bytesOf(path: string): number {
  const st = Deno.statSync(path);
  if (!st.isDirectory) return st.size;
  let n = 0;
  for (const e of Deno.readDirSync(path)) n += bytesOf(`${path}/${e.name}`);
  return n;
}

const statusKb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(Deno.readTextFileSync("/proc/self/status"))![1]);

if (Deno.args[0] === "--one") {
  const spec = Deno.args[1];
  const before = statusKb("VmRSS");
  const t0 = performance.now();
  const r = loadImageFiles(spec);
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ spec, n: r.set.n, s, inBytes: bytesOf(specPath(spec)), outBytes: r.set.images.length, rssBeforeMb: before / 1024, peakMb: statusKb("VmHWM") / 1024 }));
  Deno.exit(0);
}

const a = parseOptions("read_speed", { dir: text().default("/tmp/fimscope-synthetic"), runs: int({ min: 1, max: 10 }).default(1) });
const d = a.dir.replace(/\/+$/, "");
const specs = [`svhn:${d}/svhn.mat`, `svhn:${d}/svhn-z.mat`, `imagenet32:${d}/imagenet32.npz`, `imagenet32:${d}/imagenet32-z.npz`, `gtsrb:${d}/gtsrb`, `gtsrb-roi:${d}/gtsrb`, `celeba:${d}/celeba`];
console.log("| reader | images | s | images/s | MB/s read | peak RSS (MB) | RSS before (MB) | output (MB) |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const spec of specs) {
  const runs: { n: number; s: number; inBytes: number; outBytes: number; rssBeforeMb: number; peakMb: number }[] = [];
  for (let k = 0; k < a.runs; k++) {
    const r = new Deno.Command(Deno.execPath(), { args: ["run", "-A", new URL(import.meta.url).pathname, "--one", spec], stdout: "piped", stderr: "inherit" }).outputSync();
    runs.push(JSON.parse(new TextDecoder().decode(r.stdout)));
  }
  runs.sort((x, y) => x.s - y.s);
  const m = runs[Math.floor(runs.length / 2)];
  const label = spec.replace(d, "…");
  console.log(`| ${label} | ${m.n} | ${m.s.toFixed(2)} | ${(m.n / m.s).toFixed(0)} | ${(m.inBytes / 1e6 / m.s).toFixed(1)} | ${m.peakMb.toFixed(0)} | ${m.rssBeforeMb.toFixed(0)} | ${(m.outBytes / 1e6).toFixed(1)} |`);
  if (spec.startsWith("celeba:")) console.log(`|   extrapolated to 19,962 | 19962 | ${(m.s * 19962 / m.n).toFixed(1)} | | | | | ${(19962 * 3072 / 1e6).toFixed(1)} |`);
}
