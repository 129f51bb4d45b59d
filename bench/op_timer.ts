// Wall time per backend op, for the benches' --profile on backends without timestamp queries
// (the wasm and CPU backends run each op synchronously, so an op's wall time is its cost).
import process from "node:process";
import type { Backend, ConvParams, MatmulSpec } from "../src/kernels/backend.ts";
import type { WasmBackend } from "../src/kernels/wasm/backend.ts";
import { keyOf as productKey } from "./products.ts";

/** This process's CPU time (all threads, user and system) in ms: what the benches measure where other load disturbs wall time. */
export function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}
/** A clock in ms: process CPU time (cpuMs) or wall time. */
export const clockMs = (clock: "cpu" | "wall"): () => number => clock === "cpu" ? cpuMs : () => performance.now();

const OPS = ["upload", "fill", "unary", "binary", "where", "reduce", "strided", "concat", "matmul", "conv2d", "conv2dBias", "conv2dInputGrad", "conv2dWeightGrad", "groupNorm", "groupNormGrad", "momentUpdate", "mulUnary", "conv2dInputGradTimes", "affineCoupling", "affineCouplingGrad", "groupNormAffine", "sumSquaresAll", "scaleAll", "channelAffine", "channelAffineGrad"] as const;

/** A short key per call: the op, its elementwise kind, and with byShape the operands' shapes. */
function keyOf(op: string, xs: unknown[], byShape: boolean): string {
  if (op === "mulUnary") return `${op} ${xs[1]}`;
  if (op === "unary" || op === "reduce") return byShape && op === "reduce" ? `${op} ${xs[0]} [${xs[2]},${xs[3]},${xs[4]}]` : `${op} ${xs[0]}`;
  if (op === "binary") return byShape ? `${op} ${xs[0]} [${xs[2]}]x[${xs[4]}]` : `${op} ${xs[0]}`;
  if (!byShape) return op;
  if (op === "conv2d" || op === "conv2dInputGrad" || op === "conv2dWeightGrad") return productKey({ op, p: xs[2] as ConvParams });
  if (op === "conv2dBias") return `${productKey({ op: "conv2d", p: xs[3] as ConvParams })} +bias ${xs[4]}`;
  if (op === "conv2dInputGradTimes") return `${productKey({ op: "conv2dInputGrad", p: xs[2] as ConvParams })} x ${xs[3]}'`;
  if (op === "matmul") return productKey({ op, s: xs[2] as MatmulSpec });
  if (op === "strided") {
    const s = xs[1] as { inShape: number[]; outShape: number[] };
    return `strided [${s.inShape}]->[${s.outShape}]`;
  }
  return op;
}

/**
 * Wraps every op of b to sum its wall (or process CPU) time and call count under keyOf; returns the table and a
 * function that restores the backend.
 */
export function timeOps(b: Backend, byShape = false, clock: "wall" | "cpu" = "wall"): { acc: Map<string, { ms: number; n: number }>; restore: () => void } {
  // cpu: process CPU time (all threads), what a loaded machine disturbs least
  const now = clockMs(clock);
  const acc = new Map<string, { ms: number; n: number }>();
  // deno-lint-ignore no-explicit-any
  const bb = b as any;
  const saved: [string, unknown][] = [];
  for (const op of OPS) {
    if (typeof bb[op] !== "function") continue;
    const orig = bb[op];
    saved.push([op, Object.prototype.hasOwnProperty.call(bb, op) ? orig : undefined]);
    bb[op] = (...xs: unknown[]) => {
      const t0 = now();
      const r = orig.apply(b, xs);
      const k = keyOf(op, xs, byShape), e = acc.get(k) ?? { ms: 0, n: 0 };
      e.ms += now() - t0;
      e.n++;
      acc.set(k, e);
      return r;
    };
  }
  return {
    acc,
    restore: () => {
      for (const [op, own] of saved) {
        if (own === undefined) delete bb[op];
        else bb[op] = own;
      }
    },
  };
}

/** The largest entries of a timeOps table, one per line. */
export function opTable(acc: Map<string, { ms: number; n: number }>, top = 15): string {
  const rows = [...acc].sort((p, q) => q[1].ms - p[1].ms);
  const total = rows.reduce((s, [, v]) => s + v.ms, 0), calls = rows.reduce((s, [, v]) => s + v.n, 0);
  const kinds = new Map<string, { ms: number; n: number }>();
  for (const [k, v] of rows) {
    const kind = k.split(" ")[0], e = kinds.get(kind) ?? { ms: 0, n: 0 };
    e.ms += v.ms;
    e.n += v.n;
    kinds.set(kind, e);
  }
  const byKind = [...kinds].sort((p, q) => q[1].ms - p[1].ms).map(([k, v]) => `${k} ${v.ms.toFixed(0)} (${v.n})`).join(", ");
  return [`    ops: ${calls} calls, ${total.toFixed(0)} ms: ${byKind}`, ...rows.slice(0, top).map(([k, v]) => `    ${v.ms.toFixed(1).padStart(8)} ms ${String(v.n).padStart(6)}x  ${k}`)].join("\n");
}

/**
 * Skips every kernel phase of a wasm backend (both forms of a phase: task arrays and job lists),
 * so that a pass runs only what the caller does alone: JavaScript (autograd, shapes, allocation,
 * task lists) and the ops small enough for TypeScript loops. The values are garbage from then on.
 * Returns the function that puts the phases back.
 */
export function skipKernelPhases(be: WasmBackend): () => void {
  const pool = be.runtime.pool as { run?: unknown; runList?: unknown };
  pool.run = pool.runList = () => {};
  return () => {
    delete pool.run;
    delete pool.runList;
  };
}
