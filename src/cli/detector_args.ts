// Option checks shared by the detector commands (fit, score, influence): each failure is one line
// naming the option, the value and what is allowed, raised before any work starts.
import type { BackendChoice } from "../kernels/select.ts";

export function positiveInt(v: string, opt: string, min = 1): number {
  const x = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(x) || x < min) throw new Error(`${opt} ${JSON.stringify(v)}: expected an integer >= ${min}`);
  return x;
}

export function positiveNumber(v: string, opt: string): number {
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x)) throw new Error(`${opt} ${JSON.stringify(v)}: expected a positive number`);
  return x;
}

export function checkBackend(v: string): BackendChoice {
  if (v !== "auto" && v !== "cpu" && v !== "webgpu") throw new Error(`--backend ${JSON.stringify(v)}: expected auto, cpu or webgpu`);
  return v;
}

export function readableFile(path: string, opt: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    throw new Error(`${opt} ${path}: cannot read (${(e as Error).message.split(":")[0]})`);
  }
}

/** The output's extension is one of `exts`, its folder exists, and it is not a shipped file under weights/. */
export function checkOutPath(path: string, opt: string, exts: string[]): string {
  const ext = exts.find((e) => path.toLowerCase().endsWith(e));
  if (!ext) throw new Error(`${opt} ${path}: expected a file name ending in ${exts.join(" or ")}`);
  if (/(^|\/)weights\//.test(path)) throw new Error(`${opt} ${path}: refusing to write under weights/ (shipped files)`);
  const dir = path.includes("/") ? path.replace(/\/[^/]*$/, "") || "/" : ".";
  try {
    if (!Deno.statSync(dir).isDirectory) throw new Error("not a folder");
  } catch {
    throw new Error(`${opt} ${path}: folder ${dir} does not exist`);
  }
  return ext;
}

/** Writes through a temporary file and a rename, so a crash never leaves half a file. */
export function atomicWrite(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${Deno.pid}`;
  if (typeof data === "string") Deno.writeTextFileSync(tmp, data);
  else Deno.writeFileSync(tmp, data);
  Deno.renameSync(tmp, path);
}
