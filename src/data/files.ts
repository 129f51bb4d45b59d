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
    throw new Error(`data: cannot read ${what} file ${path}: ${(e as Error).message}`);
  }
}
