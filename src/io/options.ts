// Command-line options, validated before any work starts. Every CLI declares its options here and
// gets typed values or one error naming the option, the value given and what is allowed; the CLI's
// errors.ts prints it as one `error:` line and exits 1.
//
// How to declare a command's options (the whole contract):
//
//   import { choice, inFile, int, ints, outFile, parseOptions, usageError } from "../io/options.ts";
//   const a = parseOptions("mycmd", {
//     model: inFile().required(),                 // an existing, readable file
//     steps: int({ min: 1, max: 1e7 }).default(3000),
//     B: ints({ min: 1, max: 64 }).default([1, 5]), // "1,5": a comma list, no empty or repeated items
//     backend: BACKEND,                           // auto|cpu|webgpu|wasm, default auto
//     out: outFile(),                             // checked: parent writable, not a directory, not shipped
//     force: flag(),                              // --force: lets outFile/outDir replace shipped/tracked files
//   });
//   a.steps;          // number (a default or .required() makes it non-optional)
//   a.given.has("B"); // whether the user gave --B (resume logic needs this)
//   if (bad) throw usageError("mycmd", "--fit", a.fit, "at most 5000 (half of the test split)");
//   workStarts();     // (src/cli/errors.ts) call once every check is done, right before the first real work
//
// Outputs apart from inputs: every command that writes calls checkApart(cmd, outputs, inputs)
// once its output paths are known (before work): no output may be an input, lie inside an input
// folder or hold an input (after resolving links; hard links to one file count as the same file).
//
// Option types: int, num (min/gt/max), ints (comma list), choice, choices (comma list), text,
// jsonObject, flag, inFile, inFiles (comma list), nameOrPath (a built-in name or an existing path),
// outFile, outDir; BACKEND is the shared --backend. For values a command computes (a default output,
// a setting read from a checkpoint): checkOutput(cmd, label, path, force), or opt.parse(text, ctx).
// shippedDefault(rel) resolves a shipped file from the project root when it is not found from cwd.
//
// Syntax: `--name value` or `--name=value`; flags take no value (`--force`). A value may start with
// one dash (`--B -1` is refused by the range, not by the parser). Unknown options, positional
// arguments, an option given twice and a missing value are errors. Cross-option rules (e.g. --fit
// against the split size) are checked by the command right after parseOptions, still before work.
import { DIR_MANIFEST, isDirManifest, isProtected, PROJECT_ROOT, protectedReason, realPathOf } from "./atomic.ts";
import { BACKEND_CHOICES } from "../kernels/select.ts";

/** A shipped file as a default: the path as given if it exists from here, else inside the project. */
export function shippedDefault(rel: string): string {
  try {
    Deno.statSync(rel);
    return rel;
  } catch {
    return `${PROJECT_ROOT}/${rel}`;
  }
}

/** A usage error: errors.ts prints its message as the one `error:` line. */
export class UsageError extends Error {}

/** `cmd: --opt 'value': why` — the format every refusal uses. */
export function usageError(cmd: string, option: string, value: unknown, allowed: string): UsageError {
  const v = typeof value === "string" ? value : JSON.stringify(value);
  return new UsageError(`${cmd}: ${option} '${v}': ${allowed}`);
}

interface Ctx {
  cmd: string;
  name: string;
  force: boolean;
  /** How messages name the value when it is not an option itself (e.g. "checkpoint (from --out)"). */
  label?: string;
}

/** One option: how to parse its text, and its default (if any). */
export class Opt<T, Known extends boolean = false> {
  constructor(
    readonly parse: (raw: string, ctx: Ctx) => T,
    readonly isFlag = false,
    readonly defaultValue?: T,
    readonly mustGive = false,
    /** Runs after every option is parsed (outputs need --force); also applied to defaults. */
    readonly finalCheck?: (v: T, ctx: Ctx) => void,
  ) {}
  default(v: T): Opt<T, true> {
    return new Opt<T, true>(this.parse, this.isFlag, v, false, this.finalCheck);
  }
  required(): Opt<T, true> {
    return new Opt<T, true>(this.parse, this.isFlag, undefined, true, this.finalCheck);
  }
}

// deno-lint-ignore no-explicit-any
type AnyOpt = Opt<any, boolean>;
export type Values<S extends Record<string, AnyOpt>> =
  & { [K in keyof S]: S[K] extends Opt<infer T, true> ? T : S[K] extends Opt<infer T, false> ? T | undefined : never }
  & { given: Set<string> };

const fail = (c: Ctx, raw: unknown, allowed: string) => usageError(c.cmd, c.label ?? `--${c.name}`, raw, allowed);

const NUM_RE = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
function parseNumber(raw: string, c: Ctx, what: string): number {
  if (!NUM_RE.test(raw.trim())) throw fail(c, raw, `not a number (allowed: ${what})`);
  const v = Number(raw);
  if (!Number.isFinite(v)) throw fail(c, raw, `not a finite number (allowed: ${what})`);
  return v;
}

function rangeText(kind: string, min?: number, max?: number, minExclusive = false): string {
  if (min !== undefined && max !== undefined) return `${kind} ${minExclusive ? `> ${min} and <=` : "from"} ${minExclusive ? max : `${min} to ${max}`}`;
  if (min !== undefined) return `${kind} ${minExclusive ? ">" : ">="} ${min}`;
  if (max !== undefined) return `${kind} <= ${max}`;
  return kind;
}

function checkInt(raw: string, c: Ctx, min: number, max: number): number {
  const what = rangeText("an integer", min, max);
  const v = parseNumber(raw, c, what);
  if (!Number.isInteger(v)) throw fail(c, raw, `not an integer (allowed: ${what})`);
  if (v < min || v > max) throw fail(c, raw, `out of range (allowed: ${what})`);
  return v;
}

/** An integer in [min, max] (defaults: 0 and 2^53-1). */
export function int(o: { min?: number; max?: number } = {}): Opt<number> {
  const min = o.min ?? 0, max = o.max ?? Number.MAX_SAFE_INTEGER;
  return new Opt((raw, c) => checkInt(raw, c, min, max));
}

/** A finite number; `gt` is an exclusive lower bound, `min` an inclusive one. */
export function num(o: { min?: number; gt?: number; max?: number } = {}): Opt<number> {
  const excl = o.gt !== undefined;
  const lo = o.gt ?? o.min;
  const what = rangeText("a number", lo, o.max, excl);
  return new Opt((raw, c) => {
    const v = parseNumber(raw, c, what);
    if ((lo !== undefined && (excl ? v <= lo : v < lo)) || (o.max !== undefined && v > o.max)) throw fail(c, raw, `out of range (allowed: ${what})`);
    return v;
  });
}

function items(raw: string, c: Ctx, what: string, unique: boolean): string[] {
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.some((p) => p === "")) throw fail(c, raw, `empty item in the list (allowed: ${what}, separated by commas)`);
  if (unique) {
    const dup = parts.find((p, i) => parts.indexOf(p) !== i);
    if (dup !== undefined) throw fail(c, raw, `'${dup}' is listed twice (allowed: ${what}, each once)`);
  }
  return parts;
}

/** A comma list of integers in [min, max], each once. */
export function ints(o: { min?: number; max?: number } = {}): Opt<number[]> {
  const min = o.min ?? 0, max = o.max ?? Number.MAX_SAFE_INTEGER;
  const what = rangeText("integers", min, max);
  return new Opt((raw, c) => {
    const parts = items(raw, c, what, true);
    const vals = parts.map((p) => {
      if (!NUM_RE.test(p) || !Number.isInteger(Number(p))) throw fail(c, raw, `'${p}' is not an integer (allowed: ${what}, separated by commas)`);
      const v = Number(p);
      if (v < min || v > max) throw fail(c, raw, `${p} is out of range (allowed: ${what}, separated by commas)`);
      return v;
    });
    if (new Set(vals).size !== vals.length) throw fail(c, raw, `a value is listed twice (allowed: ${what}, each once)`);
    return vals;
  });
}

/** One of a fixed set of words. */
export function choice<C extends string>(choices: readonly C[]): Opt<C> {
  return new Opt((raw, c) => {
    if (!(choices as readonly string[]).includes(raw)) throw fail(c, raw, `not one of ${choices.join(", ")}`);
    return raw as C;
  });
}

/** A comma list of words from a fixed set, each once. */
export function choices<C extends string>(allowed: readonly C[]): Opt<C[]> {
  const what = `any of ${allowed.join(", ")}`;
  return new Opt((raw, c) => {
    const parts = items(raw, c, what, true);
    const bad = parts.find((p) => !(allowed as readonly string[]).includes(p));
    if (bad !== undefined) throw fail(c, raw, `'${bad}' is not allowed (${what}, separated by commas)`);
    return parts as C[];
  });
}

/** Free text; empty text is refused unless allowEmpty. */
export function text(o: { allowEmpty?: boolean } = {}): Opt<string> {
  return new Opt((raw, c) => {
    if (!o.allowEmpty && raw.trim() === "") throw fail(c, raw, "empty (allowed: a non-empty value)");
    return raw;
  });
}

/** A JSON object (e.g. a model config). */
export function jsonObject(): Opt<Record<string, unknown>> {
  return new Opt((raw, c) => {
    let v: unknown;
    try {
      v = JSON.parse(raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw); // a byte-order mark (text pasted from a file) is not part of the JSON
    } catch (e) {
      throw fail(c, raw, `not valid JSON (${(e as Error).message}; allowed: a JSON object)`);
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw fail(c, raw, "not a JSON object (allowed: a JSON object such as {\"latent\": 8})");
    return v as Record<string, unknown>;
  });
}

/** A boolean flag: present or not; `--flag=value` is refused. */
export function flag(): Opt<boolean, true> {
  return new Opt<boolean, true>(() => true, true, false);
}

function checkInFile(raw: string, c: Ctx): string {
  if (raw.trim() === "") throw fail(c, raw, "empty (allowed: the path of an existing file)");
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(raw);
  } catch {
    throw fail(c, raw, "no such file (allowed: the path of an existing, readable file)");
  }
  if (!st.isFile) throw fail(c, raw, "not a regular file (allowed: the path of an existing, readable file)");
  try {
    Deno.openSync(raw, { read: true }).close();
  } catch (e) {
    throw fail(c, raw, `cannot be read (${(e as Error).message.split("\n")[0]})`);
  }
  return raw;
}

/** An existing, readable regular file. */
export function inFile(): Opt<string> {
  return new Opt(checkInFile);
}

/**
 * Whether `raw` names an existing file or folder: as it is, or as `format:PATH` (a data reader's
 * prefix, e.g. svhn:test_32x32.mat; the data layer knows the formats and refuses an unknown one
 * when it reads the set, before any work).
 */
export function pathOrPrefixedExists(raw: string): boolean {
  for (const p of [raw, /^[a-z][a-z0-9-]*:(.+)$/s.exec(raw)?.[1]]) {
    if (p === undefined) continue;
    try {
      Deno.statSync(p);
      return true;
    } catch { /* try the next reading */ }
  }
  return false;
}

/**
 * A packaged set as `name[:train|test][:from-to]` (`isSet` decides: src/data/selection.ts's
 * parseSetSpec) or the path of an existing file or folder (optionally `format:PATH`): refused when it is neither.
 */
export function setOrPath<C extends string>(names: readonly C[], isSet: (raw: string) => boolean): Opt<string> {
  return new Opt((raw, c) => {
    if (isSet(raw)) return raw;
    if (raw.trim() === "") throw fail(c, raw, `empty (allowed: ${names.join(", ")} with an optional :train or :test and :from-to, or the path of an existing file or folder)`);
    if (!pathOrPrefixedExists(raw)) {
      throw fail(c, raw, `neither a packaged set (${names.join(", ")}, optionally :train or :test and :from-to, e.g. ${names[0]}:test:5000-6000) nor an existing file or folder (optionally as format:PATH)`);
    }
    return raw;
  });
}

/**
 * A built-in name or the path of an existing file or folder, optionally as `format:PATH` (for data
 * options that also take images from disk): refused when it is neither.
 */
export function nameOrPath<C extends string>(names: readonly C[]): Opt<string> {
  return new Opt((raw, c) => {
    if ((names as readonly string[]).includes(raw)) return raw;
    if (raw.trim() === "") throw fail(c, raw, `empty (allowed: ${names.join(", ")}, or the path of an existing file or folder)`);
    if (!pathOrPrefixedExists(raw)) throw fail(c, raw, `neither ${names.join(", ")} nor an existing file or folder`);
    return raw;
  });
}

/** A comma list of existing, readable files, each once. */
export function inFiles(): Opt<string[]> {
  return new Opt((raw, c) => items(raw, c, "paths of existing files", true).map((p) => {
    try {
      return checkInFile(p, c);
    } catch (e) {
      throw new UsageError((e as Error).message.replace(`'${p}'`, `'${raw}': '${p}'`));
    }
  }));
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** Throws unless a new file can be created in dir (an existing directory we may write to). */
function probeWritableDir(dir: string, c: Ctx, raw: string): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(dir);
  } catch {
    throw fail(c, raw, `the folder ${dir} does not exist (allowed: a path in an existing, writable folder)`);
  }
  if (!st.isDirectory) throw fail(c, raw, `${dir} is not a folder (allowed: a path in an existing, writable folder)`);
  try {
    const probe = Deno.makeTempFileSync({ dir, prefix: ".fimscope-probe-" });
    Deno.removeSync(probe);
  } catch (e) {
    throw fail(c, raw, `the folder ${dir} is not writable (${(e as Error).message.split("\n")[0]})`);
  }
}

/**
 * Checks an output file location up front: non-empty, not a directory, its folder exists and is
 * writable, and it is not a shipped or git-tracked file (unless --force).
 */
export function checkOutFile(path: string, c: Ctx): void {
  if (path.trim() === "") throw fail(c, path, "empty (allowed: a file path)");
  if (path.endsWith("/")) throw fail(c, path, "ends with '/' (allowed: a file path, not a folder)");
  let st: Deno.FileInfo | null = null;
  try {
    st = Deno.lstatSync(path);
  } catch { /* a new file */ }
  if (st?.isDirectory) throw fail(c, path, "is a folder (allowed: a file path)");
  if (st?.isSymlink) throw fail(c, path, "is a symbolic link (allowed: a regular file path; give the link's target)");
  if (st && !st.isFile) throw fail(c, path, "is not a regular file (a device or pipe; allowed: a regular file path)");
  probeWritableDir(dirOf(path), c, path);
  if (!c.force && isProtected(path)) throw fail(c, path, `${protectedReason(path)}; refusing to overwrite it (choose another path, or add --force)`);
}

/** An output file (see checkOutFile). A default given with .default() is checked the same way. */
export function outFile(): Opt<string> {
  return new Opt((raw) => raw, false, undefined, false, checkOutFile);
}

/**
 * An output folder: non-empty, not a file; it or its nearest existing ancestor is a writable folder
 * (missing folders are created when writing). With replaced (a report folder, which
 * writeDirAtomic replaces as a whole) also not a shipped or git-tracked folder (unless --force);
 * checkApart adds the rest for such folders (kind "dir").
 */
export function checkOutDir(path: string, c: Ctx, replaced = false): void {
  if (path.trim() === "") throw fail(c, path, "empty (allowed: a folder path)");
  let p = path.replace(/\/+$/, "") || "/";
  if (replaced) {
    const why = c.force ? null : protectedReason(path);
    if (why) throw fail(c, path, `${why}; refusing to replace it (a report folder is replaced as a whole: choose another folder, or add --force)`);
  }
  try {
    const st = Deno.statSync(p);
    if (!st.isDirectory) throw fail(c, path, "is an existing file, not a folder (allowed: a folder path)");
    probeWritableDir(p, c, path);
    return;
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  for (;;) {
    p = dirOf(p);
    try {
      Deno.statSync(p);
      break;
    } catch { /* walk up */ }
    if (p === "." || p === "/") break;
  }
  probeWritableDir(p, c, path);
}

/** An output folder (see checkOutDir); replaced: a report folder, replaced as a whole by writeDirAtomic. */
export function outDir(o: { replaced?: boolean } = {}): Opt<string> {
  return new Opt((raw) => raw, false, undefined, false, (v, c) => checkOutDir(v, c, o.replaced));
}

/** The backend option every command shares. */
export const BACKEND = choice(BACKEND_CHOICES).default("auto");

/**
 * Parses args against the spec; every value is checked (ranges, choices, files, output locations)
 * before this returns. Options named in the spec may be given once each; --help/-h are handled by
 * errors.ts before any command code runs.
 */
export function parseOptions<S extends Record<string, AnyOpt>>(cmd: string, spec: S, args: string[] = Deno.args): Values<S> {
  const raw = new Map<string, string>();
  const names = Object.keys(spec).sort().map((n) => `--${n}`).join(", ");
  for (let i = 0; i < args.length; i++) {
    const tok = args[i];
    if (!tok.startsWith("--") || tok === "--") {
      throw new UsageError(`${cmd}: unexpected argument '${tok}' (allowed: options ${names})`);
    }
    const eq = tok.indexOf("=");
    const name = eq < 0 ? tok.slice(2) : tok.slice(2, eq);
    const o = spec[name];
    if (!o) throw new UsageError(`${cmd}: unknown option '--${name}' (allowed: ${names})`);
    if (raw.has(name)) throw new UsageError(`${cmd}: --${name} given twice ('${raw.get(name)}' and '${eq < 0 ? (o.isFlag ? "" : args[i + 1] ?? "") : tok.slice(eq + 1)}'); give it once`);
    if (o.isFlag) {
      if (eq >= 0) throw new UsageError(`${cmd}: --${name} '${tok.slice(eq + 1)}': --${name} is a flag and takes no value`);
      raw.set(name, "");
    } else if (eq >= 0) raw.set(name, tok.slice(eq + 1));
    else {
      const v = args[i + 1];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`${cmd}: --${name} needs a value`);
      raw.set(name, v);
      i++;
    }
  }
  const force = raw.has("force") && spec.force?.isFlag === true;
  const out: Record<string, unknown> = { given: new Set(raw.keys()) };
  for (const [name, o] of Object.entries(spec)) {
    const c: Ctx = { cmd, name, force };
    if (raw.has(name)) out[name] = o.parse(raw.get(name)!, c);
    else if (o.mustGive) throw new UsageError(`${cmd}: --${name} is required`);
    else out[name] = o.defaultValue;
  }
  for (const [name, o] of Object.entries(spec)) {
    if (o.finalCheck && out[name] !== undefined) o.finalCheck(out[name], { cmd, name, force });
  }
  return out as Values<S>;
}

/** A path a command reads or writes, and the option (or label) that named it. Undefined paths are skipped. */
export interface PathUse {
  option: string;
  path: string | undefined;
  /** For outputs: a file or a folder the command writes (a folder is replaced as a whole). */
  kind?: "file" | "dir";
}

/**
 * Refuses (one line naming the output and the input) an output that is an input of the same
 * command, lies inside an input folder, or is a folder holding an input, and two outputs that
 * meet the same way; and an output folder (kind "dir", replaced as a whole by writeDirAtomic)
 * that holds the current folder or that holds entries but is not a folder this project wrote
 * (no .fimscope-dir.json or older report manifest: never, say, /tmp or a home folder). Paths are
 * compared by real path (links resolved in the existing part) and, for existing files, by device
 * and inode (hard links). An input `format:PATH` is compared as PATH; inputs that do not exist
 * on disk are names of packaged sets (e.g. fashion:test), not paths, and are skipped.
 */
export function checkApart(cmd: string, outputs: PathUse[], inputs: PathUse[]): void {
  const where = (u: PathUse) => {
    let st: Deno.FileInfo | null = null;
    try {
      st = Deno.statSync(u.path!);
    } catch { /* a new output */ }
    return { ...u, path: u.path!, real: realPathOf(u.path!), st };
  };
  const outs = outputs.filter((u) => u.path !== undefined && u.path.trim() !== "").map(where);
  // An input is compared as given or, for `format:PATH` (e.g. svhn:test_32x32.mat), as its PATH.
  const onDisk = (p: string) => {
    try {
      Deno.lstatSync(p);
      return true;
    } catch {
      return false;
    }
  };
  const ins = inputs.flatMap((u) => {
    if (u.path === undefined || u.path.trim() === "") return [];
    const p = [u.path, /^[a-z][a-z0-9-]*:(.+)$/s.exec(u.path)?.[1]].find((q) => q !== undefined && onDisk(q));
    return p === undefined ? [] : [where({ ...u, path: p })];
  });
  const same = (a: ReturnType<typeof where>, b: ReturnType<typeof where>) =>
    a.real === b.real || (a.st !== null && b.st !== null && a.st.isFile && b.st.isFile && a.st.dev === b.st.dev && a.st.ino !== null && a.st.ino === b.st.ino);
  const within = (inner: string, outer: string) => inner.startsWith(outer === "/" ? "/" : `${outer}/`);
  const what = (u: PathUse) => `${u.option} '${u.path}'`;
  for (const [i, o] of outs.entries()) {
    for (const inp of ins) {
      if (same(o, inp)) throw usageError(cmd, o.option, o.path, `is ${what(inp)} itself, an input of this command (an output never replaces an input); choose another path`);
      if (within(o.real, inp.real)) throw usageError(cmd, o.option, o.path, `lies inside ${what(inp)}, an input of this command (writing there would change the input); choose a path outside it`);
      if (within(inp.real, o.real)) throw usageError(cmd, o.option, o.path, `holds ${what(inp)}, an input of this command (the output ${o.kind === "dir" ? "folder is replaced as a whole" : "would replace it"}); choose another path`);
    }
    if (o.kind === "dir") {
      // A folder is replaced as a whole: never the one the command runs in or one above it, and only a folder this project wrote.
      const cwd = realPathOf(Deno.cwd());
      if (cwd === o.real || within(cwd, o.real)) throw usageError(cmd, o.option, o.path, "holds the current folder (a report folder is replaced as a whole); choose a folder of its own, e.g. reports/out");
      const names = o.st?.isDirectory ? [...Deno.readDirSync(o.path)].map((e) => e.name) : [];
      if (names.length && !names.some(isDirManifest)) {
        throw usageError(cmd, o.option, o.path, `holds ${names.length} entries but was not written by this project (no ${DIR_MANIFEST}); a report folder is replaced as a whole: choose a new or empty folder`);
      }
    }
    for (const o2 of outs.slice(i + 1)) {
      if (same(o, o2) || within(o.real, o2.real) || within(o2.real, o.real)) throw usageError(cmd, o2.option, o2.path, `meets ${what(o)}: two outputs of this command would write over each other; choose another path`);
    }
  }
}

/** For checks of a value the command computed (e.g. a default output): same message format. */
export function checkOutput(cmd: string, label: string, path: string, force: boolean, kind: "file" | "dir" = "file"): void {
  (kind === "file" ? checkOutFile : checkOutDir)(path, { cmd, name: label, label, force });
}
