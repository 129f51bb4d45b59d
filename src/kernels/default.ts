// Which backend new tensors go to: the process-wide default, the CPU backend until a caller picks
// another (src/kernels/select.ts). Kept with the kernels so choosing a backend needs no autograd;
// src/autograd/device.ts re-exports it.
import type { Backend } from "./backend.ts";
import { CpuBackend } from "./cpu.ts";

export const cpu: CpuBackend = new CpuBackend();
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
