// `npm run build`: ESM bundles for browsers with `deno bundle --platform=browser --minify`:
//   dist/fimscope.js  the library (mod.ts): import { ... } from "./dist/fimscope.js"
//   dist/web.js       the page's script (web/app.ts, the library included)
// Prints each file's size, raw and gzipped. dist/ is git-ignored; `npm run web` builds it first.
//   deno run -A scripts/web/build.ts [--out dist]
const root = new URL("../../", import.meta.url).pathname;

export interface Built {
  file: string;
  bytes: number;
  gzip: number;
}

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(s).arrayBuffer()).byteLength;
}

/**
 * One ES module for browsers from `entry` (a path from the repository root) at `file`, written
 * atomically: refused where it still imports a node: module the browser lacks.
 */
export async function bundle(entry: string, file: string, o: { minify?: boolean } = {}): Promise<void> {
  const tmp = `${file}.tmp.js`;
  const r = await new Deno.Command(Deno.execPath(), {
    // browser_imports.json: deno.json's import map plus browser stand-ins for the node: modules
    // the library's Deno-only file helpers import at load time.
    args: ["bundle", "--quiet", "--platform=browser", ...(o.minify ? ["--minify"] : []), "--import-map", `${root}scripts/web/browser_imports.json`, `${root}${entry}`, "-o", tmp],
    cwd: root, stdout: "piped", stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`build: deno bundle ${entry} failed:\n${new TextDecoder().decode(r.stderr)}`);
  const node = Deno.readTextFileSync(tmp).match(/from\s*"(node:[\w/]+)"/);
  if (node) {
    Deno.removeSync(tmp);
    throw new Error(`build: ${entry} imports ${node[1]}, which browsers do not have (map it in scripts/web/browser_imports.json)`);
  }
  Deno.renameSync(tmp, file);
}

export async function build(out = `${root}dist`): Promise<Built[]> {
  Deno.mkdirSync(out, { recursive: true });
  const built: Built[] = [];
  for (const [entry, name] of [["mod.ts", "fimscope.js"], ["web/app.ts", "web.js"]]) {
    const file = `${out}/${name}`;
    await bundle(entry, file, { minify: true });
    const bytes = Deno.readFileSync(file);
    built.push({ file: file.replace(root, ""), bytes: bytes.length, gzip: await gzipSize(bytes) });
  }
  return built;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--out");
  const out = i >= 0 ? Deno.args[i + 1] : undefined;
  if (i >= 0 && !out) {
    console.error("error: --out needs a directory");
    Deno.exit(1);
  }
  for (const b of await build(out)) console.log(`${b.file}: ${(b.bytes / 1024).toFixed(1)} KiB (${(b.gzip / 1024).toFixed(1)} KiB gzipped)`);
}
