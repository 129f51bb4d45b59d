// The three node:path functions the library's file helpers import (src/io/atomic.ts), for the
// browser bundle only (scripts/web/build.ts maps node:path here): a page never writes files, but
// the module evaluates resolve() when it loads.
export const basename = (p: string): string => p.replace(/\/+$/, "").split("/").pop() ?? "";
export const dirname = (p: string): string => {
  const s = p.replace(/\/+$/, "");
  const i = s.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : s.slice(0, i);
};
export function resolve(...parts: string[]): string {
  let path = "";
  for (const p of parts) path = p.startsWith("/") ? p : `${path}/${p}`;
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "..") out.pop();
    else if (seg && seg !== ".") out.push(seg);
  }
  return `/${out.join("/")}`;
}
