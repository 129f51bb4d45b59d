// Which backend new tensors go to.
import type { Backend } from "../kernels/backend.ts";
import { CpuBackend } from "../kernels/cpu.ts";

export const cpu = new CpuBackend();
let current: Backend = cpu;

export function defaultBackend(): Backend {
  return current;
}

export function setDefaultBackend(b: Backend): void {
  current = b;
}

/** Run f with `b` as the default backend. */
export function onBackend<T>(b: Backend, f: () => T): T {
  const prev = current;
  current = b;
  try {
    return f();
  } finally {
    current = prev;
  }
}
