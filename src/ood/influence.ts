// Influence through the FIM (the blog's first proposal): for a test input x, the fit (training)
// inputs t with the largest |s_x^T F^{-1} s_t|, F the full F_N (Woodbury) or its diagonal. The
// inner product is symmetric in x and t (tested), so this is also "whose gradient the test input's
// gradient resembles most, in the metric the FIM defines".
import type * as T from "../autograd/index.ts";
import { imageGridPng } from "../io/png.ts";
import type { WoodburyFim } from "./woodbury.ts";

export interface Influence {
  /** Index into the fit set. */
  t: number;
  /** s_x^T F^{-1} s_t (signed). */
  value: number;
}

/** Per test gradient (G of them, [G, P_l] per layer), the k fit inputs of largest |influence|, largest first. */
export async function topInfluences(fim: WoodburyFim, g: T.Tensor[], k: number, diagonal = false): Promise<Influence[][]> {
  const m = await fim.fitInner(g, diagonal), N = fim.n, G = g[0].shape[0];
  return Array.from({ length: G }, (_, i) =>
    Array.from({ length: N }, (_, t) => ({ t, value: m[i * N + t] }))
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, k));
}

/** A strip per test input: the input, then its top fit images, one row each (planar bytes, c = 1 or 3). */
export function influenceStripPng(rows: { input: Uint8Array; top: Uint8Array[] }[], c: number, h: number, w: number): Uint8Array {
  const k = Math.max(...rows.map((r) => r.top.length)), d = c * h * w, per = k + 1;
  const all = new Uint8Array(rows.length * per * d).fill(255);
  rows.forEach((r, i) => {
    all.set(r.input, i * per * d);
    r.top.forEach((im, j) => all.set(im, (i * per + 1 + j) * d));
  });
  return imageGridPng(all, rows.length * per, c, h, w, per);
}
