// A minimal WebAssembly binary emitter: enough to write the SIMD128 kernels of this backend as
// TypeScript that produces a module's bytes at load time (no build step, no dependency).
// One module: functions of i32 parameters over one imported (shared) memory "env.mem".

export const I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}
function sleb(n: number, out: number[]): void {
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return void out.push(b);
    out.push(b | 0x80);
  }
}
const str = (s: string, out: number[]) => {
  const b = new TextEncoder().encode(s);
  uleb(b.length, out);
  out.push(...b);
};

/** One function body. Locals are numbered after the parameters; `c` is the instruction stream. */
export class Fn {
  readonly c: number[] = [];
  readonly locals: ValType[] = [];
  constructor(readonly name: string, readonly params: ValType[], readonly result: ValType | null = null) {}

  /** A new local of type t; returns its index. */
  local(t: ValType = I32): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }
  get(i: number) { this.c.push(0x20); uleb(i, this.c); return this; }
  set(i: number) { this.c.push(0x21); uleb(i, this.c); return this; }
  tee(i: number) { this.c.push(0x22); uleb(i, this.c); return this; }
  i32(v: number) { this.c.push(0x41); sleb(v | 0, this.c); return this; }
  f32(v: number) {
    this.c.push(0x43, ...new Uint8Array(new Float32Array([v]).buffer));
    return this;
  }
  op(...bytes: number[]) { this.c.push(...bytes); return this; }
  /** A SIMD (0xfd-prefixed) instruction, with an optional memarg or lane immediate. */
  simd(code: number, ...imm: number[]) {
    this.c.push(0xfd);
    uleb(code, this.c);
    for (const b of imm) uleb(b, this.c);
    return this;
  }
  // memory: address on the stack; memarg = (log2 align, byte offset)
  f32load(off = 0) { this.c.push(0x2a, 2); uleb(off, this.c); return this; }
  f32store(off = 0) { this.c.push(0x38, 2); uleb(off, this.c); return this; }
  v128load(off = 0) { return this.simd(0x00, 4, off); }
  v128store(off = 0) { return this.simd(0x0b, 4, off); }
  splatLoad(off = 0) { return this.simd(0x09, 2, off); }
  /** i8x16.shuffle by 32-bit lanes: lanes 0-3 from the first operand, 4-7 from the second. */
  shuffle32(lanes: readonly number[]) { return this.simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])); }
  /**
   * A constant f32x4 (every lane v) or i32x4 on the stack, from a local the function's prologue
   * sets once: V8 does not hoist a splat out of a loop, so a polynomial's constants re-splatted
   * per vector cost as many instructions as its arithmetic.
   */
  constF32x4(v: number) { return this.get(this.#pooled("f", v)); }
  constI32x4(v: number) { return this.get(this.#pooled("i", v)); }
  readonly #pool = new Map<string, [number, "f" | "i", number]>();
  #pooled(kind: "f" | "i", v: number): number {
    const key = `${kind}${Object.is(v, -0) ? "-0" : v}`;
    let e = this.#pool.get(key);
    if (!e) this.#pool.set(key, e = [this.local(V128), kind, v]);
    return e[0];
  }

  /** for (i = from; i < to; i += step) body(), with `from`, `to` emitted by callbacks (i32 values). */
  loop(i: number, from: () => void, to: () => void, step: number, body: () => void) {
    from();
    this.set(i);
    this.c.push(0x02, 0x40); // block
    // guard: if !(i < to) break
    this.get(i); to(); this.c.push(0x48, 0x45, 0x0d, 0); // i32.lt_s, i32.eqz, br_if 0
    this.c.push(0x03, 0x40); // loop
    body();
    this.get(i).i32(step).op(0x6a).tee(i); // i += step
    to();
    this.c.push(0x48, 0x0d, 0, 0x0b, 0x0b); // lt_s, br_if 0 (loop), end loop, end block
    return this;
  }
  /** if (cond on stack) then() [else otherwise()] */
  if(then: () => void, otherwise?: () => void) {
    this.c.push(0x04, 0x40);
    then();
    if (otherwise) { this.c.push(0x05); otherwise(); }
    this.c.push(0x0b);
    return this;
  }

  body(): number[] {
    const out: number[] = [];
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      if (groups.length && groups[groups.length - 1][1] === t) groups[groups.length - 1][0]++;
      else groups.push([1, t]);
    }
    uleb(groups.length, out);
    for (const [n, t] of groups) { uleb(n, out); out.push(t); }
    // the pooled constants, set once at entry
    const pre = new Fn(this.name, this.params);
    for (const [local, kind, v] of this.#pool.values()) {
      if (kind === "f") pre.f32(v).simd(0x13).set(local); // f32x4.splat
      else pre.i32(v).simd(0x11).set(local); // i32x4.splat
    }
    out.push(...pre.c, ...this.c, 0x0b);
    const framed: number[] = [];
    uleb(out.length, framed);
    return framed.concat(out);
  }
}

// i32 opcodes used by the kernels
export const op = {
  add: 0x6a, sub: 0x6b, mul: 0x6c, shl: 0x74, and: 0x71, or: 0x72, ltS: 0x48, geS: 0x4e, gtS: 0x4a, eqz: 0x45, eq: 0x46, ne: 0x47, remU: 0x70,
  f32add: 0x92, f32sub: 0x93, f32mul: 0x94, f32max: 0x97,
} as const;
// SIMD opcodes
export const simd = {
  f32x4splat: 0x13, f32x4add: 0xe4, f32x4sub: 0xe5, f32x4mul: 0xe6, f32x4min: 0xe8, f32x4max: 0xe9,
  f32x4extract: 0x1f, relaxedMadd: 0x105,
} as const;

/** The module's bytes: every function exported under its name; memory imported as env.mem (shared when asked). */
export function moduleBytes(fns: Fn[], mem: { initial: number; maximum: number; shared: boolean }): Uint8Array<ArrayBuffer> {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const section = (id: number, content: number[]) => {
    out.push(id);
    uleb(content.length, out);
    out.push(...content);
  };
  const types: number[] = [];
  uleb(fns.length, types);
  for (const f of fns) {
    types.push(0x60);
    uleb(f.params.length, types);
    types.push(...f.params);
    if (f.result === null) types.push(0);
    else types.push(1, f.result);
  }
  section(1, types);
  const imports: number[] = [1];
  str("env", imports);
  str("mem", imports);
  imports.push(0x02, mem.shared ? 0x03 : 0x01);
  uleb(mem.initial, imports);
  uleb(mem.maximum, imports);
  section(2, imports);
  const funcs: number[] = [];
  uleb(fns.length, funcs);
  fns.forEach((_, i) => uleb(i, funcs));
  section(3, funcs);
  const exps: number[] = [];
  uleb(fns.length, exps);
  fns.forEach((f, i) => { str(f.name, exps); exps.push(0x00); uleb(i, exps); });
  section(7, exps);
  const code: number[] = [];
  uleb(fns.length, code);
  for (const f of fns) code.push(...f.body());
  section(10, code);
  return new Uint8Array(out);
}
