// Every file the project writes goes through writeFileAtomic: the bytes go to a temp file in the
// same folder, are fsynced, and the temp file is renamed over the target (then the folder is
// fsynced), so a crash or a full disk never leaves a half-written file under the real name, and a
// failed write leaves no temp file behind. A report folder goes through writeDirAtomic: written
// whole beside the old one, then swapped in, so a killed run leaves the old report or the new one,
// never a mix. Temp files and folders that killed writers left are removed by the next write to
// that folder (only ours by name, and only when their writer is gone). Default output names are
// reserved by exclusive create (reserveNewName), so concurrent runs never pick the same one. Also
// here: which files are "shipped" (never overwritten without --force).
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

/**
 * The real path: the longest existing part of p with its symbolic links resolved, then the rest as
 * written (normalised), so paths that name one place compare equal and prefixes compare as folders.
 */
export function realPathOf(p: string): string {
  const abs = resolve(p);
  let head = abs, tail = "";
  for (;;) {
    try {
      const r = Deno.realPathSync(head);
      return `${r === "/" ? "" : r}${tail}` || "/";
    } catch {
      if (head === "/") return abs;
      tail = `/${basename(head)}${tail}`;
      head = dirname(head);
    }
  }
}
const real = realPathOf;

/** A step of a write at which FIMSCOPE_TEST_CRASH_AT=<step> ends the process, as a kill there would (for the tests). */
function crashPoint(step: string): void {
  if (Deno.env.get("FIMSCOPE_TEST_CRASH_AT") === step) Deno.exit(86);
}

const TMP_FILE = /^\.(.+)\.(\d+)\.([a-z0-9]{1,12})\.tmp$/;
const SWAP_DIR = /^\.(.+)\.fimscope-(new|old)\.(\d+)\.([a-z0-9]{1,12})$/;
const STALE_MS = 3600_000;

/** Whether a process with this id runs on this machine (unknown without /proc: then assumed running). */
function pidAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    try {
      Deno.statSync("/proc/self");
      return false;
    } catch {
      return true;
    }
  }
}

/** A temp entry its writer left: the writer is gone, or it is over an hour old (no write takes that long). */
function isStale(path: string, pid: number): boolean {
  let mtime: Date | null = null;
  try {
    mtime = Deno.lstatSync(path).mtime;
  } catch {
    return false;
  }
  return !pidAlive(pid) || (mtime !== null && Date.now() - mtime.getTime() > STALE_MS);
}

/**
 * Removes the temp files (`.<name>.<pid>.<random>.tmp`, as writeFileAtomic names them) that killed
 * writes left in dir: only regular files of that pattern whose writer is gone or that are over an
 * hour old, so a concurrent writer's temp file is never touched.
 */
export function cleanStaleTemps(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    const m = TMP_FILE.exec(e.name);
    if (!m || !e.isFile) continue;
    const p = `${dir}/${e.name}`;
    if (!isStale(p, Number(m[2]))) continue;
    try {
      Deno.removeSync(p);
    } catch { /* gone already, or not ours to remove */ }
  }
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const dir = dirname(path);
  const tmp = `${dir}/.${basename(path)}.${Deno.pid}.${randomTag()}.tmp`;
  try {
    const f = Deno.openSync(tmp, { write: true, createNew: true });
    try {
      for (let off = 0; off < bytes.length;) off += f.writeSync(bytes.subarray(off));
      f.syncSync();
    } finally {
      f.close();
    }
    crashPoint("file:written");
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw new Error(`cannot write ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  syncDir(dir);
  cleanStaleTemps(dir);
}

function randomTag(): string {
  return Math.random().toString(36).slice(2, 10).padEnd(8, "0");
}

function syncDir(dir: string): void {
  try {
    const d = Deno.openSync(dir, { read: true });
    d.syncSync();
    d.close();
  } catch { /* some file systems cannot fsync a folder; the rename is still atomic */ }
}

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Copies an entry into a new place: files as hard links (a copy across devices), folders recursively, links as links. */
function carry(from: string, to: string): void {
  const st = Deno.lstatSync(from);
  if (st.isSymlink) Deno.symlinkSync(Deno.readLinkSync(from), to);
  else if (st.isDirectory) {
    Deno.mkdirSync(to);
    for (const e of Deno.readDirSync(from)) carry(`${from}/${e.name}`, `${to}/${e.name}`);
  } else {
    try {
      Deno.linkSync(from, to);
    } catch {
      Deno.copyFileSync(from, to);
    }
  }
}

/**
 * Finishes what a killed writeDirAtomic left beside dir: when dir is missing and a dead writer's
 * old copy of it exists (killed between its two renames), the old copy is put back; then the dead
 * writers' leftover folders are removed. A live writer's folders are never touched.
 */
export function recoverDir(dir: string): void {
  const parent = dirname(dir), base = basename(dir);
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(parent)];
  } catch {
    return;
  }
  const left = entries.map((e) => ({ name: e.name, m: SWAP_DIR.exec(e.name) })).filter((e) => e.m && e.m[1] === base && isStale(`${parent}/${e.name}`, Number(e.m[3])));
  for (const e of left) {
    if (e.m![2] === "old" && !exists(dir)) {
      Deno.renameSync(`${parent}/${e.name}`, dir);
      syncDir(parent);
    }
  }
  for (const e of left) {
    try {
      Deno.removeSync(`${parent}/${e.name}`, { recursive: true });
    } catch { /* put back above, or gone */ }
  }
}

/** The file writeDirAtomic adds to every folder it writes (the names it wrote): marks the folder as one this project may replace. */
export const DIR_MANIFEST = ".fimscope-dir.json";
/** This project's folder manifests: DIR_MANIFEST, and .fimscope-report.json of reports written before it. */
export const isDirManifest = (name: string) => name === DIR_MANIFEST || name === ".fimscope-report.json";

/**
 * Replaces the folder dir by one holding `files` (plain names), as a whole: the new folder is
 * written and fsynced beside it (.<dir>.fimscope-new.<pid>.<random>), then the old one is renamed
 * away (.fimscope-old...), the new one renamed in, and the old one removed. A run killed at any
 * point leaves the old folder or the new one (after recoverDir, which every call runs first, when
 * it was killed between the two renames). Entries of the old folder for which `keep` holds (files
 * that are not the report's, e.g. the user's) are carried into the new one (hard links). Refused:
 * an existing folder that holds entries but no manifest (not a folder this project wrote; the
 * commands refuse it before any work with checkOutDir's `replaced`). DIR_MANIFEST is added.
 */
export function writeDirAtomic(dir: string, files: [string, Uint8Array | string][], o: { keep?: (name: string) => boolean } = {}): void {
  files = [...files.filter(([n]) => n !== DIR_MANIFEST), [DIR_MANIFEST, JSON.stringify({ files: files.map(([n]) => n).filter((n) => n !== DIR_MANIFEST) }) + "\n"]];
  const names = files.map(([n]) => n);
  const bad = names.find((n) => !/^[^/\\]+$/.test(n) || n === "." || n === "..");
  if (bad !== undefined) throw new Error(`writeDirAtomic: '${bad}' is not a plain file name`);
  if (new Set(names).size !== names.length) throw new Error(`writeDirAtomic: a file name is given twice`);
  dir = realPathOf(dir); // a folder reached through a link is replaced where it lies
  const parent = dirname(dir), base = basename(dir), tag = `${Deno.pid}.${randomTag()}`;
  Deno.mkdirSync(parent, { recursive: true });
  recoverDir(dir);
  if (exists(dir)) {
    const held = [...Deno.readDirSync(dir)].map((e) => e.name);
    if (held.length && !held.some(isDirManifest)) throw new Error(`cannot write ${dir}/: it holds ${held.length} entries but was not written by this project (no ${DIR_MANIFEST}); a folder it replaces as a whole must be new, empty or its own`);
  }
  const neu = `${parent}/.${base}.fimscope-new.${tag}`, olds: string[] = [];
  try {
    Deno.mkdirSync(neu);
    if (o.keep && exists(dir)) {
      for (const e of Deno.readDirSync(dir)) if (!names.includes(e.name) && o.keep(e.name)) carry(`${dir}/${e.name}`, `${neu}/${e.name}`);
    }
    for (const [name, data] of files) {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      const f = Deno.openSync(`${neu}/${name}`, { write: true, createNew: true });
      try {
        for (let off = 0; off < bytes.length;) off += f.writeSync(bytes.subarray(off));
        f.syncSync();
      } finally {
        f.close();
      }
    }
    syncDir(neu);
    crashPoint("dir:written");
    // The swap. If another writer swaps the same folder meanwhile, its folder is moved away too: the last writer wins.
    for (let attempt = 0; ; attempt++) {
      const old = `${parent}/.${base}.fimscope-old.${Deno.pid}.${randomTag()}`;
      try {
        Deno.renameSync(dir, old);
        olds.push(old);
        crashPoint("dir:old-moved");
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      try {
        Deno.renameSync(neu, dir);
        break;
      } catch (e) {
        if (attempt >= 20 || !exists(dir)) throw e;
      }
    }
    syncDir(parent);
    crashPoint("dir:new-in");
  } catch (e) {
    if (!exists(dir) && olds.length) Deno.renameSync(olds.pop()!, dir); // the old folder back
    for (const p of [neu, ...olds]) {
      try {
        Deno.removeSync(p, { recursive: true });
      } catch { /* never made, or swapped in */ }
    }
    throw new Error(`cannot write ${dir}/: ${(e as Error).message.split("\n")[0]}`);
  }
  for (const p of olds) Deno.removeSync(p, { recursive: true });
}

/**
 * Reserves a new file name: the first candidate(1), candidate(2), ... that this call creates
 * (exclusive create: an empty placeholder, replaced when the real file is written) and for which
 * `free` holds, so runs started at once never pick the same name. releaseReservation undoes it.
 */
export function reserveNewName(candidate: (k: number) => string, free: (path: string) => boolean = () => true): string {
  for (let k = 1; k < 1_000_000; k++) {
    const p = candidate(k);
    try {
      Deno.openSync(p, { write: true, createNew: true }).close();
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) continue;
      throw new Error(`cannot create ${p}: ${(e as Error).message.split("\n")[0]}`);
    }
    if (free(p)) return p;
    Deno.removeSync(p);
  }
  throw new Error(`no free name like ${candidate(1)}`);
}

/** Removes a reserved name's placeholder if nothing was written to it (a run that failed before its output). */
export function releaseReservation(path: string): void {
  try {
    if (Deno.lstatSync(path).size === 0) Deno.removeSync(path);
  } catch { /* already gone */ }
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
 * Reads a file whose path came from the user or from another file (a detector's model.path): a
 * regular file of at most maxBytes (links followed), checked before a byte is read, so /dev/zero
 * is refused instead of growing the process to gigabytes and a FIFO instead of blocking forever;
 * errors are one line, `<what> <path>: why`.
 * `head` sees the first bytes (up to headBytes) and the size before the rest is read, to refuse a
 * large file of the wrong kind without reading it all.
 */
export function readRegularFile(path: string, maxBytes: number, what = "file", o: { headBytes?: number; head?: (first: Uint8Array, size: number) => void } = {}): Uint8Array<ArrayBuffer> {
  const fail = (why: string) => new Error(`${what} ${path}: ${why}`);
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    throw fail(e instanceof Deno.errors.NotFound ? "cannot read (no such file)" : `cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  if (!st.isFile) throw fail(`${kindOf(st)}, not a regular file (allowed: a regular file of at most ${size(maxBytes)})`);
  if (st.size > maxBytes) throw fail(`${st.size} bytes, more than the ${size(maxBytes)} allowed for a ${what}`);
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
