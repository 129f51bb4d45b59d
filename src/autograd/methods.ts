// Fluent methods on Tensor (x.add(y).sum()), delegating to the op functions.
import { Tensor } from "./tensor.ts";
import * as E from "./ops/elementwise.ts";
import * as M from "./ops/movement.ts";
import * as R from "./ops/reduce.ts";
import { matmul } from "./ops/linalg.ts";
import { backward, type GradOptions } from "./engine.ts";

type Operand = Tensor | number;

declare module "./tensor.ts" {
  interface Tensor {
    add(b: Operand): Tensor;
    sub(b: Operand): Tensor;
    mul(b: Operand): Tensor;
    div(b: Operand): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    square(): Tensor;
    sqrt(): Tensor;
    matmul(b: Tensor): Tensor;
    sum(axes?: number | number[], keepdims?: boolean): Tensor;
    mean(axes?: number | number[], keepdims?: boolean): Tensor;
    max(axes?: number | number[], keepdims?: boolean): Tensor;
    reshape(shape: readonly number[]): Tensor;
    permute(perm: readonly number[]): Tensor;
    transpose(a?: number, b?: number): Tensor;
    backward(opts?: GradOptions): void;
  }
}

const P = Tensor.prototype;
P.add = function (b) { return E.add(this, b); };
P.sub = function (b) { return E.sub(this, b); };
P.mul = function (b) { return E.mul(this, b); };
P.div = function (b) { return E.div(this, b); };
P.neg = function () { return E.neg(this); };
P.exp = function () { return E.exp(this); };
P.log = function () { return E.log(this); };
P.square = function () { return E.square(this); };
P.sqrt = function () { return E.sqrt(this); };
P.matmul = function (b) { return matmul(this, b); };
P.sum = function (a, k) { return R.sum(this, a, k); };
P.mean = function (a, k) { return R.mean(this, a, k); };
P.max = function (a, k) { return R.max(this, a, k); };
P.reshape = function (s) { return M.reshape(this, s); };
P.permute = function (p) { return M.permute(this, p); };
P.transpose = function (a, b) { return M.transpose(this, a, b); };
P.backward = function (o) { backward(this, o); };
