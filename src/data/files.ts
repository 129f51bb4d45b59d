// Locating files shipped by npm packages, and reading them with errors that name the file.

/** Absolute path of a file inside an installed npm package (walks up to node_modules). */
export function packageFile(pkg: string, ...parts: string[]): string {
  let dir = new URL(".", import.meta.url);
  for (let i = 0; i < 8; i++) {
    const candidate = new URL(`node_modules/${pkg}/`, dir);
    try {
      Deno.statSync(candidate);
      return decodeURIComponent(new URL(parts.join("/"), candidate).pathname);
    } catch { /* keep walking up */ }
    dir = new URL("..", dir);
  }
  throw new Error(`data: npm package '${pkg}' not found in any node_modules above ${new URL(".", import.meta.url).pathname}; run \`npm install\``);
}

export function readBytes(path: string, what: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    let link = false;
    try {
      link = Deno.lstatSync(path).isSymlink;
    } catch { /* not there at all */ }
    if (link) linkIsFile(path); // throws the dangling or looping link's own message
    throw new Error(`data: cannot read ${what} file ${path}: ${(e as Error).message}`);
  }
}

/** Whether a path exists (links followed: a dangling link does not). */
export function pathExists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Natural name order (img2 before img10), the order every folder of images is read in. */
export const byName = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });

/**
 * The files in a folder whose names pass `want`, as paths relative to `dir`, in natural name order
 * (with `recursive`, each subfolder's files where the subfolder sorts). Symbolic links are followed
 * to regular files; a dangling or looping link that `want` would take is refused, naming it. Links
 * to folders, and other non-files, are passed over like folders (and not descended into).
 */
export function listFiles(dir: string, want: (name: string) => boolean, recursive = false): string[] {
  const root = dir.replace(/\/+$/, "") || "/";
  const out: string[] = [];
  const walk = (rel: string) => {
    const here = rel ? `${root}/${rel}` : root;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(here)];
    } catch (e) {
      throw new Error(`data: cannot read folder ${here}: ${(e as Error).message}`);
    }
    entries.sort((a, b) => byName(a.name, b.name));
    for (const e of entries) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        if (recursive) walk(name);
        continue;
      }
      if (!want(e.name)) continue;
      if (e.isFile || (e.isSymlink && linkIsFile(`${root}/${name}`))) out.push(name);
    }
  };
  walk("");
  return out;
}

/** Whether a symbolic link leads to a regular file; a dangling or looping link is an error naming it. */
export function linkIsFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (e) {
    let target = "?";
    try {
      target = Deno.readLinkSync(path);
    } catch { /* keep '?' */ }
    if (e instanceof Deno.errors.NotFound) throw new Error(`data: ${path} is a symbolic link to ${target}, which does not exist (a dangling link)`);
    if (/too many levels|loop/i.test((e as Error).message)) throw new Error(`data: ${path} is a symbolic link that loops (${target} leads back to itself)`);
    throw new Error(`data: ${path} is a symbolic link to ${target}, which cannot be read (${(e as Error).message.split(":")[0]})`);
  }
}

/** The byte arrays one after another, as one array. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
