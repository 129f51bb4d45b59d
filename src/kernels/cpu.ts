// The reference backend: plain TypeScript over Float32Array or Float64Array.
import type { Backend, BinaryOp, ConvParams, Data, DType, MatmulSpec, ReduceOp, StridedSpec, UnaryOp } from "./backend.ts";
import { BINARY, UNARY } from "./scalar_ops.ts";
import { broadcastStrides, sameShape, sizeOf, stridesOf } from "./shape.ts";

function alloc(size: number, dtype: DType): Data {
  return dtype === "float64" ? new Float64Array(size) : new Float32Array(size);
}

/** Calls f(outIndex, offsets...) for each element of outShape with per-input broadcast strides. */
function forEachBroadcast(outShape: readonly number[], strides: number[][], f: (i: number, offs: number[]) => void) {
  const r = outShape.length;
  const n = sizeOf(outShape);
  const idx = new Array<number>(r).fill(0);
  const offs = strides.map(() => 0);
  for (let i = 0; i < n; i++) {
    f(i, offs);
    for (let d = r - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < strides.length; k++) offs[k] += strides[k][d];
      if (idx[d] < outShape[d]) break;
      for (let k = 0; k < strides.length; k++) offs[k] -= strides[k][d] * outShape[d];
      idx[d] = 0;
    }
  }
}

export class CpuBackend implements Backend<Data> {
  readonly name = "cpu" as const;

  upload(data: ArrayLike<number>, dtype: DType): Data {
    const out = alloc(data.length, dtype);
    out.set(data);
    return out;
  }
  read(s: Data): Promise<Data> {
    return Promise.resolve(s.slice());
  }
  readSync(s: Data): Data {
    return s.slice();
  }
  release(_s: Data): void {}
  sync(): Promise<void> {
    return Promise.resolve();
  }
  fill(size: number, value: number, dtype: DType): Data {
    return alloc(size, dtype).fill(value);
  }

  unary(op: UnaryOp, x: Data, size: number, dtype: DType, p: number): Data {
    const f = UNARY[op];
    const out = alloc(size, dtype);
    for (let i = 0; i < size; i++) out[i] = f(x[i], p);
    return out;
  }

  binary(op: BinaryOp, a: Data, aShape: readonly number[], b: Data, bShape: readonly number[], outShape: readonly number[], dtype: DType): Data {
    const f = BINARY[op];
    const out = alloc(sizeOf(outShape), dtype);
    if (sameShape(aShape, outShape) && sameShape(bShape, outShape)) {
      for (let i = 0; i < out.length; i++) out[i] = f(a[i], b[i]);
      return out;
    }
    const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
    forEachBroadcast(outShape, [sa, sb], (i, o) => { out[i] = f(a[o[0]], b[o[1]]); });
    return out;
  }

  where(c: Data, cShape: readonly number[], a: Data, aShape: readonly number[], b: Data, bShape: readonly number[], outShape: readonly number[], dtype: DType): Data {
    const out = alloc(sizeOf(outShape), dtype);
    const st = [cShape, aShape, bShape].map((s) => broadcastStrides(s, outShape));
    forEachBroadcast(outShape, st, (i, o) => { out[i] = c[o[0]] !== 0 ? a[o[1]] : b[o[2]]; });
    return out;
  }

  reduce(op: ReduceOp, x: Data, outer: number, R: number, inner: number, dtype: DType): Data {
    const out = alloc(outer * inner, dtype);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = op === "max" ? -Infinity : 0;
        let base = o * R * inner + i;
        for (let r = 0; r < R; r++, base += inner) {
          const v = x[base];
          acc = op === "sum" ? acc + v : op === "sumsq" ? acc + v * v : (v > acc || Number.isNaN(v) ? v : acc);
        }
        out[o * inner + i] = acc;
      }
    }
    return out;
  }

  // GroupNorm's normalisation, written as its definition: the mean, then the variance of the
  // deviations (two passes, float64 accumulation).
  groupNorm(x: Data, rows: number, M: number, eps: number, dtype: DType): { y: Data; rstd: Data } {
    const y = alloc(rows * M, dtype), rstd = alloc(rows, dtype);
    for (let r = 0; r < rows; r++) {
      const o = r * M;
      let s = 0;
      for (let i = 0; i < M; i++) s += x[o + i];
      const mu = s / M;
      let v = 0;
      for (let i = 0; i < M; i++) v += (x[o + i] - mu) ** 2;
      const k = 1 / Math.sqrt(v / M + eps);
      rstd[r] = k;
      for (let i = 0; i < M; i++) y[o + i] = (x[o + i] - mu) * k;
    }
    return { y, rstd };
  }

  groupNormGrad(g: Data, y: Data, rstd: Data, rows: number, M: number, dtype: DType): Data {
    const dx = alloc(rows * M, dtype);
    for (let r = 0; r < rows; r++) {
      const o = r * M;
      let sg = 0, sgy = 0;
      for (let i = 0; i < M; i++) {
        sg += g[o + i];
        sgy += g[o + i] * y[o + i];
      }
      const mg = sg / M, mgy = sgy / M, k = rstd[r];
      for (let i = 0; i < M; i++) dx[o + i] = k * (g[o + i] - mg - y[o + i] * mgy);
    }
    return dx;
  }

  concat(parts: Data[], blocks: readonly number[], outer: number, dtype: DType): Data {
    const total = blocks.reduce((a, b) => a + b, 0);
    const out = alloc(outer * total, dtype);
    let off = 0;
    parts.forEach((x, i) => {
      const blk = blocks[i];
      for (let o = 0; o < outer; o++) out.set(x.subarray(o * blk, (o + 1) * blk), o * total + off);
      off += blk;
    });
    return out;
  }

  strided(x: Data, spec: StridedSpec, dtype: DType): Data {
    const { inShape, outShape, map, start, step, padValue } = spec;
    const inSt = stridesOf(inShape);
    const out = alloc(sizeOf(outShape), dtype);
    const r = outShape.length;
    const idx = new Array<number>(r).fill(0);
    for (let i = 0; i < out.length; i++) {
      let off = 0, inside = true;
      for (let d = 0; d < r; d++) {
        const c = start[d] + idx[d] * step[d];
        if (c < 0 || c >= inShape[map[d]]) { inside = false; break; }
        off += c * inSt[map[d]];
      }
      out[i] = inside ? x[off] : padValue;
      for (let d = r - 1; d >= 0; d--) {
        if (++idx[d] < outShape[d]) break;
        idx[d] = 0;
      }
    }
    return out;
  }

  matmul(a: Data, b: Data, s: MatmulSpec, dtype: DType): Data {
    const { batchA, batchB, M, K, N, transA, transB } = s;
    const batch = Math.max(batchA, batchB);
    const out = alloc(batch * M * N, dtype);
    const A = alloc(M * K, dtype), B = alloc(K * N, dtype);
    for (let bi = 0; bi < batch; bi++) {
      const ao = (batchA === 1 ? 0 : bi) * M * K, bo = (batchB === 1 ? 0 : bi) * K * N;
      // Bring both operands to row-major [M,K] and [K,N] so the inner loop is contiguous.
      for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) A[m * K + k] = transA ? a[ao + k * M + m] : a[ao + m * K + k];
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) B[k * N + n] = transB ? b[bo + n * K + k] : b[bo + k * N + n];
      const oo = bi * M * N;
      for (let m = 0; m < M; m++) {
        const row = oo + m * N;
        for (let k = 0; k < K; k++) {
          const av = A[m * K + k];
          if (av === 0) continue;
          const bk = k * N;
          for (let n = 0; n < N; n++) out[row + n] += av * B[bk + n];
        }
      }
    }
    return out;
  }

  conv2d(x: Data, w: Data, p: ConvParams, dtype: DType): Data {
    const { N, Cin, H, W, Cout, KH, KW, stride, pad, groups, OH, OW } = p;
    const cg = Cin / groups, og = Cout / groups;
    const out = alloc(N * Cout * OH * OW, dtype);
    for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / og);
      const ob = (n * Cout + co) * OH * OW;
      for (let ci = 0; ci < cg; ci++) {
        const xb = (n * Cin + g * cg + ci) * H * W;
        for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
          const wv = w[((co * cg + ci) * KH + ky) * KW + kx];
          for (let oy = 0; oy < OH; oy++) {
            const iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= H) continue;
            for (let ox = 0; ox < OW; ox++) {
              const ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= W) continue;
              out[ob + oy * OW + ox] += wv * x[xb + iy * W + ix];
            }
          }
        }
      }
    }
    return out;
  }

  conv2dInputGrad(gy: Data, w: Data, p: ConvParams, dtype: DType): Data {
    const { N, Cin, H, W, Cout, KH, KW, stride, pad, groups, OH, OW } = p;
    const cg = Cin / groups, og = Cout / groups;
    const dx = alloc(N * Cin * H * W, dtype);
    for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / og);
      const gb = (n * Cout + co) * OH * OW;
      for (let ci = 0; ci < cg; ci++) {
        const xb = (n * Cin + g * cg + ci) * H * W;
        for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
          const wv = w[((co * cg + ci) * KH + ky) * KW + kx];
          for (let oy = 0; oy < OH; oy++) {
            const iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= H) continue;
            for (let ox = 0; ox < OW; ox++) {
              const ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= W) continue;
              dx[xb + iy * W + ix] += wv * gy[gb + oy * OW + ox];
            }
          }
        }
      }
    }
    return dx;
  }

  conv2dWeightGrad(x: Data, gy: Data, p: ConvParams, dtype: DType): Data {
    const { N, Cin, H, W, Cout, KH, KW, stride, pad, groups, OH, OW } = p;
    const cg = Cin / groups, og = Cout / groups;
    const dw = alloc(Cout * cg * KH * KW, dtype);
    for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / og);
      const gb = (n * Cout + co) * OH * OW;
      for (let ci = 0; ci < cg; ci++) {
        const xb = (n * Cin + g * cg + ci) * H * W;
        for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
          let acc = 0;
          for (let oy = 0; oy < OH; oy++) {
            const iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= H) continue;
            for (let ox = 0; ox < OW; ox++) {
              const ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= W) continue;
              acc += gy[gb + oy * OW + ox] * x[xb + iy * W + ix];
            }
          }
          dw[((co * cg + ci) * KH + ky) * KW + kx] += acc;
        }
      }
    }
    return dw;
  }
}
