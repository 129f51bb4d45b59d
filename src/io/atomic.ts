// Every file the project writes goes through writeFileAtomic: the bytes go to a temp file in the
// same folder, are fsynced, and the temp file is renamed over the target (then the folder is
// fsynced), so a crash or a full disk never leaves a half-written file under the real name, and a
// failed write leaves no temp file behind. Also here: which files are "shipped" (never overwritten
// without --force).
// No node:path here: this module is part of the browser bundle (through safetensors.ts), where only
// the pure code runs; the file functions are called from Deno alone.

function dirname(p: string): string {
  const i = p.replace(/\/+$/, "").lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

function basename(p: string): string {
  return p.replace(/\/+$/, "").split("/").pop() ?? p;
}

/** An absolute, normalised path (no ".", ".." or repeated slashes), relative paths taken from the cwd. */
function resolve(p: string): string {
  const parts: string[] = [];
  for (const seg of (p.startsWith("/") ? p : `${Deno.cwd()}/${p}`).split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join("/")}`;
}

const PROJECT_ROOT = decodeURIComponent(new URL("../..", import.meta.url).pathname).replace(/\/+$/, "");

/** The real path (symbolic links in its folders resolved), so prefixes compare; p itself may not exist. */
function real(p: string): string {
  const abs = resolve(p);
  try {
    return Deno.realPathSync(abs);
  } catch {
    try {
      return `${Deno.realPathSync(dirname(abs))}/${basename(abs)}`.replace(/^\/\//, "/");
    } catch {
      return abs;
    }
  }
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const dir = dirname(path);
  const tmp = `${dir}/.${basename(path)}.${Deno.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  try {
    const f = Deno.openSync(tmp, { write: true, createNew: true });
    try {
      for (let off = 0; off < bytes.length;) off += f.writeSync(bytes.subarray(off));
      f.syncSync();
    } finally {
      f.close();
    }
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw new Error(`cannot write ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  try {
    const d = Deno.openSync(dir, { read: true });
    d.syncSync();
    d.close();
  } catch { /* some file systems cannot fsync a folder; the rename is still atomic */ }
}

/** Whether git (if installed) tracks this file in the checkout that contains it. */
function gitTracked(abs: string): boolean {
  try {
    const r = new Deno.Command("git", { args: ["-C", dirname(abs), "ls-files", "--error-unmatch", "--", basename(abs)], stdout: "null", stderr: "null" }).outputSync();
    return r.success;
  } catch {
    return false;
  }
}

/** Whether git tracks any file inside this folder. */
function gitTracksUnder(absDir: string): boolean {
  try {
    const r = new Deno.Command("git", { args: ["-C", absDir, "ls-files", "--", "."], stdout: "piped", stderr: "null" }).outputSync();
    return r.success && r.stdout.length > 0;
  } catch {
    return false;
  }
}

/** Shipped with the project: an existing file under weights/ other than weights/runs/ (where training writes by default). */
function shipped(abs: string): boolean {
  const w = `${real(PROJECT_ROOT)}/weights/`;
  if (!abs.startsWith(w) || abs.startsWith(`${w}runs/`)) return false;
  try {
    return Deno.statSync(abs).isFile;
  } catch {
    return false;
  }
}

/** Why a path must not be overwritten without --force, or null when it may be. */
export function protectedReason(path: string): string | null {
  const abs = real(path);
  let isDir = false;
  try {
    isDir = Deno.statSync(abs).isDirectory;
  } catch { /* does not exist yet */ }
  if (isDir) {
    const w = `${real(PROJECT_ROOT)}/weights`;
    const holdsWeights = `${w}/`.startsWith(`${abs}/`) || (abs.startsWith(`${w}/`) && !abs.startsWith(`${w}/runs`));
    if (holdsWeights) return `${path} holds the shipped weights`;
    if (gitTracksUnder(abs)) return `${path} holds files tracked by git`;
    return null;
  }
  if (shipped(abs)) return `${path} is a shipped file`;
  try {
    Deno.statSync(abs);
  } catch {
    return null; // a new file cannot be a tracked one
  }
  if (gitTracked(abs)) return `${path} is tracked by git`;
  return null;
}

export function isProtected(path: string): boolean {
  return protectedReason(path) !== null;
}

export { PROJECT_ROOT };

/**
 * Reads a file that must be a regular file of at most maxBytes (a device such as /dev/zero, a
 * FIFO or an oversized file is refused before reading; symbolic links are followed). `what` names it.
 */
export function readRegularFile(path: string, maxBytes: number, what = "file"): Uint8Array {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    throw new Error(`${what} ${path}: cannot be read (${(e as Error).message.split(/[:\n]/)[0]})`);
  }
  if (!st.isFile) throw new Error(`${what} ${path}: not a regular file (a folder, device or pipe)`);
  if (st.size > maxBytes) throw new Error(`${what} ${path}: ${st.size} bytes, more than the ${maxBytes}-byte limit for a ${what}`);
  return Deno.readFileSync(path);
}
